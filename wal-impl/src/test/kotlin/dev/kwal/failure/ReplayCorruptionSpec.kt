package dev.kwal.failure

import dev.kwal.LogFiles
import dev.kwal.Record
import dev.kwal.TestLogs
import dev.kwal.WalCorruptedException
import dev.kwal.engine.Kwal
import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.RecordFrame
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.take

/**
 * A record damaged while the log is open — in a sealed segment (read through its mapping) or in the active one
 * (read with positional reads) — is refused by replay and follow: they hand out every record before it, then fail
 * with [WalCorruptedException], and nothing of the damaged record is emitted.
 */
class ReplayCorruptionSpec :
    FunSpec({

        /** Collects [flow] of [size]-byte records until it fails; returns the sequences it emitted and the failure. */
        suspend fun collectUntilFailure(flow: Flow<Record>, size: Int): Pair<List<Long>, WalCorruptedException> {
            val seen = mutableListOf<Long>()
            val e = shouldThrow<WalCorruptedException> {
                flow.collect { r ->
                    r.payload shouldBe TestLogs.payload("t", r.sequence, size)
                    seen += r.sequence
                }
            }
            return seen to e
        }

        // Small records (many to a block, as replay benchmarks them) and large ones (two to a block).
        for (size in listOf(100, 3000)) {
            for (where in listOf("sealed", "active")) {
                test(
                    "a payload bit flipped in a $size B record in the $where segment: replay and follow stop " +
                        "before the record, with WalCorruptedException",
                ) {
                    // Enough records to fill more than one 64 KiB segment.
                    val count = if (size < 1000) 1200 else 60
                    val dir = TestLogs.tempDir("kwal-replay-corrupt")
                    Kwal.open(TestLogs.small(dir)).use { wal ->
                        // Pairs: each batch is one group, one block of two records (8 KiB blocks hold two of 3000 B).
                        repeat(count / 2) { i ->
                            wal.appendBatch("t", List(2) { TestLogs.payload("t", 2L * i + it, size) })
                        }
                        val topicId = LogFiles.topicIds(dir).getValue("t")
                        val segments = LogFiles.dataSegments(dir)
                        val active = segments.last()
                        // Damage a record in the middle of a block of the chosen segment.
                        val block = LogFiles.allBlocks(dir).filter { it.topicId == topicId && it.count > 1 }
                            .first { (it.segment == active) == (where == "active") }
                        val victim = block.firstSeq + 1
                        val frame = block.at + BlockHeader.SIZE + (size + RecordFrame.HEADER_SIZE)
                        LogFiles.flipBit(
                            LogFiles.segment(dir, block.segment),
                            frame + RecordFrame.HEADER_SIZE + size / 2L,
                            bit = 3,
                        )
                        (block.segment == active) shouldBe (where == "active")

                        val (replayed, e) = collectUntilFailure(wal.replay("t"), size)
                        replayed shouldBe (0 until victim).toList()
                        e.file?.fileName shouldBe LogFiles.segment(dir, block.segment).fileName

                        // From the damaged record itself, and from a record before it in the same block.
                        collectUntilFailure(wal.replay("t", victim), size).first shouldBe emptyList()
                        collectUntilFailure(wal.replay("t", block.firstSeq), size).first shouldBe listOf(block.firstSeq)
                        // A follower fails the same way instead of waiting for more.
                        collectUntilFailure(wal.follow("t").take(count), size).first shouldBe (0 until victim).toList()
                        // Records after the damaged block are still readable on their own.
                        val after = block.firstSeq + block.count
                        if (after < count) {
                            val r = mutableListOf<Long>()
                            wal.replay("t", after).take(1).collect { r += it.sequence }
                            r shouldBe listOf(after)
                        }
                    }
                    dir.toFile().deleteRecursively()
                }
            }
        }
    })
