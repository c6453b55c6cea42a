package dev.kwal

import dev.kwal.crash.ChildJvm
import dev.kwal.crash.OverloadProcess
import dev.kwal.engine.Kwal
import dev.kwal.engine.KwalEngine
import dev.kwal.engine.io.FaultyFileIo
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.types.shouldBeInstanceOf
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import java.io.BufferedReader
import java.io.InputStreamReader
import java.util.concurrent.CountDownLatch
import java.util.concurrent.ExecutionException
import java.util.concurrent.TimeUnit
import kotlin.time.Duration.Companion.minutes

/**
 * Bounded memory under overload: the log's queue holds at most [WalOptions.maxQueuedBytes] (callers beyond it wait,
 * suspended and in order), and [AsyncWal] bounds its pending futures (blocking, or refusing with
 * [WalOverloadedException]). Before the bound, 3 M un-awaited appends under `-Xmx256m` ended in `OutOfMemoryError`.
 */
class OverloadSpec :
    FunSpec({
        val newDir = Contract.dirs(this)

        test("callers past maxQueuedBytes wait their turn: every append lands, densely, in the order of each caller") {
            val options = TestLogs.small(newDir()).toBuilder().maxQueuedBytes(2_000).build()
            Kwal.open(options).use { wal ->
                withContext(Dispatchers.Default) {
                    (0 until 16).map { w ->
                        async {
                            (0 until 200).map { i -> wal.append("w$w", TestLogs.payload("w$w", i.toLong(), 300)) }
                        }
                    }.awaitAll().forEach { seqs -> seqs shouldBe (0L until 200).toList() }
                }
                for (w in 0 until 16) {
                    wal.replay("w$w").toList().map { it.payload.toList() } shouldBe
                        (0 until 200).map { TestLogs.payload("w$w", it.toLong(), 300).toList() }
                }
            }
        }

        test("one thread's un-awaited appends keep their order while the queue is full") {
            val options = TestLogs.small(newDir()).toBuilder().maxQueuedBytes(1_000).build()
            AsyncWal.of(Kwal.open(options)).use { wal ->
                val futures = (0 until 3000).map { i ->
                    wal.append(
                        "o",
                        TestLogs.payload("o", i.toLong(), 200),
                        if (i % 2 == 0) Durability.Sync else Durability.None,
                    )
                }
                futures.map { it.get(60, TimeUnit.SECONDS) } shouldBe (0L until 3000).toList()
            }
        }

        test("a caller cancelled while it waits for room resumes at once and its record is never written") {
            val options = TestLogs.small(newDir()).toBuilder().maxQueuedBytes(1).build()
            val io = FaultyFileIo()
            KwalEngine.open(options, io).use { wal ->
                withContext(Dispatchers.Default) {
                    // The writer is held inside the first append's sync, so nothing drains the queue: the next filler
                    // fills it, every other one is parked, and so is the append below, behind them. (Without the gate,
                    // a preempted test thread let the writer drain everything, and the append was admitted, not parked.)
                    val gate = CountDownLatch(1)
                    io.forceGate = gate
                    val forces = io.counts().getValue(FaultyFileIo.Op.FORCE)
                    val first = async { wal.append("f", TestLogs.payload("f", 0, 1000)) }
                    try {
                        withTimeout(10_000) {
                            while (io.counts().getValue(FaultyFileIo.Op.FORCE) == forces) delay(1)
                        }
                        val filler =
                            (1 until 200).map { i ->
                                async(start = CoroutineStart.UNDISPATCHED) {
                                    wal.append("f", TestLogs.payload("f", i.toLong(), 1000))
                                }
                            }
                        val cancelled = launch(start = CoroutineStart.UNDISPATCHED) { wal.append("c", byteArrayOf(1)) }
                        withTimeout(10_000) { cancelled.cancelAndJoin() } // resumes at once: the sync is still held
                        io.forceGate = null
                        gate.countDown()
                        first.await()
                        filler.awaitAll()
                    } finally {
                        io.forceGate = null
                        gate.countDown()
                    }
                    wal.sync()
                    wal.nextSequence("c") shouldBe 0L
                    wal.append("f", byteArrayOf(2)) shouldBe 200L
                }
            }
        }

        test(
            "AsyncWal with WhenFull.FAIL refuses calls past its bound with WalOverloadedException, and loses nothing",
        ) {
            val dir = newDir()
            AsyncWal.of(Kwal.open(TestLogs.small(dir)), 4_000, AsyncWal.WhenFull.FAIL).use { wal ->
                val futures = (0 until 500).map { i -> wal.append("r", TestLogs.payload("r", i.toLong(), 1000)) }
                var refused = 0
                var acked = 0
                for (f in futures) {
                    try {
                        f.get(30, TimeUnit.SECONDS)
                        acked++
                    } catch (e: ExecutionException) {
                        e.cause.shouldBeInstanceOf<WalOverloadedException>()
                        refused++
                    }
                }
                withClue("acked=$acked refused=$refused") { (refused > 0 && acked > 0) shouldBe true }
                wal.nextSequence("r") shouldBe acked.toLong()
            }
        }

        /** Runs [OverloadProcess] in a `-Xmx256m` child; returns its RESULT line's fields. */
        fun overload(scenario: String, count: Long): Map<String, String> {
            val dir = newDir()
            val child = ProcessBuilder(
                ChildJvm.javaBin(), "-Xmx256m", "-XX:MaxDirectMemorySize=256m", "-cp", ChildJvm.classpath(),
                OverloadProcess::class.java.name, dir.toString(), scenario, count.toString(),
            ).redirectErrorStream(true).start()
            val lines = BufferedReader(InputStreamReader(child.inputStream)).readLines()
            child.waitFor(60, TimeUnit.SECONDS)
            dir.toFile().deleteRecursively()
            val result = lines.lastOrNull { it.startsWith("RESULT ") }
            withClue("child output:\n${lines.takeLast(30).joinToString("\n")}") {
                child.exitValue() shouldBe 0
                (result != null) shouldBe true
            }
            println(result)
            return result!!.removePrefix("RESULT ").split(' ').filter { '=' in it }
                .associate { it.substringBefore('=') to it.substringAfter('=') }
        }

        // 3 M in the default build (the count that ran out of memory before the bound); the soak profile runs 10 M.
        val appends = System.getProperty("overload.appends")?.takeIf { it.isNotBlank() }?.toLong() ?: 3_000_000L

        test(
            "$appends un-awaited 100 B appends through AsyncWal under -Xmx256m: every one answered, " +
                "no OutOfMemoryError",
        )
            .config(timeout = 15.minutes) {
                val r = overload("java-wait", appends)
                r["acked"] shouldBe appends.toString()
                r["other"] shouldBe "0"
            }

        test("1 M un-awaited appends through AsyncWal(WhenFull.FAIL) under -Xmx256m: each acked or refused, typed")
            .config(timeout = 5.minutes) {
                val r = overload("java-fail", 1_000_000)
                (r.getValue("acked").toLong() + r.getValue("refused").toLong()) shouldBe 1_000_000L
                r["other"] shouldBe "0"
            }

        test("2,000 un-awaited 1 MiB appends through AsyncWal and 2,000 concurrent 1 MiB coroutines under -Xmx256m")
            .config(timeout = 10.minutes) {
                overload("java-mib", 2_000).let {
                    it["acked"] shouldBe "2000"
                    it["other"] shouldBe "0"
                }
                overload("kotlin-mib", 2_000).let {
                    it["acked"] shouldBe "2000"
                    it["other"] shouldBe "0"
                }
            }
    })
