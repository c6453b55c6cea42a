package dev.kwal

import dev.kwal.engine.Kwal
import dev.kwal.engine.format.SegmentHeader
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldContainExactly
import io.kotest.matchers.longs.shouldBeInRange
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import io.kotest.property.Arb
import io.kotest.property.arbitrary.long
import io.kotest.property.checkAll
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.withTimeout
import java.nio.file.Files
import java.nio.file.Path
import kotlin.random.Random

/**
 * Random workloads, then the last segment's data cut at a random byte (everything from there zeroed), as a
 * crash in the middle of writing would leave it: recovery must always open, keep exactly the runs that ended
 * before the cut, and keep sequences dense.
 */
class RecoveryPropertySpec :
    FunSpec({
        timeout = 120_000L

        /** One append or batch, generated before it runs. */
        class Op(val topic: String, val payloads: List<ByteArray>, val batch: Boolean, val durability: Durability?)

        /** [n] random bytes, a quarter of the time ending in a few zeros (a block may end in zeros, see the cut). */
        fun bytes(rnd: Random, n: Int): ByteArray = rnd.nextBytes(n).also { b ->
            if (n > 0 && rnd.nextInt(4) == 0) b.fill(0, maxOf(0, n - rnd.nextInt(1, 9)), n)
        }

        fun randomOp(rnd: Random): Op {
            val topic = "t${rnd.nextInt(3)}"
            val durability = when (rnd.nextInt(4)) {
                0 -> Durability.Sync
                1 -> Durability.None
                else -> null
            }
            return when (rnd.nextInt(10)) {
                in 0..4 -> Op(topic, listOf(bytes(rnd, rnd.nextInt(0, 300))), false, durability)

                in 5..7 -> Op(topic, List(rnd.nextInt(1, 7)) { bytes(rnd, rnd.nextInt(0, 300)) }, true, durability)

                // bigger than a block (8 KiB): a CONTINUED run
                else -> Op(topic, List(rnd.nextInt(9, 14)) { bytes(rnd, rnd.nextInt(800, 1200)) }, true, durability)
            }
        }

        /** Runs a random workload in [dir]; returns what was appended, by topic and sequence. */
        suspend fun workload(dir: Path, rnd: Random): Map<String, Map<Long, List<Byte>>> {
            val model = HashMap<String, HashMap<Long, List<Byte>>>()
            val durability = if (rnd.nextBoolean()) Durability.Sync else Durability.None
            Kwal.open(TestLogs.scanned(dir, durability = durability)).use { wal ->
                withTimeout(60_000) {
                    repeat(rnd.nextInt(2, 26)) {
                        val ops = List(rnd.nextInt(1, 4)) { randomOp(rnd) }
                        val results = coroutineScope {
                            ops.map { op ->
                                async {
                                    if (op.batch) {
                                        wal.appendBatch(op.topic, op.payloads, op.durability).first
                                    } else {
                                        wal.append(op.topic, op.payloads[0], op.durability)
                                    }
                                }
                            }.awaitAll()
                        }
                        for ((op, first) in ops.zip(results)) {
                            val m = model.getOrPut(op.topic) { HashMap() }
                            op.payloads.forEachIndexed { i, p -> m.put(first + i, p.toList()).shouldBeNull() }
                        }
                    }
                }
            }
            for (m in model.values) m.keys.sorted() shouldContainExactly (0L until m.size).toList()
            return model
        }

        test("a log cut at a random byte of its last segment always recovers the groups that ended before the cut") {
            var truncated = 0
            var multiSegment = 0
            var continuedCut = 0
            var zeroCut = 0
            checkAll(50, Arb.long()) { seed ->
                val rnd = Random(seed)
                val dir = TestLogs.tempDir("kwal-prop")
                val model = workload(dir, rnd)

                val ids = LogFiles.topicIds(dir)
                val blocks = LogFiles.allBlocks(dir)
                val last = blocks.last().segment
                val lastEnd = blocks.last().end
                val original = Files.readAllBytes(LogFiles.segment(dir, last))
                // A group's last bytes may be zeros already: an empty payload ends with its frame's zero flags and
                // reserved bytes, a random payload in zeros now and then. A quarter of the time, cut right there.
                val zeroEnds = blocks.filter {
                    it.segment == last && !it.continued && original[it.end - 1].toInt() == 0
                }
                val cut = if (zeroEnds.isNotEmpty() && rnd.nextInt(4) == 0) {
                    val b = zeroEnds[rnd.nextInt(zeroEnds.size)]
                    var from = b.end
                    while (original[from - 1].toInt() == 0) from--
                    rnd.nextInt(from, b.end)
                } else {
                    rnd.nextInt(SegmentHeader.SIZE, lastEnd + 1)
                }
                LogFiles.zero(LogFiles.segment(dir, last), cut, lastEnd)
                // Zeroing from the cut changes nothing before the first byte there that was not zero already: a group
                // that ends before that byte is intact, and recovery rightly keeps it, even if it ends after the cut.
                val changed = (cut until lastEnd).firstOrNull { original[it].toInt() != 0 } ?: lastEnd
                if (changed > cut) zeroCut++

                // Groups (a CONTINUED chain and the block that ends it) survive whole if they ended before the change.
                val survivors = HashMap<Int, Long>()
                var firstDroppedRun = -1
                var runStart = 0
                for ((i, b) in blocks.withIndex()) {
                    if (i == 0 || !blocks[i - 1].continued) runStart = i
                    if (b.continued) continue
                    val run = blocks.subList(runStart, i + 1)
                    if (b.segment < last || b.end <= changed) {
                        run.forEach { survivors[it.topicId] = it.firstSeq + it.count }
                    } else {
                        firstDroppedRun = runStart
                        break
                    }
                }

                Kwal.open(TestLogs.scanned(dir)).use { wal ->
                    wal.recovery.corruption.shouldBeNull()
                    val start = if (firstDroppedRun >= 0) blocks[firstDroppedRun] else null
                    if (last > 1) multiSegment++
                    if (start != null && start.continued && start.end <= cut) continuedCut++
                    if (start != null && start.segment == last && start.at < cut) {
                        truncated++
                        wal.recovery.truncatedBytes shouldBeInRange 1L..(cut - start.at).toLong()
                    } else if (start != null && start.segment < last) {
                        // a group that rolled into the cut segment is dropped whole, from its start in the segment
                        // before
                        truncated++
                        (wal.recovery.truncatedBytes > 0) shouldBe true
                    } else {
                        wal.recovery.truncatedBytes shouldBe 0
                    }
                    for ((topic, appended) in model) {
                        val records = withTimeout(20_000) { wal.replay(topic).toList() }
                        records.map { it.sequence } shouldContainExactly (0L until records.size).toList()
                        for (r in records) r.payload.toList() shouldBe appended[r.sequence]
                        val id = ids[topic]
                        records.size.toLong() shouldBe (if (id == null) 0L else survivors[id] ?: 0L)
                        wal.nextSequence(topic) shouldBe records.size.toLong()
                    }
                    // the log goes on densely
                    val topic = model.keys.first()
                    val next = wal.nextSequence(topic)
                    withTimeout(20_000) { wal.append(topic, byteArrayOf(1, 2, 3)) shouldBe next }
                }
                Kwal.open(TestLogs.scanned(dir)).use { wal ->
                    wal.recovery.truncatedBytes shouldBe 0
                    wal.recovery.corruption.shouldBeNull()
                    for (topic in model.keys) {
                        val records = withTimeout(20_000) { wal.replay(topic).toList() }
                        records.map { it.sequence } shouldContainExactly (0L until records.size).toList()
                    }
                }
                dir.toFile().deleteRecursively()
            }
            println(
                "RecoveryPropertySpec: 50 cuts, $truncated torn, $multiSegment multi-segment, " +
                    "$continuedCut CONTINUED runs cut after their first block, $zeroCut cut in zeros",
            )
            // a cut lands inside a block far more often than on a boundary
            (truncated >= 10) shouldBe true
        }

        test("a bit flipped anywhere in synced data fails a FAIL open; TRUNCATE keeps exactly the groups before it") {
            var multiSegment = 0
            checkAll(25, Arb.long()) { seed ->
                val rnd = Random(seed)
                val dir = TestLogs.tempDir("kwal-prop")
                val model = HashMap<String, MutableList<List<Byte>>>()
                // Sequential synced appends: every group's synced-through vouches for every group before it.
                Kwal.open(TestLogs.scanned(dir)).use { wal ->
                    withTimeout(60_000) {
                        val n = rnd.nextInt(5, 40)
                        for (k in 0 until n) {
                            val topic = if (k == 0 || k == n - 1) "t0" else "t${rnd.nextInt(3)}"
                            val m = model.getOrPut(topic) { ArrayList() }
                            val count = if (rnd.nextBoolean()) 1 else rnd.nextInt(1, 5)
                            val ps = List(count) { rnd.nextBytes(rnd.nextInt(0, 2000)) }
                            wal.appendBatch(topic, ps) shouldBe (m.size.toLong() until m.size + ps.size)
                            ps.forEach { m.add(it.toList()) }
                        }
                    }
                }
                val ids = LogFiles.topicIds(dir)
                val blocks = LogFiles.allBlocks(dir)
                if (blocks.last().segment > 1) multiSegment++
                // Groups: a CONTINUED chain and the block that ends it. Hit any block outside the last group (which
                // nothing later vouches for); recovery keeps the groups before the hit block's group.
                val groupStart = IntArray(blocks.size)
                for (i in blocks.indices) {
                    groupStart[i] =
                        if (i == 0 || !blocks[i - 1].continued) i else groupStart[i - 1]
                }
                val hit = rnd.nextInt(groupStart[blocks.size - 1])
                val b = blocks[hit]
                val seg = LogFiles.segment(dir, b.segment)
                LogFiles.flipBit(seg, (b.at + rnd.nextInt(b.size)).toLong(), rnd.nextInt(8))
                val before = LogFiles.snapshot(dir)

                val e = shouldThrow<WalCorruptedException> { Kwal.open(TestLogs.scanned(dir)).close() }
                e.file shouldBe seg
                e.offset shouldBe b.at.toLong()
                LogFiles.snapshot(dir) shouldBe before

                val survivors = HashMap<Int, Long>()
                for (k in 0 until groupStart[hit]) survivors[blocks[k].topicId] = blocks[k].firstSeq + blocks[k].count
                Kwal.open(TestLogs.scanned(dir, policy = CorruptionPolicy.TRUNCATE)).use { wal ->
                    wal.recovery.corruption.shouldNotBeNull()
                    for ((topic, appended) in model) {
                        val records = withTimeout(20_000) { wal.replay(topic).toList() }
                        records.map { it.sequence } shouldContainExactly (0L until records.size).toList()
                        for (r in records) r.payload.toList() shouldBe appended[r.sequence.toInt()]
                        records.size.toLong() shouldBe (survivors[ids.getValue(topic)] ?: 0L)
                    }
                }
                Kwal.open(TestLogs.scanned(dir)).use { wal ->
                    wal.recovery.truncatedBytes shouldBe 0
                    wal.recovery.corruption.shouldBeNull()
                }
                dir.toFile().deleteRecursively()
            }
            println("RecoveryPropertySpec: 25 bit flips, $multiSegment multi-segment logs")
        }
    })
