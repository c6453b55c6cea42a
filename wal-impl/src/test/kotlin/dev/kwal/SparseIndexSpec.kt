package dev.kwal

import dev.kwal.engine.Kwal
import dev.kwal.engine.KwalEngine
import dev.kwal.engine.format.BlockHeader
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.doubles.shouldBeLessThan
import io.kotest.matchers.shouldBe
import io.kotest.property.Arb
import io.kotest.property.PropTestConfig
import io.kotest.property.arbitrary.long
import io.kotest.property.checkAll
import kotlinx.coroutines.flow.toList
import java.nio.file.Path
import kotlin.random.Random

/**
 * The sparse block index (`storage.BlockIndex`): a sample per run of blocks, the rest found by walking the segment. What
 * it costs in heap, and that every way of finding a record — point read, page, replay, seek, retention by bytes —
 * finds exactly the right block with topics interleaved, blocks of every size, and segments of several sizes.
 */
class SparseIndexSpec :
    FunSpec({
        val newDir = Contract.dirs(this)

        test("heap: 100 B single appends cost the index under a byte per record") {
            val dir = newDir()
            val n = 100_000
            Kwal.open(WalOptions.builder(dir).durability(Durability.None).build()).use { wal ->
                val payload = ByteArray(100) { it.toByte() }
                for (i in 0 until n) wal.append("t", payload)
                val e = wal as KwalEngine
                val heap = e.indexHeapBytes("t")
                println(
                    "INDEX_HEAP records=$n entries=${e.indexEntries(
                        "t",
                    )} bytes=$heap per_record=${heap.toDouble() / n}",
                )
                (heap.toDouble() / n) shouldBeLessThan 1.0
                for (s in listOf(0L, 1L, 31L, 32L, 33L, n / 2L, n - 1L)) wal.read("t", s)!!.payload shouldBe payload
            }
            // The premise: a block per append, so the index is a sample of blocks, not of batches.
            val id = LogFiles.topicIds(dir).getValue("t")
            LogFiles.allBlocks(dir).count { it.topicId == id } shouldBe n
        }

        test(
            "property: topics interleaved, any block and segment size: reads, pages, replays, seeks find every record",
        ) {
            checkAll(PropTestConfig(seed = 20261201L, iterations = 8), Arb.long()) { seed ->
                val rnd = Random(seed)
                val dir = newDir()
                val segmentSize = listOf(64 shl 10, 96 shl 10, 200 shl 10).random(rnd)
                val blockSize = listOf(4 shl 10, 8 shl 10, 16 shl 10).random(rnd)
                val options = WalOptions.builder(dir)
                    .segmentSize(segmentSize)
                    .blockSize(blockSize)
                    .maxRecordSize(2 shl 10)
                    .durability(Durability.None)
                    .compression(if (rnd.nextBoolean()) Compression.None else Compression.Lz4)
                    .retentionIntervalMillis(0)
                    .build()
                val topics = List(rnd.nextInt(1, 5)) { "t$it" }
                val written = topics.associateWith { ArrayList<ByteArray>() }
                val clue = "seed=$seed seg=$segmentSize block=$blockSize topics=${topics.size} ${options.compression}"
                withClue(clue) {
                    Kwal.open(options).use { wal ->
                        repeat(400) {
                            // Skewed: the first topic gets most of the records, in runs of small blocks.
                            val t = if (rnd.nextInt(3) > 0) topics[0] else topics.random(rnd)
                            val k = if (rnd.nextInt(4) == 0) rnd.nextInt(1, 40) else 1
                            val list = written.getValue(t)
                            val batch = List(k) {
                                TestLogs.payload(t, list.size.toLong() + it, rnd.nextInt(0, 300))
                            }
                            val range = wal.appendBatch(t, batch)
                            range.first shouldBe list.size.toLong()
                            list.addAll(batch)
                        }
                        checkReads(wal, written, rnd)
                    }
                    Kwal.open(options).use { wal -> checkReads(wal, written, rnd) }
                }
            }
        }

        test("property: retention by bytes keeps exactly the newest blocks that fit, through walks of the index") {
            checkAll(PropTestConfig(seed = 7L, iterations = 8), Arb.long()) { seed ->
                val rnd = Random(seed)
                val dir = newDir()
                val base = WalOptions.builder(dir)
                    .segmentSize(listOf(64 shl 10, 128 shl 10).random(rnd))
                    .blockSize(listOf(4 shl 10, 8 shl 10).random(rnd))
                    .maxRecordSize(2 shl 10)
                    .durability(Durability.None)
                    .retentionIntervalMillis(0)
                    .compactionThreshold(0.0)
                val n = HashMap<String, Long>()
                Kwal.open(base.build()).use { wal ->
                    repeat(600) {
                        val t = if (rnd.nextInt(4) > 0) "hot" else "cold${rnd.nextInt(3)}"
                        val k = if (rnd.nextInt(3) == 0) rnd.nextInt(1, 20) else 1
                        val from = n[t] ?: 0L
                        wal.appendBatch(t, List(k) { TestLogs.payload(t, from + it, rnd.nextInt(0, 200)) })
                        n[t] = from + k
                    }
                }
                val id = LogFiles.topicIds(dir).getValue("hot")
                val blocks = LogFiles.allBlocks(dir).filter {
                    it.topicId == id && it.flags and BlockHeader.FLAG_RELOCATED == 0
                }
                val total = blocks.sumOf { it.size.toLong() }
                // Half the time exactly the bytes of the newest k blocks: the edge where the k-th just fits.
                val max = if (rnd.nextBoolean()) {
                    blocks.takeLast(rnd.nextInt(1, blocks.size)).sumOf { it.size.toLong() }
                } else {
                    rnd.nextLong(1, total)
                }
                // The newest blocks whose bytes total at most max.
                var kept = 0L
                var cut = n.getValue("hot")
                for (b in blocks.asReversed()) {
                    if (kept + b.size > max) break
                    kept += b.size
                    cut = b.firstSeq
                }
                withClue("seed=$seed max=$max of $total bytes in ${blocks.size} blocks: expected first $cut") {
                    Kwal.open(base.topicRetention(mapOf("hot" to Retention.bytes(max))).build()).use { wal ->
                        val report = wal.applyRetention()
                        (report.truncated["hot"] ?: 0L) shouldBe (if (cut > 0) cut else 0L)
                        wal.firstSequence("hot") shouldBe cut
                        val rest = wal.replay("hot", cut).toList().map { it.sequence }
                        rest shouldBe (cut until n.getValue("hot")).toList()
                    }
                }
            }
        }
    }) {
    companion object {
        suspend fun checkReads(wal: Wal, written: Map<String, List<ByteArray>>, rnd: Random) {
            for ((t, list) in written) {
                withClue("topic $t of ${list.size} records, ${(wal as KwalEngine).indexEntries(t)} index entries") {
                    // Every record by point read.
                    for (s in list.indices) wal.read(t, s.toLong())!!.payload.toList() shouldBe list[s].toList()
                    wal.read(t, list.size.toLong()) shouldBe null
                    // Pages from random places, across blocks and segments.
                    repeat(20) {
                        val from = rnd.nextLong(0, list.size.toLong())
                        val page = wal.read(t, from, rnd.nextInt(1, 80))
                        page.isNotEmpty() shouldBe true
                        page.forEachIndexed { i, r ->
                            r.sequence shouldBe from + i
                            r.payload.toList() shouldBe list[(from + i).toInt()].toList()
                        }
                    }
                    // Replays from random places.
                    repeat(3) {
                        val from = rnd.nextLong(0, list.size.toLong() + 1)
                        val got = wal.replay(t, from).toList()
                        got.map { it.sequence } shouldBe (from until list.size).toList()
                        got.forEach { it.payload.toList() shouldBe list[it.sequence.toInt()].toList() }
                    }
                    // Seek equals a scan of the timestamps replay reports.
                    val all = wal.replay(t).toList()
                    repeat(10) {
                        val at = all[rnd.nextInt(all.size)].timestampMillis + rnd.nextLong(-1, 2)
                        val expected = all.firstOrNull { it.timestampMillis >= at }?.sequence ?: list.size.toLong()
                        // The first record stamped at or after is its block's first: a block's records share a stamp.
                        wal.seek(t, at) shouldBe expected
                    }
                }
            }
        }
    }
}
