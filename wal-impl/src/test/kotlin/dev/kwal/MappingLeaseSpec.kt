package dev.kwal

import dev.kwal.MappingsSpec.Companion.fdsOf
import dev.kwal.MappingsSpec.Companion.mapLines
import dev.kwal.MappingsSpec.Companion.mapsOf
import dev.kwal.engine.KwalEngine
import dev.kwal.engine.io.RealFileIo
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.ints.shouldBeLessThanOrEqual
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.collect
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.yield
import java.io.File
import java.nio.file.Files
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicLong
import kotlin.random.Random

/**
 * Readers and the unmapping of segments: a mapping is never unmapped while a reader reads it — if it were, the JVM
 * running these tests would die of SIGSEGV (or SIGBUS), which is how these tests fail — and readers get every record
 * right, while segments roll, idle mappings are evicted (kept to one or two here, so eviction is constant) and the
 * log closes under them.
 */
class MappingLeaseSpec :
    FunSpec({
        timeout = 300_000L
        val linux = File("/proc/self/maps").isFile && File("/proc/self/fd").isDirectory
        val newDir = Contract.dirs(this)

        /** Batch [b] of topic [topic]: 15 records of 4,000 B, most of a 64 KiB segment. */
        fun batch(topic: String, b: Int) = List(BATCH) { TestLogs.payload(topic, b * BATCH.toLong() + it, 4000) }

        fun expect(records: List<Record>, topic: String, from: Long, until: Long) {
            withClue("sequences of $topic from $from") {
                records.map { it.sequence } shouldBe
                    (from until until).toList()
            }
            for (r in records) {
                withClue("payload of $topic/${r.sequence}") {
                    r.payload shouldBe
                        TestLogs.payload(topic, r.sequence, 4000)
                }
            }
        }

        test(
            "readers suspended mid-segment keep their mappings while segments roll, mappings are evicted " +
                "and the log closes",
        ) {
            val dir = newDir().toRealPath()
            val wal = KwalEngine.open(TestLogs.small(dir, Durability.None), RealFileIo, idleMappings = 2)
            try {
                repeat(30) { wal.appendBatch("t", batch("t", it)) }
                withContext(Dispatchers.Default) {
                    val resume = CompletableDeferred<Unit>()
                    val replayPaused = CompletableDeferred<Unit>()
                    val followPaused = CompletableDeferred<Unit>()
                    // A replay of the 30 segments there are now, which stops in the middle of segment 14 (record 200)
                    // until the log has closed; then it goes on, through the rest of 14 and the 15 segments after it.
                    val replay = async {
                        val got = ArrayList<Record>()
                        wal.replay("t").collect { r ->
                            got.add(r)
                            if (r.sequence == 200L) {
                                replayPaused.complete(Unit)
                                resume.await()
                            }
                            if (r.sequence % 7 == 0L) yield()
                        }
                        got
                    }
                    // A follower, behind: it stops in segment 7 (record 100) until the log has closed, then reads on to
                    // the last acknowledged record, and ends.
                    val follower = async {
                        val got = ArrayList<Record>()
                        wal.follow("t").collect { r ->
                            got.add(r)
                            if (r.sequence == 100L) {
                                followPaused.complete(Unit)
                                resume.await()
                            }
                        }
                        got
                    }
                    withTimeout(60_000) {
                        replayPaused.await()
                        followPaused.await()
                    }
                    // Meanwhile: 300 more segments, and short replays of random old segments, which map and evict.
                    val random = Random(7)
                    for (b in 30 until 330) {
                        wal.appendBatch("t", batch("t", b))
                        if (b % 5 == 0) {
                            val from = random.nextInt(b) * BATCH.toLong()
                            expect(wal.replay("t", from).take(20).toList(), "t", from, from + 20)
                        }
                    }
                    if (linux) {
                        withClue(mapLines(dir).joinToString("\n")) {
                            // Two idle, two borrowed by the paused readers, the active segment's, and one a replay is
                            // making.
                            mapsOf(dir) shouldBeLessThanOrEqual 6
                        }
                    }
                    wal.close()
                    if (linux) {
                        withClue(mapLines(dir).joinToString("\n")) {
                            mapsOf(dir) shouldBeLessThanOrEqual 2 // only what the paused readers borrow
                        }
                    }
                    replay.isCompleted shouldBe false
                    resume.complete(Unit)
                    withTimeout(60_000) {
                        expect(replay.await(), "t", 0, 30L * BATCH)
                        expect(follower.await(), "t", 0, 330L * BATCH)
                    }
                }
                if (linux) {
                    withClue(mapLines(dir).joinToString("\n")) { mapsOf(dir) shouldBe 0 }
                    fdsOf(dir) shouldBe 0
                }
            } finally {
                wal.close()
            }
        }

        test("after close, a read under way whose next segment was deleted fails with WalClosedException") {
            val dir = newDir().toRealPath()
            val wal = KwalEngine.open(TestLogs.small(dir, Durability.None), RealFileIo, idleMappings = 0)
            try {
                repeat(10) { wal.appendBatch("t", batch("t", it)) }
                withContext(Dispatchers.Default) {
                    val paused = CompletableDeferred<Unit>()
                    val resume = CompletableDeferred<Unit>()
                    val got = ArrayList<Record>()
                    val replay = async {
                        runCatching {
                            wal.replay("t").collect { r ->
                                got.add(r)
                                if (r.sequence == 20L) {
                                    paused.complete(Unit)
                                    resume.await()
                                }
                            }
                        }
                    }
                    withTimeout(30_000) { paused.await() }
                    wal.close()
                    // Every segment file goes, the one the replay is reading too: its mapping stays valid (Linux keeps
                    // an unlinked file's pages while it is mapped), the next segments cannot be mapped again.
                    Files.list(dir)
                        .use { s -> s.filter { it.fileName.toString().startsWith("seg-") }.toList() }
                        .forEach(Files::delete)
                    resume.complete(Unit)
                    val error = withTimeout(30_000) { replay.await() }.exceptionOrNull()
                    withClue("replay's outcome: $error") { (error is WalClosedException) shouldBe true }
                    expect(got, "t", 0, 2L * BATCH) // the rest of segment 2, read from the mapping it held
                }
                if (linux) withClue(mapLines(dir).joinToString("\n")) { mapsOf(dir) shouldBe 0 }
            } finally {
                wal.close()
            }
        }

        test("a replay that ends early, by cancellation or by its collector's exception, gives its mapping back") {
            val dir = newDir().toRealPath()
            // Durability.Sync: no append is stored inline, through a read-write mapping of its own (counted too).
            val wal = KwalEngine.open(TestLogs.small(dir), RealFileIo, idleMappings = 0)
            wal.use {
                repeat(6) { wal.appendBatch("t", batch("t", it)) }
                // With no idle mapping kept, a mapping given back is unmapped at once: none may remain after each read.
                expect(wal.replay("t", 20).take(7).toList(), "t", 20, 27)
                if (linux) mapsOf(dir) shouldBe 0
                shouldThrow<IllegalStateException> {
                    wal.replay("t", 40).collect { r -> if (r.sequence == 50L) error("collector fails") }
                }
                if (linux) mapsOf(dir) shouldBe 0
                withContext(Dispatchers.Default) {
                    val started = CompletableDeferred<Unit>()
                    val job = async {
                        wal.replay("t", 60).collect { r ->
                            if (r.sequence == 61L) {
                                started.complete(Unit)
                                delay(60_000)
                            }
                        }
                    }
                    withTimeout(30_000) { started.await() }
                    if (linux) mapsOf(dir) shouldBe 1 // borrowed while suspended in emit
                    job.cancel()
                    job.join()
                }
                if (linux) mapsOf(dir) shouldBe 0
                expect(wal.replay("t").toList(), "t", 0, 6L * BATCH)
                if (linux) mapsOf(dir) shouldBe 0
            }
        }

        test(
            "randomized: concurrent replays of random positions and followers, while appending, rolling and closing, " +
                "with one idle mapping",
        ) {
            val seed = System.getProperty("kwal.seed")?.toLong() ?: Random.nextLong()
            println("MappingLeaseSpec randomized: seed $seed (-Dkwal.seed=$seed to replay)")
            val random = Random(seed)
            val dir = newDir().toRealPath()
            val topics = listOf("a", "b", "c")

            /** Payload of [topic]'s record [seq]: its size, 1 B to 4,000 B, follows from both. */
            fun payload(topic: String, seq: Long) =
                TestLogs.payload(topic, seq, 1 + ((seq * 7919 + topic[0].code * 31) % 4000).toInt())
            fun verify(records: List<Record>, topic: String, from: Long) {
                records.forEachIndexed { i, r ->
                    if (r.sequence != from + i ||
                        r.topic != topic ||
                        !r.payload.contentEquals(payload(topic, r.sequence))
                    ) {
                        error(
                            "seed $seed: record $i of $topic from $from is ${r.topic}/${r.sequence} " +
                                "(${r.payload.size} B), not $topic/${from + i}",
                        )
                    }
                }
            }
            val wal = KwalEngine.open(TestLogs.small(dir, Durability.None), RealFileIo, idleMappings = 1)
            try {
                withContext(Dispatchers.Default) {
                    val reads = AtomicLong()
                    val afterClose = AtomicLong()
                    val closed = AtomicBoolean(false)
                    val followers = topics.map { topic ->
                        async {
                            val got = ArrayList<Record>()
                            wal.follow(topic).collect { r ->
                                got.add(r)
                                if (r.sequence % 97 == 0L) yield()
                            }
                            verify(got, topic, 0)
                            got.size.toLong()
                        }
                    }
                    // Readers replay random ranges, some slowly, some giving up by an exception, until the log closes
                    // under them: a replay under way then runs to its end; only one not yet started is refused.
                    val readers = (0 until 6).map { k ->
                        val r = Random(seed + k)
                        async {
                            while (true) {
                                val topic = topics[r.nextInt(topics.size)]
                                val acked = wal.nextSequence(topic)
                                if (acked == 0L) {
                                    delay(1)
                                    continue
                                }
                                val from = r.nextLong(acked)
                                val count = 1 + r.nextInt(200)
                                val got = ArrayList<Record>()
                                val how = r.nextInt(3)
                                val wasClosed = closed.get()
                                val error = runCatching {
                                    wal.replay(topic, from).take(count).collect { rec ->
                                        got.add(rec)
                                        when (how) {
                                            0 -> if (r.nextInt(8) == 0) yield()

                                            1 -> if (r.nextInt(50) == 0) delay(1)

                                            else -> if (r.nextInt(100) == 0) {
                                                throw IllegalStateException("reader $k gives up")
                                            }
                                        }
                                    }
                                }.exceptionOrNull()
                                verify(got, topic, from)
                                when {
                                    error is WalClosedException && got.isEmpty() -> break

                                    error != null && error !is IllegalStateException -> throw error

                                    error == null && got.size.toLong() < minOf(count.toLong(), acked - from) ->
                                        error(
                                            "seed $seed: replay of $topic from $from got ${got.size} of " +
                                                "${minOf(count.toLong(), acked - from)} records",
                                        )
                                }
                                reads.incrementAndGet()
                                if (closed.get() && !wasClosed) afterClose.incrementAndGet()
                            }
                        }
                    }
                    val next = topics.associateWith { 0L }.toMutableMap()
                    var batches = 0
                    val stopAt = 3000 + random.nextInt(2000)
                    while (batches < stopAt || reads.get() < 500) {
                        val topic = topics[random.nextInt(topics.size)]
                        val n = 1 + random.nextInt(if (random.nextInt(4) == 0) 15 else 3)
                        val first = next.getValue(topic)
                        val range = wal.appendBatch(topic, List(n) { payload(topic, first + it) })
                        range.first shouldBe first
                        next[topic] = first + n
                        batches++
                        if (batches % 25 == 0) yield()
                    }
                    closed.set(true)
                    wal.close()
                    withTimeout(60_000) { readers.awaitAll() }
                    val followed = withTimeout(60_000) { followers.awaitAll() }
                    followed shouldBe topics.map { next.getValue(it) }
                    println(
                        "MappingLeaseSpec randomized: $batches batches in ${LogFiles.segmentIds(dir).size} segments, " +
                            "${reads.get()} replays (${afterClose.get()} finished after close), " +
                            "${followed.sum()} records followed",
                    )
                }
                if (linux) withClue(mapLines(dir).joinToString("\n")) { mapsOf(dir) shouldBe 0 }
            } finally {
                wal.close()
            }
        }
    }) {
    private companion object {
        const val BATCH = 15
    }
}
