package dev.kwal

import dev.kwal.Contract.readAll
import dev.kwal.Contract.seqs
import dev.kwal.engine.Kwal
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.collections.shouldBeSorted
import io.kotest.matchers.longs.shouldBeGreaterThanOrEqual
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.yield
import java.nio.file.Path
import java.util.concurrent.ConcurrentHashMap

/** Appends from many coroutines, reopen, replay: the core contract (dense per-topic sequences, exact payloads). */
class AppendReplaySpec :
    FunSpec({
        val newDir = Contract.dirs(this)

        /**
         * The headline test: [records] records from [coroutines] coroutines on Dispatchers.Default over [topics]
         * topics; every acknowledged append is remembered and checked exactly after close and reopen.
         */
        suspend fun concurrentAppendsSurviveReopen(
            options: (Path) -> WalOptions,
            records: Int = 10_000,
            coroutines: Int = 64,
            topics: Int = 100,
        ) {
            val dir = newDir()
            // (topic, seq) -> index of the record that append returned it for
            val acked = ConcurrentHashMap<Pair<String, Long>, Int>()
            val wal = Kwal.open(options(dir))
            try {
                withTimeout(Contract.HANG * 2) {
                    withContext(Dispatchers.Default) {
                        coroutineScope {
                            repeat(coroutines) { c ->
                                launch {
                                    val lastSeqOfTopic = HashMap<String, Long>()
                                    for (i in c until records step coroutines) {
                                        val topic = "topic-${i % topics}"
                                        val seq = wal.append(topic, TestLogs.payload(topic, i.toLong()))
                                        acked.put(topic to seq, i) shouldBe null // no duplicate sequence
                                        // appends of one coroutine to one topic are ordered
                                        lastSeqOfTopic[topic]?.let { prev ->
                                            withClue("$topic after $prev") {
                                                (seq > prev) shouldBe
                                                    true
                                            }
                                        }
                                        lastSeqOfTopic[topic] = seq
                                    }
                                }
                            }
                        }
                    }
                }
            } finally {
                wal.close()
            }
            acked.size shouldBe records
            val byTopic = acked.entries.groupBy({ it.key.first }, { it.key.second to it.value })
            byTopic.size shouldBe topics
            for ((topic, entries) in byTopic) {
                withClue(topic) { entries.map { it.first }.sorted() shouldBe (0L until entries.size.toLong()).toList() }
            }

            Kwal.open(options(dir)).use { again ->
                again.recovery.truncatedBytes shouldBe 0
                again.recovery.droppedRecords shouldBe 0
                again.recovery.records shouldBeGreaterThanOrEqual records.toLong()
                again.topics() shouldBe byTopic.keys
                for ((topic, entries) in byTopic) {
                    val expected = entries.sortedBy { it.first }
                    again.nextSequence(topic) shouldBe expected.size.toLong()
                    val replayed = again.readAll(topic)
                    withClue(topic) {
                        replayed.seqs() shouldBe expected.map { it.first }
                        for ((r, e) in replayed.zip(expected)) {
                            r.topic shouldBe topic
                            r.payload shouldBe TestLogs.payload(topic, e.second.toLong())
                        }
                        replayed.map { it.timestampMillis }.forEach { it shouldBeGreaterThanOrEqual 0 }
                    }
                }
                // and the log goes on where it stopped
                again.append("topic-0", TestLogs.payload("more", 0)) shouldBe byTopic.getValue("topic-0").size.toLong()
            }
        }

        test("10,000 concurrent appends over 100 topics survive reopen exactly (small segments, many rolls)") {
            concurrentAppendsSurviveReopen({ TestLogs.small(it) })
        }

        test("10,000 concurrent appends over 100 topics survive reopen exactly (default options)") {
            concurrentAppendsSurviveReopen({ WalOptions(it) })
        }

        test("appends of one coroutine to one topic get sequences 0..n-1 in call order") {
            val dir = newDir()
            Kwal.open(TestLogs.small(dir, Durability.None)).use { wal ->
                for (i in 0L until 1500) wal.append("seq", TestLogs.payload("seq", i)) shouldBe i
                val records = wal.readAll("seq")
                records.seqs() shouldBe (0L until 1500).toList()
                records.forEachIndexed { i, r -> r.payload shouldBe TestLogs.payload("seq", i.toLong()) }
            }
            Kwal.open(TestLogs.small(dir)).use { wal ->
                wal.readAll("seq").forEachIndexed { i, r -> r.payload shouldBe TestLogs.payload("seq", i.toLong()) }
            }
        }

        test("replay(topic, from) starts at from: 0, middle, last, past the end, negative") {
            val dir = newDir()
            val n = 700L
            suspend fun check(wal: Wal) {
                wal.readAll("r", 0).seqs() shouldBe (0L until n).toList()
                wal.readAll("r", 1).seqs() shouldBe (1L until n).toList()
                wal.readAll("r", 333).seqs() shouldBe (333L until n).toList()
                wal.readAll("r", 333).first().payload shouldBe TestLogs.payload("r", 333)
                wal.readAll("r", n - 1).let {
                    it.seqs() shouldBe listOf(n - 1)
                    it[0].payload shouldBe
                        TestLogs.payload("r", n - 1)
                }
                wal.readAll("r", n).shouldBeEmpty()
                wal.readAll("r", n + 1000).shouldBeEmpty()
                wal.readAll("r", Long.MAX_VALUE).shouldBeEmpty()
                // "records whose sequence is at least from": a negative from means everything
                wal.readAll("r", -5).seqs() shouldBe (0L until n).toList()
                wal.readAll("r", Long.MIN_VALUE).seqs() shouldBe (0L until n).toList()
            }
            Kwal.open(TestLogs.small(dir)).use { wal ->
                // a mix of batches and singles so blocks of several sizes hold the records
                var next = 0L
                while (next < n) {
                    if (next % 3 == 0L && next + 40 <= n) {
                        wal.appendBatch("r", (next until next + 40).map { TestLogs.payload("r", it) }) shouldBe
                            (next until next + 40)
                        next += 40
                    } else {
                        wal.append("r", TestLogs.payload("r", next)) shouldBe next
                        next++
                    }
                }
                check(wal) // live log: the active segment is read with positional reads
            }
            Kwal.open(TestLogs.small(dir)).use { wal -> check(wal) } // reopened: sealed segments
        }

        test("replay of an unknown topic is empty, on a fresh and on a populated log") {
            Kwal.open(TestLogs.small(newDir())).use { wal ->
                wal.readAll("nope").shouldBeEmpty()
                wal.append("yes", byteArrayOf(1))
                wal.readAll("nope").shouldBeEmpty()
                wal.readAll("nope", 5).shouldBeEmpty()
                wal.readAll("YES").shouldBeEmpty() // names are case-sensitive
            }
        }

        test("replay while appends continue sees a dense, growing prefix") {
            Kwal.open(TestLogs.small(newDir(), Durability.None)).use { wal ->
                val total = 2500L
                withTimeout(Contract.HANG) {
                    withContext(Dispatchers.Default) {
                        val writer = launch {
                            var i = 0L
                            while (i < total) {
                                if (i % 7 == 0L && i + 5 <= total) {
                                    wal.appendBatch("live", (i until i + 5).map { TestLogs.payload("live", it) })
                                    i += 5
                                } else {
                                    wal.append("live", TestLogs.payload("live", i))
                                    i++
                                }
                            }
                        }
                        // readers on IO: a replay that never suspends must not starve the writer of Default's threads
                        val readers = (0 until 2).map {
                            async(Dispatchers.IO) {
                                var seen = 0L
                                var rounds = 0
                                while (writer.isActive || rounds == 0) {
                                    val records = wal.replay("live").toList()
                                    withClue("round $rounds") {
                                        (records.size.toLong() >= seen) shouldBe true
                                        records.forEachIndexed { i, r ->
                                            r.sequence shouldBe i.toLong()
                                            r.payload shouldBe TestLogs.payload("live", i.toLong())
                                        }
                                    }
                                    seen = records.size.toLong()
                                    rounds++
                                    yield()
                                }
                                rounds
                            }
                        }
                        writer.join()
                        readers.forEach { it.await() }
                    }
                }
                wal.readAll("live").size shouldBe total.toInt()
            }
        }

        test("replay returns a fresh payload copy each time, and the caller may reuse its array after append returns") {
            Kwal.open(TestLogs.small(newDir())).use { wal ->
                val buf = byteArrayOf(1, 2, 3)
                wal.append("copy", buf)
                buf.fill(9) // the log no longer holds it
                val first = wal.readAll("copy").single()
                first.payload shouldBe byteArrayOf(1, 2, 3)
                first.payload.fill(7)
                wal.readAll("copy").single().payload shouldBe byteArrayOf(1, 2, 3)
            }
        }

        test("empty payloads are records too") {
            val dir = newDir()
            Kwal.open(TestLogs.small(dir)).use { wal ->
                wal.append("e", ByteArray(0)) shouldBe 0
                wal.append("e", byteArrayOf(5)) shouldBe 1
                wal.appendBatch("e", listOf(ByteArray(0), ByteArray(0))) shouldBe (2L..3L)
            }
            Kwal.open(TestLogs.small(dir)).use { wal ->
                wal.readAll("e").map { it.payload.toList() } shouldBe
                    listOf(emptyList(), listOf<Byte>(5), emptyList(), emptyList())
            }
        }

        test("timestamps of one topic do not go backwards (within one run of the clock)") {
            Kwal.open(TestLogs.small(newDir(), Durability.None)).use { wal ->
                repeat(200) { wal.append("ts", TestLogs.payload("ts", it.toLong())) }
                val stamps = wal.readAll("ts").map { it.timestampMillis }
                stamps.shouldBeSorted()
                (stamps.first() > 0) shouldBe true
            }
        }

        test("topics() and nextSequence() follow acknowledged appends and survive reopen") {
            val dir = newDir()
            Kwal.open(TestLogs.small(dir)).use { wal ->
                wal.topics() shouldBe emptySet()
                wal.nextSequence("a") shouldBe 0
                wal.append("a", byteArrayOf(1)) shouldBe 0
                wal.topics() shouldBe setOf("a")
                wal.nextSequence("a") shouldBe 1
                wal.appendBatch("b", List(5) { byteArrayOf(it.toByte()) })
                wal.appendBatch("c", emptyList()) // writes nothing, creates nothing
                wal.topics() shouldBe setOf("a", "b")
                wal.nextSequence("b") shouldBe 5
                wal.nextSequence("c") shouldBe 0
                wal.nextSequence("missing") shouldBe 0
            }
            Kwal.open(TestLogs.small(dir)).use { wal ->
                wal.topics() shouldBe setOf("a", "b")
                wal.nextSequence("a") shouldBe 1
                wal.nextSequence("b") shouldBe 5
                wal.append("b", byteArrayOf(9)) shouldBe 5
                wal.nextSequence("b") shouldBe 6
                // topics() returns a snapshot the caller may not be surprised by
                val snapshot = wal.topics()
                wal.append("d", byteArrayOf(1))
                snapshot shouldBe setOf("a", "b")
                wal.topics() shouldBe setOf("a", "b", "d")
            }
        }

        test(
            "hundreds of new long-named topics created concurrently (registry spanning blocks and segments) " +
                "survive reopen",
        ) {
            val dir = newDir()
            val names = (0 until 400).map { "$it-".padEnd(TopicNames.MAX_BYTES, 'n') }
            val got = ConcurrentHashMap<String, Long>()
            Kwal.open(TestLogs.small(dir)).use { wal ->
                withTimeout(Contract.HANG) {
                    withContext(Dispatchers.Default) {
                        coroutineScope {
                            repeat(64) { c ->
                                launch {
                                    for (i in c until names.size step 64) {
                                        got[names[i]] = wal.append(names[i], TestLogs.payload("reg", i.toLong()))
                                    }
                                }
                            }
                        }
                    }
                }
                wal.topics() shouldBe names.toSet()
            }
            names.forEach { got[it] shouldBe 0L }
            Kwal.open(TestLogs.small(dir)).use { wal ->
                wal.topics() shouldBe names.toSet()
                names.forEachIndexed { i, n ->
                    val r = wal.readAll(n).single()
                    r.topic shouldBe n
                    r.payload shouldBe TestLogs.payload("reg", i.toLong())
                    wal.append(n, byteArrayOf(1)) shouldBe 1
                }
            }
            Kwal.open(TestLogs.small(dir)).use { wal -> names.forEach { wal.nextSequence(it) shouldBe 2 } }
        }

        test("topic names at the edge of the rules round-trip through the log's registry") {
            val dir = newDir()
            val names = listOf(
                "a".repeat(TopicNames.MAX_BYTES),
                "é".repeat(127), // 254 bytes
                "\uD83D\uDE00".repeat(63), // 252 bytes of 4-byte characters
                "a.b", ".hidden", " spaced name ", "ünïcødé", "x", "with:colon", "UPPER", "upper",
            )
            Kwal.open(TestLogs.small(dir)).use { wal ->
                names.forEachIndexed { i, n -> wal.append(n, TestLogs.payload("n", i.toLong())) shouldBe 0 }
                wal.topics() shouldBe names.toSet()
            }
            Kwal.open(TestLogs.small(dir)).use { wal ->
                wal.topics() shouldBe names.toSet()
                names.forEachIndexed { i, n ->
                    val r = wal.readAll(n).single()
                    r.topic shouldBe n
                    r.payload shouldBe TestLogs.payload("n", i.toLong())
                }
            }
        }
    })
