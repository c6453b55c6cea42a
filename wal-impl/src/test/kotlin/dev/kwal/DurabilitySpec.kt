package dev.kwal

import dev.kwal.Contract.readAll
import dev.kwal.Contract.seqs
import dev.kwal.engine.Kwal
import dev.kwal.engine.KwalEngine
import dev.kwal.engine.io.PowerLossFileIo
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import java.nio.file.Path
import java.util.concurrent.ConcurrentHashMap
import kotlin.random.Random

/** Every [Durability] works end to end, as the log's default and per call; [Wal.sync] returns. */
class DurabilitySpec :
    FunSpec({
        val newDir = Contract.dirs(this)

        for (durability in listOf(Durability.Sync, Durability.None, Durability.Interval(10))) {
            test("default durability $durability: concurrent appends and batches survive close and reopen") {
                val dir = newDir()
                val acked = ConcurrentHashMap<Pair<String, Long>, String>()
                withTimeout(Contract.HANG) {
                    Kwal.open(TestLogs.small(dir, durability)).use { wal ->
                        withContext(Dispatchers.Default) {
                            coroutineScope {
                                repeat(8) { c ->
                                    launch {
                                        repeat(100) { i ->
                                            val topic = "d${(c + i) % 4}"
                                            if (i % 10 == 0) {
                                                val ps = (0 until 3).map { "$c-$i-$it" }
                                                wal.appendBatch(topic, ps.map { it.encodeToByteArray() })
                                                    .forEachIndexed { k, s -> acked[topic to s] = ps[k] }
                                            } else {
                                                val p = "$c-$i"
                                                acked[topic to wal.append(topic, p.encodeToByteArray())] = p
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        wal.sync()
                    }
                }
                Kwal.open(TestLogs.small(dir, durability)).use { wal ->
                    wal.recovery.truncatedBytes shouldBe 0
                    var total = 0
                    for (topic in wal.topics()) {
                        val records = wal.readAll(topic)
                        records.seqs() shouldBe (0L until records.size).toList()
                        records.forEach { it.payload.decodeToString() shouldBe acked[topic to it.sequence] }
                        total += records.size
                    }
                    total shouldBe acked.size
                    total shouldBe 8 * (90 + 10 * 3)
                }
            }
        }

        test("per-call durability overrides the default, both ways") {
            val dir = newDir()
            val overrides = listOf(Durability.Sync, Durability.None, Durability.Interval(5), null)
            for (default in listOf(Durability.None, Durability.Sync, Durability.Interval(50))) {
                Kwal.open(TestLogs.small(dir, default)).use { wal ->
                    for (o in overrides) {
                        val next = wal.nextSequence("o")
                        wal.append("o", "$default/$o".encodeToByteArray(), o) shouldBe next
                        wal.appendBatch("o", listOf("$default/$o/b".encodeToByteArray()), o) shouldBe
                            (next + 1..next + 1)
                    }
                }
            }
            Kwal.open(TestLogs.small(dir)).use { wal ->
                wal.readAll("o").map { it.payload.decodeToString() } shouldBe
                    listOf(Durability.None, Durability.Sync, Durability.Interval(50)).flatMap { d ->
                        overrides.flatMap { o -> listOf("$d/$o", "$d/$o/b") }
                    }
            }
        }

        test("sync() returns: on an empty log, after unsynced appends, concurrently, and repeatedly") {
            Kwal.open(TestLogs.small(newDir(), Durability.None)).use { wal ->
                withTimeout(Contract.HANG) {
                    wal.sync()
                    repeat(50) { wal.append("s", byteArrayOf(it.toByte())) }
                    wal.sync()
                    wal.sync()
                    withContext(Dispatchers.Default) {
                        coroutineScope {
                            repeat(10) { c ->
                                launch {
                                    repeat(20) {
                                        wal.append("s$c", byteArrayOf(1))
                                        if (it % 5 == 0) wal.sync()
                                    }
                                }
                            }
                            repeat(4) { launch { repeat(10) { wal.sync() } } }
                        }
                    }
                    wal.sync()
                }
                wal.nextSequence("s") shouldBe 50
            }
        }

        test("sync() after close throws WalClosedException") {
            val wal = Kwal.open(TestLogs.small(newDir()))
            wal.close()
            shouldThrow<WalClosedException> { withTimeout(Contract.HANG) { wal.sync() } }
        }

        test(
            "Durability.Interval syncs in the background: what was acknowledged a few intervals ago " +
                "survives a power cut",
        ) {
            // The simulated disk keeps, loses or tears each unsynced sector at a cut, and writes none back on its own:
            // only the log's background sync can make these records durable.
            for (seed in 1L..3L) {
                val disk = PowerLossFileIo(seed, writebackChance = 0.0)
                val dir = Path.of("/disk/interval")
                val wal = KwalEngine.open(TestLogs.small(dir, Durability.Interval(20)), disk.session())
                val payloads = (0 until 60).map { TestLogs.payload("i", it.toLong(), 200) }
                for (p in payloads) wal.append("i", p)
                delay(400) // twenty intervals
                disk.cut(Random(seed))
                runCatching { wal.close() } // its disk is gone
                KwalEngine.open(TestLogs.small(dir), disk.session()).use { again ->
                    withClue("seed $seed") {
                        again.replay("i").toList().map { it.payload.toList() } shouldBe payloads.map { it.toList() }
                    }
                }
            }
        }

        test("visibility: a record is not readable, counted or followed until its sync completes") {
            val io = dev.kwal.engine.io.FaultyFileIo()
            KwalEngine.open(TestLogs.small(newDir()), io).use { wal ->
                wal.append("v", byteArrayOf(0)) shouldBe 0L
                val gate = java.util.concurrent.CountDownLatch(1)
                io.forceGate = gate
                withContext(Dispatchers.Default) {
                    val follower = async { wal.follow("v").take(2).toList() }
                    val pending = async { wal.append("v", byteArrayOf(1)) }
                    try {
                        delay(200) // written by now, its sync held open
                        pending.isCompleted shouldBe false
                        wal.replay("v").toList().map { it.sequence } shouldBe listOf(0L)
                        wal.nextSequence("v") shouldBe 1L
                        follower.isCompleted shouldBe false
                    } finally {
                        io.forceGate = null
                        gate.countDown()
                    }
                    withTimeout(10_000) {
                        pending.await() shouldBe 1L
                        follower.await().map { it.sequence } shouldBe listOf(0L, 1L)
                    }
                    wal.replay("v").toList().map { it.sequence } shouldBe listOf(0L, 1L)
                }
            }
        }
    })
