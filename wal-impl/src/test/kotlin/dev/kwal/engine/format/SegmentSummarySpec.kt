package dev.kwal.engine.format

import dev.kwal.engine.storage.BlockIndex
import dev.kwal.engine.summary.SummaryDraft
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.shouldBe
import io.kotest.property.Arb
import io.kotest.property.arbitrary.int
import io.kotest.property.arbitrary.long
import io.kotest.property.checkAll
import kotlin.random.Random

/**
 * [SegmentSummary]'s codec and [SummaryDraft]'s runs: a summary decodes to what was encoded, any flipped byte is
 * refused, and a draft fed interleaved topics' blocks holds the runs the index's rule makes (a model below), however
 * many topics and runs.
 */
class SegmentSummarySpec :
    FunSpec({
        timeout = 120_000L

        fun SegmentSummary.Run.row() =
            listOf(topicId.toLong(), firstSeq, position.packed, blocks.toLong(), bytes, records)
        fun SegmentSummary.Relocated.row() =
            listOf(topicId.toLong(), firstSeq, count.toLong(), position.packed, length.toLong())

        fun SegmentSummary.rows() = listOf(
            segmentId, segmentSize, logId, from, to, records, newestTimestamp, firstName, namesAt, names,
            runs.map { it.row() }, relocated.map { it.row() },
        )

        fun randomSummary(r: Random): SegmentSummary = SegmentSummary(
            r.nextInt(1, 1000),
            r.nextInt(1 shl 16, 1 shl 28),
            r.nextLong(),
            LogPosition(r.nextInt(1, 100), r.nextInt(0, 1 shl 20)),
            LogPosition(r.nextInt(1, 100), r.nextInt(0, 1 shl 20)),
            r.nextLong(0, Long.MAX_VALUE),
            r.nextLong(),
            r.nextLong(0, 1 shl 40),
            LogPosition(r.nextLong(0, Long.MAX_VALUE)),
            List(r.nextInt(0, 20)) { i -> "topic-$i-" + "é".repeat(r.nextInt(0, 5)) },
            List(r.nextInt(0, 300)) {
                SegmentSummary.Run(
                    r.nextInt(1, 100_000),
                    r.nextLong(0, 1L shl 50),
                    LogPosition(r.nextLong(0, Long.MAX_VALUE)),
                    r.nextInt(1, 33),
                    r.nextLong(0, 1L shl 30),
                    r.nextLong(1, 1L shl 30),
                )
            },
            List(r.nextInt(0, 30)) {
                SegmentSummary.Relocated(
                    r.nextInt(1, 100_000),
                    r.nextLong(0, 1L shl 50),
                    r.nextInt(1, 1000),
                    LogPosition(r.nextLong(0, Long.MAX_VALUE)),
                    r.nextInt(1, 1 shl 20),
                )
            },
        )

        test("a summary decodes to what was encoded, and any flipped byte is refused") {
            checkAll(200, Arb.long()) { seed ->
                val r = Random(seed)
                val s = randomSummary(r)
                val buf = s.encode()
                val bytes = ByteArray(buf.remaining()).also { buf.get(it) }
                SegmentSummary.decode(bytes)!!.rows() shouldBe s.rows()
                val at = r.nextInt(bytes.size)
                bytes[at] = (bytes[at].toInt() xor (1 shl r.nextInt(8))).toByte()
                SegmentSummary.decode(bytes).shouldBeNull()
                SegmentSummary.decode(bytes.copyOf(r.nextInt(bytes.size))).shouldBeNull()
            }
        }

        test("a draft of interleaved topics' blocks holds the index's runs, for any number of topics") {
            checkAll(60, Arb.long(), Arb.int(1..5_000)) { seed, topics ->
                val r = Random(seed)
                val draft = SummaryDraft()
                // The model: each topic's open run as (first sequence, first offset, blocks, bytes, records).
                val model = ArrayList<LongArray>()
                val open = HashMap<Int, LongArray>()
                val next = LongArray(topics + 1)
                var offset = SegmentHeader.SIZE
                val segment = 7
                repeat(r.nextInt(1, 20_000)) {
                    val topic = r.nextInt(1, topics + 1)
                    val count = r.nextInt(1, 5)
                    val length = r.nextInt(BlockHeader.SIZE + 13, 3_000)
                    val position = LogPosition(segment, offset)
                    draft.addBlock(topic, next[topic], count, position, length) shouldBe true
                    val run = open[topic]
                    if (run != null && offset - run[2] < BlockIndex.STRIDE_BYTES && run[3] < BlockIndex.STRIDE_BLOCKS) {
                        run[3]++
                        run[4] += length.toLong()
                        run[5] += count.toLong()
                    } else {
                        val fresh =
                            longArrayOf(
                                topic.toLong(),
                                next[topic],
                                offset.toLong(),
                                1,
                                length.toLong(),
                                count.toLong(),
                            )
                        model += fresh
                        open[topic] = fresh
                    }
                    next[topic] += count.toLong()
                    offset += length
                }
                // A block that does not continue its topic's records is refused.
                val t = r.nextInt(1, topics + 1)
                if (next[t] > 0) draft.addBlock(t, next[t] + 1, 1, LogPosition(segment, offset), 100) shouldBe false
                val s = draft.summary(segment, 1 shl 30, 1L, LogPosition(segment, SegmentHeader.SIZE))
                s.runs.map { it.row() } shouldBe model.map {
                    listOf(it[0], it[1], LogPosition(segment, it[2].toInt()).packed, it[3], it[4], it[5])
                }
                s.records shouldBe next.sum()
                // Seeded from its own summary, a draft goes on with the same runs.
                val seeded = SummaryDraft(s)
                seeded.summary(segment, 1 shl 30, 1L, LogPosition(segment, SegmentHeader.SIZE)).runs.map {
                    it.row()
                } shouldBe
                    s.runs.map { it.row() }
            }
        }
    })
