package dev.kwal

import dev.kwal.engine.Kwal
import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.RecordFrame
import dev.kwal.engine.format.SegmentHeader
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.comparables.shouldBeGreaterThan
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.flow.toList
import java.nio.ByteBuffer
import java.nio.channels.FileChannel
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.StandardOpenOption.READ
import java.nio.file.StandardOpenOption.WRITE
import kotlin.io.path.fileSize

/** Recovery bugs found in review, each with the test that failed before its fix. */
class RecoveryRegressionSpec :
    FunSpec({

        test("an empty spare segment of an older, smaller size is not used when segmentSize grows") {
            val dir = TestLogs.tempDir()
            // 64 KiB segments: enough records to roll, so the writer pre-creates the next segment as a spare.
            Kwal.open(TestLogs.scanned(dir)).use { wal -> repeat(40) { wal.append("t", ByteArray(3000)) } }
            val bigger = WalOptions(dir, segmentSize = 1 shl 20, blockSize = 64 shl 10, maxRecordSize = 8 shl 10)
            Kwal.open(bigger).use { wal: Wal ->
                // ~120 KB: fits a 1 MiB segment, not a 64 KiB one. It used to roll into the old spare and fail.
                val range = wal.appendBatch("t", List(30) { ByteArray(4000) })
                range shouldBe (40L until 70L)
            }
            Kwal.open(bigger).use { it.replay("t").toList().size shouldBe 70 }
        }

        test("a registry record with an invalid name, whose checksums pass, is corruption that TRUNCATE can cut") {
            val dir = TestLogs.tempDir()
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                wal.append("a", byteArrayOf(1))
                repeat(5) { wal.append("b", byteArrayOf(2)) } // "b" is registered by the second group
            }
            // Rename topic "b" to "/" in its registry record, re-sealing the record's checksum.
            val seg = dir.resolve("seg-0000000001.kwal")
            FileChannel.open(seg, READ, WRITE).use { ch ->
                val map = ch.map(FileChannel.MapMode.READ_WRITE, 0, ch.size())
                var at = SegmentHeader.SIZE
                var found = false
                while (!found && map.getInt(at) == BlockHeader.MAGIC) {
                    val body = map.getInt(at + BlockHeader.OFF_BODY_LENGTH)
                    if (map.getInt(at + BlockHeader.OFF_TOPIC) == 0 &&
                        map.getLong(at + BlockHeader.OFF_FIRST_SEQ) == 1L
                    ) {
                        val frame = ByteBuffer.allocate(RecordFrame.HEADER_SIZE + 1)
                        RecordFrame.Codec().encode(frame, 0, 1L, "/".encodeToByteArray())
                        map.put(at + BlockHeader.SIZE, frame.array())
                        found = true
                    }
                    at += BlockHeader.SIZE + body
                }
                found shouldBe true
                map.force()
            }
            shouldThrow<WalCorruptedException> { Kwal.open(TestLogs.scanned(dir)).close() }
            Kwal.open(TestLogs.scanned(dir, policy = CorruptionPolicy.TRUNCATE)).use { wal ->
                wal.recovery.corruption.shouldNotBeNull()
                wal.replay("a").toList().size shouldBe 1
                wal.topics() shouldBe setOf("a")
                wal.append("b", byteArrayOf(3)) shouldBe 0L
            }
        }

        // ---- segmentSize changed between opens, with an empty active segment ----

        val bigger = { dir: Path ->
            WalOptions(
                dir,
                segmentSize = 1 shl 20,
                blockSize = 256 shl 10,
                maxRecordSize = 128 shl 10,
                verifyOnOpen = true,
            )
        }
        val big = ByteArray(100 shl 10) { (it * 7).toByte() } // fits a 1 MiB segment, not a 64 KiB one

        /** Appends synced 3,000-byte records to "t" until one lands in segment 2; returns how many were appended. */
        suspend fun fillIntoSegment2(dir: Path): Long {
            var n = 0L
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                while (!Files.exists(LogFiles.segment(dir, 2)) || LogFiles.blocks(dir, 2).isEmpty()) {
                    wal.append("t", TestLogs.payload("t", n, 3000)) shouldBe n
                    n++
                }
            }
            return n
        }

        /** Reopens with [options]: nothing truncated, "t" holds [expected] payloads exactly. */
        suspend fun reopenIntact(options: WalOptions, expected: List<ByteArray>) {
            Kwal.open(options).use { wal ->
                wal.recovery.truncatedBytes shouldBe 0
                wal.recovery.droppedRecords shouldBe 0
                wal.recovery.corruption.shouldBeNull()
                val records = wal.replay("t").toList()
                records.map { it.sequence } shouldBe expected.indices.map { it.toLong() }
                records.map { it.payload.toList() } shouldBe expected.map { it.toList() }
            }
        }

        for (truncateCorruption in listOf(false, true)) {
            val how = if (truncateCorruption) "corruption cut under TRUNCATE" else "a torn tail"
            test("segmentSize raised after $how emptied the active segment: a record too big for it is kept") {
                // Segment 2 (64 KiB) was left empty, as the active segment, by the truncation of its first group.
                // Opened with 1 MiB segments, a 100 KiB record rolled past it into a 1 MiB segment 3; the next open
                // found "segment 2 is empty but a later one has data" and dropped the acknowledged record as a torn
                // tail.
                val dir = TestLogs.tempDir()
                var n = fillIntoSegment2(dir)
                if (truncateCorruption) {
                    // a second group in segment 2, whose synced-through vouches for the first: damage there is
                    // corruption
                    Kwal.open(TestLogs.scanned(dir)).use { wal ->
                        wal.append("t", TestLogs.payload("t", n, 3000)) shouldBe
                            n
                    }
                    n++
                }
                LogFiles.blocks(dir, 2).size shouldBe (if (truncateCorruption) 2 else 1)
                val first = LogFiles.blocks(dir, 2).first()
                LogFiles.zero(LogFiles.segment(dir, 2), first.at + first.size / 2, first.end)
                val reopened = if (truncateCorruption) {
                    shouldThrow<WalCorruptedException> { Kwal.open(bigger(dir)).close() }
                    WalOptions(
                        dir,
                        1 shl 20,
                        256 shl 10,
                        128 shl 10,
                        corruptionPolicy = CorruptionPolicy.TRUNCATE,
                        verifyOnOpen = true,
                    )
                } else {
                    bigger(dir)
                }
                val kept = LogFiles.blocks(dir, 1).filter { it.topicId != 0 }.sumOf { it.count }.toLong()
                Kwal.open(reopened).use { wal ->
                    wal.recovery.truncatedBytes shouldBeGreaterThan 0L
                    wal.nextSequence("t") shouldBe kept
                    wal.append("t", big) shouldBe kept
                }
                reopenIntact(bigger(dir), (0 until kept).map { TestLogs.payload("t", it, 3000) } + listOf(big))
            }
        }

        test(
            "segmentSize raised after a fresh log was closed with no appends: " +
                "a record too big for the old size is kept",
        ) {
            val dir = TestLogs.tempDir()
            Kwal.open(TestLogs.scanned(dir)).close()
            LogFiles.segment(dir, 1).fileSize() shouldBe (64L shl 10)
            Kwal.open(bigger(dir)).use { wal -> wal.append("t", big) shouldBe 0 }
            reopenIntact(bigger(dir), listOf(big))
            Kwal.open(bigger(dir)).use { wal -> wal.append("t", big) shouldBe 1 }
            reopenIntact(bigger(dir), listOf(big, big))
        }

        test("segmentSize lowered after a torn tail emptied the active segment, or on an empty log: the log goes on") {
            val payloads = { from: Long, count: Int ->
                (from until from + count).map { TestLogs.payload("t", it, 3000) }
            }
            // A torn tail empties segment 2 of a 64 KiB log; reopened at the minimum size... there is nothing lower
            // than 64 KiB, so write at 1 MiB first and lower to 64 KiB.
            val dir = TestLogs.tempDir()
            val written = ArrayList<ByteArray>()
            Kwal.open(bigger(dir)).use { wal ->
                // 1 MiB segments: about 340 records of 3,000 B fill one; stop once one lands in segment 2
                var n = 0L
                while (!Files.exists(LogFiles.segment(dir, 2)) || LogFiles.blocks(dir, 2).isEmpty()) {
                    val p = TestLogs.payload("t", n, 3000)
                    wal.append("t", p) shouldBe n
                    written.add(p)
                    n++
                }
            }
            val torn = LogFiles.blocks(dir, 2).single()
            LogFiles.zero(LogFiles.segment(dir, 2), torn.at + torn.size / 2, torn.end)
            written.removeLast()
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                wal.recovery.truncatedBytes shouldBeGreaterThan 0L
                // 100 records of 3,000 B: several 64 KiB segments
                for (p in payloads(written.size.toLong(), 100)) {
                    wal.append("t", p) shouldBe written.size.toLong()
                    written.add(p)
                }
            }
            reopenIntact(TestLogs.scanned(dir), written)

            val empty = TestLogs.tempDir()
            Kwal.open(bigger(empty)).close()
            Kwal.open(TestLogs.scanned(empty)).use { wal ->
                for ((i, p) in payloads(0, 100).withIndex()) wal.append("t", p) shouldBe i.toLong()
            }
            reopenIntact(TestLogs.scanned(empty), payloads(0, 100))
        }
    })
