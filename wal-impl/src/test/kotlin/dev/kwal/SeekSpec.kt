package dev.kwal

import dev.kwal.Contract.readAll
import dev.kwal.Contract.seqs
import dev.kwal.engine.KwalEngine
import dev.kwal.engine.io.RealFileIo
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.shouldBe
import io.kotest.property.Arb
import io.kotest.property.PropTestConfig
import io.kotest.property.arbitrary.int
import io.kotest.property.arbitrary.list
import io.kotest.property.arbitrary.long
import io.kotest.property.checkAll
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.withTimeout
import java.nio.file.Path
import java.time.Instant
import java.util.concurrent.atomic.AtomicLong

/**
 * [Wal.seek] and replay/follow from an [Instant], against a brute-force scan of the records, with a clock the test
 * sets (and turns back): timestamps stay non-decreasing in log order, across reopens, and seek finds the first record
 * at or after a time.
 */
class SeekSpec :
    FunSpec({
        val newDir = Contract.dirs(this)
        val base = 1_700_000_000_000L

        fun open(dir: Path, clock: AtomicLong): KwalEngine =
            KwalEngine.open(TestLogs.small(dir, Durability.None), RealFileIo, clock = clock::get)

        /** What [Wal.seek] must return: the first record of [all] stamped at or after [t], else the end. */
        fun bruteForce(all: List<Record>, t: Long): Long =
            all.indexOfFirst { it.timestampMillis >= t }.let { if (it < 0) all.size.toLong() else it.toLong() }

        test("property: seek equals a scan; timestamps are the clock's running maximum, across a reopen") {
            checkAll(
                PropTestConfig(seed = 20261201, iterations = 25),
                Arb.list(Arb.long(-3_000L..3_000L), 1..120),
                Arb.list(Arb.int(1..40), 1..120),
                Arb.int(0..120),
            ) { steps, batches, reopenAt ->
                val dir = newDir()
                val clock = AtomicLong(base)
                var wal = open(dir, clock)
                try {
                    var newest = Long.MIN_VALUE // what every group so far was stamped with, at most
                    val expected = ArrayList<Long>() // the timestamp of each record of "s"
                    var next = 0L
                    for ((i, step) in steps.withIndex()) {
                        if (i == reopenAt) {
                            wal.close()
                            // The clock is set back past everything written: the reopened log must not go back.
                            clock.set(newest - 10_000)
                            wal = open(dir, clock)
                        } else {
                            clock.addAndGet(step)
                        }
                        newest = maxOf(newest, clock.get())
                        if (i % 3 == 2) {
                            wal.append("other", byteArrayOf(1)) // another topic's group moves the time too
                        } else {
                            val k = batches[i % batches.size]
                            wal.appendBatch("s", List(k) { TestLogs.payload("s", next + it) })
                            next += k
                            repeat(k) { expected += newest }
                        }
                    }
                    val all = wal.readAll("s")
                    all.map { it.timestampMillis } shouldBe expected
                    all.zipWithNext().all { (a, b) -> a.timestampMillis <= b.timestampMillis } shouldBe true
                    val stamps = all.map { it.timestampMillis }.distinct()
                    val times = stamps.flatMap { listOf(it - 1, it, it + 1) } +
                        listOf(Long.MIN_VALUE, base - 1_000_000, newest + 1_000_000, Long.MAX_VALUE)
                    for (t in times) {
                        withClue("seek to $t over ${all.size} records") { wal.seek("s", t) shouldBe bruteForce(all, t) }
                    }
                    val t = stamps[stamps.size / 2]
                    val from = bruteForce(all, t).toInt()
                    wal.replay("s", Instant.ofEpochMilli(t)).toList() shouldBe all.drop(from)
                    // A time between two milliseconds is rounded up.
                    val later = bruteForce(all, t + 1).toInt()
                    wal.replay("s", Instant.ofEpochMilli(t).plusNanos(1)).toList() shouldBe all.drop(later)
                } finally {
                    wal.close()
                }
            }
        }

        test("seek before the first record, after the last, on an empty or unknown topic; an unknown name") {
            val clock = AtomicLong(base)
            open(newDir(), clock).use { wal ->
                wal.seek("t", 0) shouldBe 0L
                repeat(50) { i ->
                    clock.set(base + i * 10L)
                    wal.appendBatch("t", List(i % 7 + 1) { byteArrayOf(it.toByte()) })
                }
                val all = wal.readAll("t")
                wal.seek("t", Long.MIN_VALUE) shouldBe 0L
                wal.seek("t", base) shouldBe 0L
                wal.seek("t", base + 1) shouldBe bruteForce(all, base + 1)
                wal.seek("t", base + 490) shouldBe all.indexOfFirst { it.timestampMillis == base + 490 }.toLong()
                wal.seek("t", base + 491) shouldBe wal.nextSequence("t")
                wal.seek("t", Long.MAX_VALUE) shouldBe wal.nextSequence("t")
                wal.seek("unknown", base) shouldBe 0L
                wal.replay("t", Instant.MAX).toList().shouldBeEmpty()
                wal.replay("t", Instant.MIN).toList() shouldBe all
                wal.replay("unknown", Instant.EPOCH).toList().shouldBeEmpty()
                shouldThrow<InvalidTopicException> { wal.seek("..", 0) }
                shouldThrow<InvalidTopicException> { wal.replay("a/b", Instant.EPOCH).toList() }
            }
        }

        test("follow from an Instant: the records at or after it, then new ones; older ones appended later skipped") {
            val clock = AtomicLong(base)
            open(newDir(), clock).use { wal ->
                repeat(10) { i ->
                    clock.set(base + i * 100L)
                    wal.append("f", byteArrayOf(i.toByte()))
                }
                // Each follower seeks, reads what is there and waits (undispatched: before the appends below).
                fun follow(topic: String, millis: Long, count: Int) = wal.follow(topic, Instant.ofEpochMilli(millis))
                    .take(count)
                withTimeout(Contract.HANG) {
                    coroutineScope {
                        val now = CoroutineStart.UNDISPATCHED
                        val past = async(start = now) { follow("f", base + 450, 7).toList() }
                        val future = async(start = now) { follow("f", base + 5_000, 2).toList() }
                        val unknown = async(start = now) { follow("g", base + 5_000, 1).toList() }
                        // Stamped before the future time: the second follower skips them.
                        clock.set(base + 2_000)
                        wal.append("f", byteArrayOf(10))
                        wal.append("g", byteArrayOf(0))
                        clock.set(base + 1_000) // the clock steps back: still stamped base + 2000
                        wal.append("f", byteArrayOf(11))
                        clock.set(base + 5_000)
                        wal.append("f", byteArrayOf(12))
                        wal.append("g", byteArrayOf(1))
                        clock.set(base + 4_000) // back again: stamped base + 5000, so delivered
                        wal.append("f", byteArrayOf(13))
                        past.await().seqs() shouldBe (5L..11L).toList()
                        future.await().map { it.sequence to it.timestampMillis } shouldBe
                            listOf(12L to base + 5_000, 13L to base + 5_000)
                        unknown.await().seqs() shouldBe listOf(1L)
                    }
                }
            }
        }
    })
