package dev.kwal

import dev.kwal.Contract.readAll
import dev.kwal.Contract.seqs
import dev.kwal.engine.Kwal
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import java.util.concurrent.ConcurrentHashMap

/** Cancelling appends: the caller resumes at once; each record or batch is then stored whole or not at all. */
class CancellationSpec :
    FunSpec({
        val newDir = Contract.dirs(this)

        test("cancelled appends and batches are stored whole or not at all, and sequences stay dense") {
            val dir = newDir()
            val acked = ConcurrentHashMap<Long, String>()
            withTimeout(Contract.HANG) {
                Kwal.open(TestLogs.small(dir)).use { wal ->
                    withContext(Dispatchers.Default) {
                        val calls = (0 until 400).map { i ->
                            async {
                                if (i % 4 == 0) {
                                    val ps = (0 until 3).map { "b$i-$it" }
                                    wal.appendBatch("k", ps.map { it.encodeToByteArray() }).forEachIndexed { k, s ->
                                        acked[s] =
                                            ps[k]
                                    }
                                } else {
                                    acked[wal.append("k", "s$i".encodeToByteArray())] = "s$i"
                                }
                            }
                        }
                        calls.forEachIndexed { i, c -> if (i % 3 == 1) c.cancel() }
                        calls.forEach {
                            runCatching { it.await() }.exceptionOrNull()?.let { e ->
                                (e is CancellationException) shouldBe
                                    true
                            }
                        }
                    }
                    wal.sync()
                }
            }
            Kwal.open(TestLogs.small(dir)).use { wal ->
                val records = wal.readAll("k")
                records.seqs() shouldBe (0L until records.size).toList()
                val texts = records.map { it.payload.decodeToString() }
                // every acknowledged record is where its call was told
                for ((seq, p) in acked) withClue("seq $seq") { texts[seq.toInt()] shouldBe p }
                // nothing twice, and batches whole and contiguous
                texts.toSet().size shouldBe texts.size
                var i = 0
                while (i < texts.size) {
                    if (texts[i].startsWith("b")) {
                        val id = texts[i].substringBefore('-')
                        texts[i] shouldBe "$id-0"
                        texts[i + 1] shouldBe "$id-1"
                        texts[i + 2] shouldBe "$id-2"
                        i += 3
                    } else {
                        i++
                    }
                }
                wal.append("k", byteArrayOf(1)) shouldBe records.size.toLong()
            }
        }

        test("a caller cancelled while its group's sync is in progress resumes while the sync is still held") {
            val io = dev.kwal.engine.io.FaultyFileIo()
            dev.kwal.engine.KwalEngine.open(TestLogs.small(newDir()), io).use { wal ->
                wal.append("c", byteArrayOf(0))
                val gate = java.util.concurrent.CountDownLatch(1)
                io.forceGate = gate
                try {
                    // Its own scope: if the call did not resume, the test must fail, not wait for it.
                    val call = kotlinx.coroutines.CoroutineScope(Dispatchers.Default).async {
                        wal.append("c", byteArrayOf(1))
                    }
                    kotlinx.coroutines.delay(100) // written; waiting for its sync, which cannot finish
                    call.isCompleted shouldBe false
                    call.cancel()
                    // "At once": it resumes with the sync still held, so it cannot have waited for the sync.
                    val deadline = System.nanoTime() + 10_000_000_000L
                    while (!call.isCompleted && System.nanoTime() < deadline) kotlinx.coroutines.delay(10)
                    withClue("the cancelled call resumed while its sync was held") { call.isCompleted shouldBe true }
                    call.isCancelled shouldBe true
                    gate.count shouldBe 1L
                } finally {
                    io.forceGate = null
                    gate.countDown()
                }
                wal.sync()
                // Written whole before it was cancelled: it is committed (the caller is not told which).
                wal.nextSequence("c") shouldBe 2L
            }
        }

        test("a commit or truncation cancelled after it was written is in effect at once, as it is after reopen") {
            // Control records used to be applied by their caller after it resumed: a caller cancelled while the
            // record waited for its sync never applied it, and the log said otherwise until the next open.
            val io = dev.kwal.engine.io.FaultyFileIo()
            val dir = newDir()
            var inMemory: Pair<Long?, Long>? = null
            dev.kwal.engine.KwalEngine.open(TestLogs.small(dir), io).use { wal ->
                repeat(10) { wal.append("c", byteArrayOf(it.toByte())) }
                val gate = java.util.concurrent.CountDownLatch(1)
                io.forceGate = gate
                try {
                    val calls = kotlinx.coroutines.CoroutineScope(Dispatchers.Default).let { scope ->
                        listOf(scope.async { wal.commit("reader", "c", 7) }, scope.async { wal.truncateBefore("c", 4) })
                    }
                    kotlinx.coroutines.delay(100) // written; waiting for their sync, which cannot finish
                    calls.forEach { it.cancel() }
                    calls.forEach { it.join() }
                } finally {
                    io.forceGate = null
                    gate.countDown()
                }
                wal.sync()
                inMemory = wal.committed("reader", "c") to wal.firstSequence("c")
            }
            dev.kwal.engine.KwalEngine.open(TestLogs.small(dir), io).use { wal ->
                val onDisk = wal.committed("reader", "c") to wal.firstSequence("c")
                // The first to reach the writer is written (held at its sync), the other may have been abandoned in
                // the queue: either way, what the log said before reopening is what it holds.
                withClue("at least one was written: $onDisk") {
                    (onDisk.first == 7L || onDisk.second == 4L) shouldBe
                        true
                }
                inMemory shouldBe onDisk
            }
        }
    })
