package dev.kwal.failure

import dev.kwal.TestLogs
import dev.kwal.WalException
import dev.kwal.engine.Kwal
import dev.kwal.engine.KwalEngine
import dev.kwal.engine.io.FaultyFileIo
import dev.kwal.engine.io.FaultyFileIo.Op
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.property.Arb
import io.kotest.property.arbitrary.int
import io.kotest.property.arbitrary.list
import io.kotest.property.arbitrary.long
import io.kotest.property.checkAll
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import java.nio.ByteBuffer
import kotlin.random.Random

/**
 * Batches of random sizes — from one tiny record to many records spanning several 8 KiB blocks and most of a
 * 64 KiB segment — appended concurrently, so they straddle block and segment boundaries; once with no fault and
 * once with a write failing at a random point. After reopening: every acknowledged batch is whole, contiguous
 * and in place, no failed batch left a single record behind, and sequences are dense.
 */
class BatchPropertySpec :
    FunSpec({

        /** A batch's records say which batch they belong to, their index in it and the batch size. */
        fun record(batch: Int, index: Int, count: Int, size: Int): ByteArray =
            ByteBuffer.allocate(maxOf(size, 12)).putInt(batch).putInt(index).putInt(count).array()

        /** Runs the batches; returns whether the armed failure (if any) fired. */
        suspend fun check(seed: Long, batchSizes: List<Int>, failAt: Int?): Boolean {
            val rnd = Random(seed)
            val dir = TestLogs.tempDir("kwal-batch-prop")
            val io = FaultyFileIo()
            val acked = HashMap<Int, LongRange>()
            val failed = HashSet<Int>()
            var fired = false
            KwalEngine.open(TestLogs.small(dir), io).use { wal ->
                if (failAt != null) io.failNth(Op.WRITE, failAt)
                withTimeout(60_000) {
                    withContext(Dispatchers.Default) {
                        // Up to 4 batches in flight at once, so they share groups.
                        for (chunk in batchSizes.withIndex().chunked(4)) {
                            coroutineScope {
                                chunk.map { (b, n) ->
                                    async {
                                        val size = rnd.nextInt(12, 2000)
                                        b to runCatching { wal.appendBatch("t", List(n) { record(b, it, n, size) }) }
                                    }
                                }.awaitAll().forEach { (b, r) ->
                                    r.onSuccess { acked[b] = it }.onFailure {
                                        (it is WalException) shouldBe true
                                        failed.add(b)
                                    }
                                }
                            }
                        }
                    }
                }
                fired = failAt != null && io.allFired()
                if (fired) {
                    withClue("seed $seed: the failed write failed some batch") {
                        failed.isEmpty() shouldBe false
                    }
                }
            }
            Kwal.open(TestLogs.small(dir)).use { wal ->
                val records = wal.replay("t").toList()
                records.map { it.sequence } shouldBe records.indices.map { it.toLong() }
                var i = 0
                while (i < records.size) {
                    val b = ByteBuffer.wrap(records[i].payload)
                    val batch = b.getInt(0)
                    val count = b.getInt(8)
                    withClue("seed $seed: batch $batch at ${records[i].sequence}") {
                        (batch in failed) shouldBe false
                        acked[batch] shouldBe (records[i].sequence until records[i].sequence + count)
                        for (k in 0 until count) ByteBuffer.wrap(records[i + k].payload).getInt(4) shouldBe k
                    }
                    i += count
                }
                withClue("seed $seed: every acknowledged batch is present") {
                    acked.values.sumOf { it.count() } shouldBe records.size
                }
            }
            dir.toFile().deleteRecursively()
            return fired
        }

        test("batches of random sizes straddling blocks and segments are whole after reopen") {
            checkAll(25, Arb.long(), Arb.list(Arb.int(1..40), 4..24)) { seed, sizes ->
                check(seed, sizes, failAt = null)
            }
        }

        test("with a write failing at a random point, every batch is whole or absent") {
            var fired = 0
            checkAll(25, Arb.long(), Arb.list(Arb.int(1..40), 4..24), Arb.int(1..12)) { seed, sizes, failAt ->
                if (check(seed, sizes, failAt)) fired++
            }
            println("BatchPropertySpec: the injected write failure fired in $fired of 25 runs")
            // A run makes at least 4 writes (one group per chunk of 4 batches): failures at calls 1..4 always fire,
            // about a third of the draws; later ones fire when the run had that many writes.
            withClue("injected failures that fired") { (fired >= 8) shouldBe true }
        }
    })
