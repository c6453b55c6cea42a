package dev.kwal.engine.summary

import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.format.SegmentSummary
import dev.kwal.engine.storage.BlockIndex

/**
 * A [SegmentSummary] being built: the groups committed so far, from [from]. Runs follow the index's rule (see
 * `storage.BlockIndex`): a topic's block starts a new run unless it continues the topic's last run in the same
 * segment, within the strides. Not thread-safe.
 */
internal class SummaryDraft(seed: SegmentSummary? = null) {
    /** Set only by a seed: a summary's coverage starts where the previous one's ends. */
    val from: LogPosition? = seed?.from
    var to: LogPosition? = seed?.to
    var records = seed?.records ?: 0L
    var newestTimestamp = seed?.newestTimestamp ?: Long.MIN_VALUE
    var firstName = seed?.firstName ?: 0L
    var namesAt = seed?.namesAt ?: LogPosition.ZERO
    val names = ArrayList(seed?.names.orEmpty())
    val relocated = ArrayList(seed?.relocated.orEmpty())

    /** Runs as mutable rows: topic id, first sequence, position, blocks, bytes, records. */
    private val runs = ArrayList<LongArray>()

    /** Each topic's last run, an index into [runs]. */
    private val lastRun = HashMap<Int, Int>()

    init {
        for (r in seed?.runs.orEmpty()) {
            lastRun[r.topicId] = runs.size
            runs.add(
                longArrayOf(r.topicId.toLong(), r.firstSeq, r.position.packed, r.blocks.toLong(), r.bytes, r.records),
            )
        }
    }

    /**
     * Adds registry names [list], the first of them registry record [firstSeq], of the block at [position]; false if
     * they do not follow.
     */
    fun addNames(firstSeq: Long, list: List<String>, position: LogPosition): Boolean {
        namesAt = position
        if (names.isEmpty()) {
            firstName = firstSeq
        } else if (firstName + names.size != firstSeq) {
            return false
        }
        names.addAll(list)
        return true
    }

    /** Adds a topic's block in place; false if it does not continue the topic's records here. */
    fun addBlock(topicId: Int, firstSeq: Long, count: Int, position: LogPosition, length: Int): Boolean {
        val i = lastRun[topicId]
        if (i != null) {
            val r = runs[i]
            if (firstSeq != r[1] + r[5]) return false
            val p = LogPosition(r[2])
            if (p.segmentId == position.segmentId &&
                position.offset - p.offset < BlockIndex.STRIDE_BYTES &&
                r[3] < BlockIndex.STRIDE_BLOCKS
            ) {
                r[3]++
                r[4] += length
                r[5] += count
                records += count
                return true
            }
        }
        lastRun[topicId] = runs.size
        runs.add(longArrayOf(topicId.toLong(), firstSeq, position.packed, 1, length.toLong(), count.toLong()))
        records += count
        return true
    }

    /** The summary of segment [segmentId], its coverage from [from] (the previous one's end: [start] unless seeded). */
    fun summary(segmentId: Int, segmentSize: Int, logId: Long, start: LogPosition): SegmentSummary = SegmentSummary(
        segmentId,
        segmentSize,
        logId,
        from ?: start,
        to ?: start,
        records,
        newestTimestamp,
        firstName,
        namesAt,
        names.toList(),
        runs.map {
            SegmentSummary.Run(it[0].toInt(), it[1], LogPosition(it[2]), it[3].toInt(), it[4], it[5])
        },
        relocated.toList(),
    )
}
