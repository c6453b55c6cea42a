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

    // Runs as columns (a run per block when many topics interleave: hundreds of thousands per segment, so no object
    // per run): topic id, first sequence, position, blocks, bytes, records; [runCount] rows in use.
    private var topics = IntArray(INITIAL)
    private var firstSeqs = LongArray(INITIAL)
    private var positions = LongArray(INITIAL)
    private var blocks = IntArray(INITIAL)
    private var bytes = LongArray(INITIAL)
    private var counts = LongArray(INITIAL)
    private var runCount = 0

    /** Each topic's last run, a row of the columns, by topic id (ids are dense); -1 for none. */
    private var lastRun = IntArray(INITIAL) { -1 }

    init {
        for (r in seed?.runs.orEmpty()) startRun(r.topicId, r.firstSeq, r.position, r.blocks, r.bytes, r.records)
    }

    private fun startRun(topicId: Int, firstSeq: Long, position: LogPosition, blocks: Int, bytes: Long, records: Long) {
        val i = runCount
        if (i == topics.size) grow()
        if (topicId >= lastRun.size) {
            val old = lastRun.size
            lastRun = lastRun.copyOf(maxOf(topicId + 1, old * 2))
            lastRun.fill(-1, old, lastRun.size)
        }
        topics[i] = topicId
        firstSeqs[i] = firstSeq
        positions[i] = position.packed
        this.blocks[i] = blocks
        this.bytes[i] = bytes
        counts[i] = records
        lastRun[topicId] = i
        runCount = i + 1
    }

    private fun grow() {
        val n = topics.size * 2
        topics = topics.copyOf(n)
        firstSeqs = firstSeqs.copyOf(n)
        positions = positions.copyOf(n)
        blocks = blocks.copyOf(n)
        bytes = bytes.copyOf(n)
        counts = counts.copyOf(n)
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
        val i = if (topicId < lastRun.size) lastRun[topicId] else -1
        if (i >= 0) {
            if (firstSeq != firstSeqs[i] + counts[i]) return false
            val p = LogPosition(positions[i])
            if (p.segmentId == position.segmentId &&
                position.offset - p.offset < BlockIndex.STRIDE_BYTES &&
                blocks[i] < BlockIndex.STRIDE_BLOCKS
            ) {
                blocks[i]++
                bytes[i] += length
                counts[i] += count
                records += count
                return true
            }
        }
        startRun(topicId, firstSeq, position, 1, length.toLong(), count.toLong())
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
        List(runCount) {
            SegmentSummary.Run(topics[it], firstSeqs[it], LogPosition(positions[it]), blocks[it], bytes[it], counts[it])
        },
        relocated.toList(),
    )

    private companion object {
        const val INITIAL = 64
    }
}
