package dev.kwal

import dev.kwal.engine.KwalEngine
import dev.kwal.engine.io.FaultyFileIo
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldStartWith
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.withTimeout
import java.util.concurrent.CountDownLatch
import java.util.concurrent.Executors
import kotlin.time.Duration.Companion.minutes

/**
 * The callers of a group are resumed in bulk (`commit.Resumer`): in chunks, each one task on the callers' dispatcher.
 * Every caller still gets its own sequence, on a thread of its own dispatcher, whatever the mix of dispatchers and
 * however many callers share a group.
 */
class BulkResumeSpec :
    FunSpec({
        val newDir = Contract.dirs(this)

        test("hundreds of callers in one group, on four dispatchers, each resumed on its own with its own sequence")
            .config(timeout = 2.minutes) {
                val io = FaultyFileIo()
                val pool = Executors.newFixedThreadPool(3) { r -> Thread(r, "caller-pool").apply { isDaemon = true } }
                val poolDispatcher = pool.asCoroutineDispatcher()
                try {
                    KwalEngine.open(TestLogs.small(newDir()), io).use { wal ->
                        wal.append("r", byteArrayOf(0)) shouldBe 0L
                        // Hold the syncs open: every append below is written meanwhile, and acknowledged in one finish.
                        val gate = CountDownLatch(1)
                        io.forceGate = gate
                        val dispatchers: List<Pair<CoroutineDispatcher, String?>> = listOf(
                            Dispatchers.Default to "DefaultDispatcher-worker",
                            Dispatchers.IO to "DefaultDispatcher-worker",
                            poolDispatcher to "caller-pool",
                            Dispatchers.Unconfined to null, // resumed where it is resumed: no thread to check
                        )
                        val n = 600
                        withTimeout(Contract.HANG) {
                            coroutineScope {
                                // Runs of callers on one dispatcher, longer and shorter than a chunk, interleaved.
                                val calls = (0 until n).map { i ->
                                    val (dispatcher, thread) = dispatchers[(i / 40 + i % 3) % dispatchers.size]
                                    async(dispatcher) {
                                        val payload = "caller $i".encodeToByteArray()
                                        val seq = wal.append("r", payload)
                                        val resumedOn = Thread.currentThread().name
                                        Triple(seq, payload, thread?.let { resumedOn to it })
                                    }
                                }
                                delay(300) // every call queued and written by now, its sync held
                                io.forceGate = null
                                gate.countDown()
                                val results = calls.awaitAll()
                                results.map { it.first }.sorted() shouldBe (1L..n).toList()
                                for ((seq, payload, threads) in results) {
                                    withClue("seq $seq") {
                                        wal.read("r", seq)!!.payload.decodeToString() shouldBe payload.decodeToString()
                                        threads?.let { (resumedOn, expected) -> resumedOn shouldStartWith expected }
                                    }
                                }
                            }
                        }
                    }
                } finally {
                    pool.shutdown()
                }
            }
    })
