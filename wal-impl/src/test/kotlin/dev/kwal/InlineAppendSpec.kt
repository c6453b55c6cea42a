package dev.kwal

import dev.kwal.engine.Kwal
import dev.kwal.engine.KwalEngine
import dev.kwal.engine.io.FaultyFileIo
import dev.kwal.engine.io.FaultyFileIo.Op
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.ints.shouldBeGreaterThanOrEqual
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import java.util.concurrent.ConcurrentHashMap

/**
 * The inline path: an append that needs no sync, made while the log is idle, is written by its caller
 * instead of the writer coroutine (see `InlineAppender`). It must keep every promise a queued append
 * keeps — dense sequences, rollback on a failed write, nothing acknowledged lost at close — while it races with
 * queued appends from other threads.
 */
class InlineAppendSpec :
    FunSpec({

        test("on an idle log an append under Durability.None is written by its caller; a Sync one is queued") {
            val io = FaultyFileIo()
            val dir = TestLogs.tempDir()
            KwalEngine.open(WalOptions(dir), io).use { wal ->
                val first = untilInline(wal, io, "t", Durability.None) // the first registers the topic, on the writer
                val queued = io.count(Op.WRITE)
                val blocking = io.count(Op.STORE)
                repeat(50) {
                    wal.append("t", ByteArray(100) { i -> i.toByte() }, Durability.None) shouldBe
                        first + 1 + it
                }
                withClue("no write went through the writer's asynchronous channel") {
                    io.count(Op.WRITE) shouldBe queued
                }
                io.count(Op.STORE) shouldBeGreaterThanOrEqual blocking + 50
                wal.append("t", ByteArray(100)) shouldBe first + 51 // Sync: group commit, on the writer
                io.count(Op.WRITE) shouldBe queued + 1
            }
            Kwal.open(WalOptions(dir)).use { it.replay("t").toList().size shouldBe it.nextSequence("t").toInt() }
        }

        test("a failed inline write throws, gives its sequence back, and the log goes on") {
            val io = FaultyFileIo()
            val dir = TestLogs.tempDir()
            val options = WalOptions(dir, durability = Durability.None)
            val expected = ArrayList<String>()
            KwalEngine.open(options, io).use { wal ->
                val last = untilInline(wal, io, "t", null)
                for (i in 0..last) expected.add("a$i")
                io.failNth(Op.STORE, 1)
                val e = shouldThrow<WalException> { wal.append("t", "lost".encodeToByteArray()) }
                withClue("a write failure is not a stop: $e") { (e is WalFailedException) shouldBe false }
                wal.nextSequence("t") shouldBe expected.size.toLong()
                wal.append("t", "b".encodeToByteArray()) shouldBe expected.size.toLong()
                wal.appendBatch("t", listOf("c".encodeToByteArray(), "d".encodeToByteArray())).count() shouldBe 2
                expected += listOf("b", "c", "d")
                wal.replay("t").toList().map { it.payload.decodeToString() } shouldBe expected
            }
            Kwal.open(options).use { again ->
                again.replay("t").toList().map { it.payload.decodeToString() } shouldBe expected
            }
        }

        test("inline and queued appends from many threads stay dense, exact and visible in order") {
            val dir = TestLogs.tempDir()
            val topics = listOf("a", "b", "c", "d")
            val acked = ConcurrentHashMap<Pair<String, Long>, ByteArray>()
            Kwal.open(TestLogs.small(dir)).use { wal ->
                coroutineScope {
                    val follower = async { wal.follow("a").take(400).toList() }
                    (0 until 16).map { w ->
                        launch(if (w % 2 == 0) Dispatchers.Default else Dispatchers.IO) {
                            repeat(150) { i ->
                                val topic = topics[(w + i) % topics.size]
                                val p = TestLogs.payload("$topic-$w", i.toLong())
                                when (i % 5) {
                                    0 -> acked[topic to wal.append(topic, p)] = p

                                    4 -> {
                                        val batch = listOf(p, p.copyOf(p.size + 1))
                                        val range = wal.appendBatch(topic, batch, Durability.None)
                                        range.forEachIndexed { k, s -> acked[topic to s] = batch[k] }
                                    }

                                    else -> acked[topic to wal.append(topic, p, Durability.None)] = p
                                }
                            }
                        }
                    }.forEach { it.join() }
                    val followed = follower.await()
                    withClue("the follower saw topic a in sequence order") {
                        followed.map { it.sequence } shouldBe (0L until 400L).toList()
                    }
                }
                for (t in topics) withClue("topic $t") { checkExact(wal, t, acked) }
            }
            Kwal.open(TestLogs.small(dir)).use { again ->
                for (t in topics) withClue("reopened topic $t") { checkExact(again, t, acked) }
            }
        }

        test("close racing inline appends loses no acknowledged record") {
            repeat(5) { round ->
                val dir = TestLogs.tempDir()
                val acked = ConcurrentHashMap<Long, ByteArray>()
                val wal = Kwal.open(WalOptions(dir, durability = Durability.None))
                wal.append("t", ByteArray(1)).also { acked[it] = ByteArray(1) }
                coroutineScope {
                    val appenders = (0 until 4).map { w ->
                        async(Dispatchers.Default) {
                            var i = 0
                            while (true) {
                                val p = TestLogs.payload("w$w", (i++).toLong())
                                try {
                                    acked[wal.append("t", p)] = p
                                } catch (e: WalClosedException) {
                                    break
                                }
                            }
                        }
                    }
                    delay(20L + round * 7)
                    withContext(Dispatchers.IO) { wal.close() }
                    appenders.awaitAll()
                }
                Kwal.open(WalOptions(dir)).use { again ->
                    val records = again.replay("t").toList()
                    withClue("round $round: every acknowledged record, densely") {
                        records.map { it.sequence } shouldBe (0L until acked.size).toList()
                        for (r in records) r.payload.contentEquals(acked[r.sequence]) shouldBe true
                    }
                }
            }
        }
    }) {
    companion object {
        /**
         * Appends "a0", "a1", ... to [topic] until one is written inline; returns its sequence. The first append
         * registers the topic through the writer, and one that follows a queued append may find the writer still
         * finishing and queue too; one that follows an inline append finds the log idle.
         */
        private suspend fun untilInline(wal: Wal, io: FaultyFileIo, topic: String, durability: Durability?): Long {
            repeat(1_000) {
                val before = io.count(Op.STORE)
                val seq = wal.append(topic, "a${wal.nextSequence(topic)}".encodeToByteArray(), durability)
                if (io.count(Op.STORE) > before) return seq
            }
            error("1,000 appends on an idle log, none written inline")
        }

        private suspend fun checkExact(wal: Wal, topic: String, acked: Map<Pair<String, Long>, ByteArray>) {
            val expected = acked.filterKeys { it.first == topic }
            val records = wal.replay(topic).toList()
            records.map { it.sequence } shouldBe (0L until expected.size).toList()
            for (r in records) {
                withClue("record ${r.sequence}") {
                    r.payload.contentEquals(expected[topic to r.sequence]) shouldBe true
                }
            }
        }
    }
}
