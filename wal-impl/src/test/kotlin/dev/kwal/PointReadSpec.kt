package dev.kwal

import dev.kwal.Contract.readAll
import dev.kwal.Contract.seqs
import dev.kwal.engine.Kwal
import dev.kwal.engine.KwalEngine
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.ints.shouldBeGreaterThan
import io.kotest.matchers.longs.shouldBeLessThanOrEqual
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.yield
import java.nio.file.Path
import kotlin.random.Random

/**
 * [Wal.read]: one record, or a bounded page of them, served through the topic's block index — one binary search
 * and the blocks holding what is returned, never a scan of the topic — on a live log and after reopening.
 */
class PointReadSpec :
    FunSpec({
        val newDir = Contract.dirs(this)
        val n = 6000L

        /**
         * Appends records 0 until [n] of "p" in batches of 1 to 30, with a record of "q" now and then between them,
         * so that "p"'s blocks are many, of many sizes, and spread over several 64 KiB segments.
         */
        suspend fun fill(wal: Wal, rnd: Random = Random(12)) {
            var next = 0L
            while (next < n) {
                val k = minOf(n - next, rnd.nextLong(1, 31)).toInt()
                wal.appendBatch("p", List(k) { TestLogs.payload("p", next + it) }) shouldBe (next until next + k)
                next += k
                if (rnd.nextInt(3) == 0) wal.append("q", TestLogs.payload("q", 0))
            }
        }

        /** The blocks of "p", from the files. */
        fun blocksOf(dir: Path): List<LogFiles.BlockInfo> {
            val id = LogFiles.topicIds(dir).getValue("p")
            return LogFiles.allBlocks(dir).filter { it.topicId == id }
        }

        fun headersRead(wal: Wal): Long = (wal as KwalEngine).headersRead.sum()

        test("the first, middle and last record of every block, across segments; every record; past the end") {
            val dir = newDir()
            suspend fun check(wal: Wal) {
                val blocks = blocksOf(dir)
                blocks.size shouldBeGreaterThan 200
                blocks.map { it.segment }.distinct().size shouldBeGreaterThan 3
                val all = wal.readAll("p")
                all.size.toLong() shouldBe n
                for (b in blocks) {
                    for (s in setOf(b.firstSeq, b.firstSeq + b.count / 2, b.lastSeq)) {
                        withClue("record $s (block of $b)") { wal.read("p", s) shouldBe all[s.toInt()] }
                    }
                }
                for (s in 0 until n) {
                    val r = wal.read("p", s).shouldNotBeNull()
                    r.sequence shouldBe s
                    r.topic shouldBe "p"
                    r.payload shouldBe TestLogs.payload("p", s)
                }
                wal.read("p", n).shouldBeNull()
                wal.read("p", n + 1).shouldBeNull()
                wal.read("p", Long.MAX_VALUE).shouldBeNull()
                wal.read("q", wal.nextSequence("q")).shouldBeNull()
                wal.read("q", 0).shouldNotBeNull().payload shouldBe TestLogs.payload("q", 0)
                wal.read("nope", 0).shouldBeNull()
                wal.read("nope", 0, 10).shouldBeEmpty()
            }
            Kwal.open(TestLogs.small(dir, Durability.None)).use { wal ->
                wal.read("p", 0).shouldBeNull() // a topic that does not exist yet
                fill(wal)
                check(wal)
            }
            Kwal.open(TestLogs.small(dir)).use { wal -> check(wal) }
        }

        test("never a scan: a read walks at most one run of the sparse index, a seek about log2(samples) and a run") {
            val dir = newDir()
            Kwal.open(TestLogs.small(dir, Durability.None)).use { wal ->
                fill(wal)
                val blocks = blocksOf(dir)
                val run = dev.kwal.engine.storage.BlockIndex.STRIDE_BLOCKS.toLong()
                for (s in listOf(0L, 1L, n / 2, n - 2, n - 1)) {
                    val before = headersRead(wal)
                    wal.read("p", s).shouldNotBeNull()
                    withClue("headers read for record $s of ${blocks.size} blocks") {
                        // The walk from the index's sample to the block (its run, and "q"'s blocks between), then the block.
                        headersRead(wal) - before shouldBeLessThanOrEqual 2 * run + 1
                    }
                }
                // A page within one block reads that block; one running into the next reads both.
                val b = blocks[blocks.size / 2]
                val after = blocks[blocks.size / 2 + 1]
                var before = headersRead(wal)
                wal.read("p", b.firstSeq, b.count).seqs() shouldBe (b.firstSeq..b.lastSeq).toList()
                headersRead(wal) - before shouldBeLessThanOrEqual 2 * run + 1
                before = headersRead(wal)
                wal.read("p", b.lastSeq, after.count + 1).seqs() shouldBe (b.lastSeq..after.lastSeq).toList()
                headersRead(wal) - before shouldBeLessThanOrEqual 4 * run + 2
                // Seek: a binary search over the samples, reading one header per step, then a walk of one run.
                val samples = (wal as KwalEngine).indexEntries("p").toLong()
                samples shouldBeLessThanOrEqual blocks.size / 8L // sparse: a few entries per hundred blocks here
                val steps = 64 - java.lang.Long.numberOfLeadingZeros(samples) + 1 + 2 * run
                for (t in listOf(Long.MIN_VALUE, 0L, System.currentTimeMillis(), Long.MAX_VALUE)) {
                    before = headersRead(wal)
                    wal.seek("p", t)
                    withClue("headers read seeking $t over ${blocks.size} blocks") {
                        headersRead(wal) - before shouldBeLessThanOrEqual steps.toLong()
                    }
                }
            }
        }

        test("bounded pages: maxRecords and maxBytes at their edges; paging rebuilds the topic") {
            val dir = newDir()
            Kwal.open(TestLogs.small(dir, Durability.None)).use { wal ->
                fill(wal)
                fun size(s: Long) = TestLogs.payload("p", s).size
                wal.read("p", 0, 1).seqs() shouldBe listOf(0L)
                wal.read("p", 0, 1)[0].payload shouldBe TestLogs.payload("p", 0)
                wal.read("p", n - 5, 100).seqs() shouldBe (n - 5 until n).toList()
                wal.read("p", n - 5, 5).seqs() shouldBe (n - 5 until n).toList()
                wal.read("p", n - 1, Int.MAX_VALUE).seqs() shouldBe listOf(n - 1)
                wal.read("p", n, 10).shouldBeEmpty()
                wal.read("p", n + 10, 10).shouldBeEmpty()
                wal.read("p", Long.MAX_VALUE, 10).shouldBeEmpty()
                val from = 100L
                val five = (from until from + 5).sumOf { size(it) }
                wal.read("p", from, 1000, five).seqs() shouldBe (from until from + 5).toList()
                wal.read("p", from, 1000, five - 1).seqs() shouldBe (from until from + 4).toList()
                wal.read("p", from, 3, five).seqs() shouldBe (from until from + 3).toList()
                // The first record alone is returned even when it exceeds maxBytes: a pager always progresses.
                wal.read("p", from, 1000, 1).seqs() shouldBe listOf(from)
                wal.read("p", from, 1000, size(from)).seqs() shouldBe listOf(from)
                wal.read("p", from, 1000, size(from) - 1).seqs() shouldBe listOf(from)
                // Pages of random bounds, each starting where the last ended, give back the whole topic.
                val rnd = Random(7)
                val paged = ArrayList<Record>()
                var next = 0L
                while (true) {
                    val page = wal.read("p", next, rnd.nextInt(1, 400), rnd.nextInt(1, 20_000))
                    if (page.isEmpty()) break
                    page.first().sequence shouldBe next
                    paged += page
                    next = page.last().sequence + 1
                }
                paged shouldBe wal.readAll("p")
                next shouldBe n
            }
        }

        test("bad arguments: IllegalArgumentException, InvalidTopicException; a closed log: WalClosedException") {
            val wal = Kwal.open(TestLogs.small(newDir()))
            wal.append("t", byteArrayOf(1))
            shouldThrow<IllegalArgumentException> { wal.read("t", -1) }
            shouldThrow<IllegalArgumentException> { wal.read("t", Long.MIN_VALUE) }
            shouldThrow<IllegalArgumentException> { wal.read("t", -1, 10) }
            shouldThrow<IllegalArgumentException> { wal.read("t", 0, 0) }
            shouldThrow<IllegalArgumentException> { wal.read("t", 0, -1) }
            shouldThrow<IllegalArgumentException> { wal.read("t", 0, 10, 0) }
            shouldThrow<IllegalArgumentException> { wal.read("nope", 0, 10, -5) }
            shouldThrow<InvalidTopicException> { wal.read("../x", 0) }
            shouldThrow<InvalidTopicException> { wal.read("", 0, 10) }
            shouldThrow<InvalidTopicException> { wal.seek("a/b", 0) }
            wal.read("t", 0).shouldNotBeNull()
            wal.close()
            shouldThrow<WalClosedException> { wal.read("t", 0) }
            shouldThrow<WalClosedException> { wal.read("t", 0, 10) }
            shouldThrow<WalClosedException> { wal.seek("t", 0) }
        }

        test("reads concurrent with appends see every acknowledged record, whole and in order") {
            Kwal.open(TestLogs.small(newDir(), Durability.None)).use { wal ->
                val total = 4000L
                withTimeout(Contract.HANG * 4) {
                    withContext(Dispatchers.Default) {
                        val writer = launch {
                            val rnd = Random(3)
                            var next = 0L
                            while (next < total) {
                                val k = minOf(total - next, rnd.nextLong(1, 20)).toInt()
                                val durability = if (rnd.nextBoolean()) Durability.None else Durability.Sync
                                wal.appendBatch("c", List(k) { TestLogs.payload("c", next + it) }, durability)
                                next += k
                            }
                        }
                        repeat(3) { r ->
                            launch {
                                val rnd = Random(r)
                                var reads = 0
                                while (writer.isActive || reads < 100) {
                                    val end = wal.nextSequence("c")
                                    if (end > 0) {
                                        val s = rnd.nextLong(end)
                                        wal.read("c", s).shouldNotBeNull().payload shouldBe TestLogs.payload("c", s)
                                        val page = wal.read("c", s, rnd.nextInt(1, 100))
                                        page.seqs() shouldBe (s until s + page.size).toList()
                                        page.forEach { it.payload shouldBe TestLogs.payload("c", it.sequence) }
                                        // At the end: nothing, or a record acknowledged since.
                                        wal.read("c", end)?.payload?.let { it shouldBe TestLogs.payload("c", end) }
                                        reads++
                                    }
                                    yield()
                                }
                            }
                        }
                    }
                }
                wal.nextSequence("c") shouldBe total
            }
        }
    })
