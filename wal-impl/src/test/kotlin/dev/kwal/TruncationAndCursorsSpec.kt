package dev.kwal

import dev.kwal.crash.ChildJvm
import dev.kwal.crash.ControlProcess
import dev.kwal.crash.CrashPayloads
import dev.kwal.engine.Kwal
import dev.kwal.engine.KwalEngine
import dev.kwal.engine.io.PowerLossFileIo
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.onEach
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import java.nio.file.Path
import java.util.concurrent.TimeUnit
import kotlin.random.Random

/**
 * `truncateBefore` and `firstSequence`, and consumer positions (`commit`, `committed`, `consumers`,
 * `deleteConsumer`, `follow` by consumer): their contracts, that they survive reopening, a process crash and a
 * power cut once acknowledged, and that the control topic that holds them is no user's.
 */
class TruncationAndCursorsSpec :
    FunSpec({
        fun newDir(): Path = TestLogs.tempDir()

        suspend fun Wal.fill(topic: String, n: Int) {
            repeat(n) { append(topic, TestLogs.payload(topic, it.toLong(), 300)) }
        }

        test("truncateBefore hides the records below it from replay, follow and firstSequence, and survives reopen") {
            val dir = newDir()
            Kwal.open(TestLogs.small(dir)).use { wal ->
                wal.fill("t", 500) // several segments of 64 KiB
                wal.fill("u", 10)
                wal.firstSequence("t") shouldBe 0
                wal.truncateBefore("t", 321)
                wal.firstSequence("t") shouldBe 321
                wal.nextSequence("t") shouldBe 500
                wal.replay("t").toList().map { it.sequence } shouldBe (321L until 500).toList()
                wal.replay("t", 400).toList().first().sequence shouldBe 400
                wal.follow("t", 5).take(3).toList().map { it.sequence } shouldBe listOf(321L, 322L, 323L)
                wal.replay("u").toList().size shouldBe 10 // other topics untouched
                wal.truncateBefore("t", 100) // lower than in force: nothing changes
                wal.firstSequence("t") shouldBe 321
                wal.append("t", byteArrayOf(1)) shouldBe 500 // sequences are not reused
            }
            Kwal.open(TestLogs.small(dir)).use { wal ->
                wal.firstSequence("t") shouldBe 321
                wal.replay("t").toList().map { it.sequence } shouldBe (321L..500L).toList()
                wal.firstSequence("u") shouldBe 0
                wal.topics() shouldBe setOf("t", "u")
            }
        }

        test("truncating everything, and the bad calls") {
            Kwal.open(TestLogs.small(newDir())).use { wal ->
                wal.fill("t", 20)
                wal.truncateBefore("t", 20)
                wal.replay("t").toList() shouldBe emptyList()
                wal.firstSequence("t") shouldBe 20
                shouldThrow<IllegalArgumentException> { wal.truncateBefore("t", 21) }
                shouldThrow<IllegalArgumentException> { wal.truncateBefore("t", -1) }
                shouldThrow<InvalidTopicException> { wal.truncateBefore("../t", 0) }
                wal.truncateBefore("nothing-here", 0) // an unknown topic has no records to truncate
                shouldThrow<IllegalArgumentException> { wal.truncateBefore("nothing-here", 1) }
                wal.firstSequence("nothing-here") shouldBe 0
            }
        }

        test("a follower skips records truncated before it reads them") {
            Kwal.open(TestLogs.small(newDir())).use { wal ->
                wal.fill("t", 10)
                withContext(Dispatchers.Default) {
                    val reached = CompletableDeferred<Unit>()
                    val gate = CompletableDeferred<Unit>()
                    // The follower holds on to record 9, read before 10..14 exist, until 10..14 are appended and
                    // 0..12 truncated.
                    val follower =
                        async {
                            wal
                                .follow("t", 0)
                                .onEach {
                                    if (it.sequence == 9L) {
                                        reached.complete(Unit)
                                        gate.await()
                                    }
                                }.take(12)
                                .toList()
                        }
                    withTimeout(10_000) { reached.await() }
                    repeat(5) { wal.append("t", byteArrayOf(it.toByte())) } // 10..14
                    wal.truncateBefore("t", 13)
                    gate.complete(Unit)
                    withTimeout(10_000) { follower.await() }.map { it.sequence } shouldBe (0L..9L) + listOf(13L, 14L)
                }
            }
        }

        test("consumer positions: commit, committed, consumers, deleteConsumer, and follow from a position") {
            val dir = newDir()
            Kwal.open(TestLogs.small(dir)).use { wal ->
                wal.fill("jobs", 50)
                wal.committed("worker", "jobs").shouldBeNull()
                wal.follow("jobs", "worker").take(2).toList().map { it.sequence } shouldBe listOf(0L, 1L)
                wal.commit("worker", "jobs", 30)
                wal.commit("auditor", "jobs", 5)
                wal.commit("worker", "other", 0) // a topic with no records: position 0 only
                shouldThrow<IllegalArgumentException> { wal.commit("worker", "other", 1) }
                shouldThrow<IllegalArgumentException> { wal.commit("worker", "jobs", 51) }
                shouldThrow<IllegalArgumentException> { wal.commit("bad/name", "jobs", 1) }
                wal.committed("worker", "jobs") shouldBe 30
                wal.consumers() shouldBe setOf("worker", "auditor")
                wal.follow("jobs", "worker").take(1).toList().single().sequence shouldBe 30
                wal.commit("worker", "jobs", 12) // backwards is allowed: the last commit wins
                wal.committed("worker", "jobs") shouldBe 12
                wal.deleteConsumer("auditor")
                wal.consumers() shouldBe setOf("worker")
                wal.committed("auditor", "jobs").shouldBeNull()
                wal.deleteConsumer("never-was") // nothing to forget
            }
            Kwal.open(TestLogs.small(dir)).use { wal ->
                wal.committed("worker", "jobs") shouldBe 12
                wal.committed("worker", "other") shouldBe 0
                wal.committed("auditor", "jobs").shouldBeNull()
                wal.consumers() shouldBe setOf("worker")
                wal.follow("jobs", "worker").take(1).toList().single().sequence shouldBe 12
                wal.topics() shouldBe setOf("jobs") // the control topic is not a user topic
            }
        }

        test("concurrent commits of one consumer end at the one the log holds last, also after reopen") {
            val dir = newDir()
            val last: Long
            Kwal.open(TestLogs.small(dir)).use { wal ->
                wal.fill("t", 200)
                withContext(Dispatchers.Default) {
                    (0 until 200).map { i -> launch { wal.commit("c", "t", i.toLong()) } }.forEach { it.join() }
                }
                last = wal.committed("c", "t")!!
            }
            Kwal.open(TestLogs.small(dir)).use { wal -> wal.committed("c", "t") shouldBe last }
        }

        test("the control topic is no user's: it cannot be written, read or seen") {
            Kwal.open(TestLogs.small(newDir())).use { wal ->
                wal.fill("t", 5)
                wal.commit("c", "t", 3)
                wal.truncateBefore("t", 2)
                shouldThrow<InvalidTopicException> { wal.append("kwal/control", byteArrayOf(1)) }
                shouldThrow<InvalidTopicException> { wal.appendBatch("kwal/control", listOf(byteArrayOf(1))) }
                shouldThrow<InvalidTopicException> { wal.replay("kwal/control").toList() }
                wal.nextSequence("kwal/control") shouldBe 0
                wal.topics() shouldBe setOf("t")
            }
        }

        test("an acknowledged truncation and commit survive a power cut; unacknowledged ones may go, nothing else") {
            for (seed in 1L..20L) {
                val disk = PowerLossFileIo(seed)
                val dir = Path.of("/disk/control-$seed")
                val wal = KwalEngine.open(TestLogs.small(dir), disk.session())
                val random = Random(seed)
                val truncateAt = random.nextLong(1, 200)
                val commitAt = random.nextLong(0, 200)
                wal.fill("t", 200)
                wal.truncateBefore("t", truncateAt)
                wal.commit("c", "t", commitAt)
                // More, not awaited: the cut lands while some of them are in flight.
                val more =
                    withContext(Dispatchers.Default) {
                        (0 until 20).map { i ->
                            async {
                                runCatching {
                                    wal.append("t", byteArrayOf(i.toByte()), Durability.None)
                                    wal.truncateBefore("t", truncateAt + 1 + i)
                                }
                            }
                        }.also { delay(random.nextLong(0, 5)) }
                    }
                disk.cut(Random(seed))
                more.awaitAll()
                runCatching { wal.close() }
                KwalEngine.open(TestLogs.small(dir), disk.session()).use { again ->
                    withClue("seed $seed") {
                        (again.firstSequence("t") >= truncateAt) shouldBe true
                        again.committed("c", "t") shouldBe commitAt
                        val records = again.replay("t").toList()
                        (records.firstOrNull()?.sequence ?: again.firstSequence("t")) shouldBe again.firstSequence("t")
                        records.filter { it.sequence < 200 }.map { it.sequence } shouldBe
                            (again.firstSequence("t") until 200).toList()
                    }
                }
            }
        }

        test("truncations and commits survive SIGKILL once acknowledged; no acknowledged record above them is lost") {
            val dir = newDir()
            val known = HashMap<Long, Long>() // acknowledged records of t: sequence -> crc
            var truncatedTo = 0L
            var committedTo = 0L
            for (cycle in 1..4) {
                val child = ChildJvm.start(ControlProcess::class, dir.toString(), cycle.toString())
                try {
                    for (a in child.killAfter(300 + Random(cycle).nextInt(2_000), 30_000)) {
                        when (a.topic) {
                            "TRUNC" -> truncatedTo = maxOf(truncatedTo, a.seq)
                            "COMMIT" -> committedTo = maxOf(committedTo, a.seq)
                            else -> known[a.seq] = a.crc
                        }
                    }
                } finally {
                    child.close()
                }
                Kwal.open(TestLogs.small(dir)).use { wal ->
                    withClue("cycle $cycle: ${wal.recovery}") {
                        val first = wal.firstSequence("t")
                        (first >= truncatedTo) shouldBe true
                        (wal.committed("c", "t")!! >= committedTo) shouldBe true
                        val records = wal.replay("t").toList()
                        records.map { it.sequence } shouldBe (first until wal.nextSequence("t")).toList()
                        val held = records.associate { it.sequence to CrashPayloads.crc(it.payload) }
                        for ((seq, crc) in known) if (seq >= first) held[seq] shouldBe crc
                        truncatedTo = first
                    }
                }
            }
        }

        test("the Java facade: truncateBefore, firstSequence, commit, committed, consumers, deleteConsumer, follow") {
            AsyncWal.of(Kwal.open(TestLogs.small(newDir()))).use { wal ->
                (0 until 30).map { wal.append("t", byteArrayOf(it.toByte())) }.forEach { it.get(10, TimeUnit.SECONDS) }
                wal.truncateBefore("t", 10).get(10, TimeUnit.SECONDS)
                wal.firstSequence("t") shouldBe 10
                wal.commit("c", "t", 25).get(10, TimeUnit.SECONDS)
                wal.committed("c", "t") shouldBe 25
                wal.consumers() shouldBe setOf("c")
                val got = java.util.concurrent.LinkedBlockingQueue<Long>()
                val follow = wal.follow("t", "c") { got.add(it.sequence) }
                (0 until 5).map { got.poll(10, TimeUnit.SECONDS) } shouldBe (25L until 30).toList()
                follow.cancel(true)
                wal.deleteConsumer("c").get(10, TimeUnit.SECONDS)
                wal.consumers() shouldBe emptySet()
                val failed = runCatching { wal.truncateBefore("t", 31).get(10, TimeUnit.SECONDS) }.exceptionOrNull()
                (failed?.cause is IllegalArgumentException || failed is IllegalArgumentException) shouldBe true
            }
        }

        test("point reads, pages and seek never return a truncated record") {
            Kwal.open(TestLogs.small(newDir())).use { wal ->
                wal.fill("t", 100)
                wal.truncateBefore("t", 40)
                wal.read("t", 39).shouldBeNull()
                wal.read("t", 40)!!.sequence shouldBe 40
                wal.read("t", 0, 5).map { it.sequence } shouldBe (40L until 45).toList()
                wal.seek("t", 0) shouldBe 40
                wal.truncateBefore("t", 100)
                wal.seek("t", 0) shouldBe 100
                wal.read("t", 0, 5) shouldBe emptyList()
            }
        }
    })
