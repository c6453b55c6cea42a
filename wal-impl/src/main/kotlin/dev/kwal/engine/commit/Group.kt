package dev.kwal.engine.commit

import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.storage.Segment
import dev.kwal.engine.storage.SegmentFiles
import dev.kwal.engine.storage.Topic

/**
 * One group commit: the requests drained together, and, once encoded, where their bytes go and which blocks
 * they form. Built and written by the writer thread, then handed to the acknowledging thread.
 */
internal class Group {
    val appends = ArrayList<AppendRequest>()
    val syncs = ArrayList<SyncRequest>()
    var needsSync = false
    var frameBytes = 0L

    /** Requests the writer took from the queue for this group, abandoned ones included, and their queued bytes. */
    var taken = 0
    var takenBytes = 0L

    /** Topics with requests in this group, in order of first appearance. */
    val topics = ArrayList<Topic>()

    /** Topics this group registers (its registry run names them). */
    val newTopics = ArrayList<Topic>()

    /** The contiguous file ranges this group's buffer is written to, one per segment touched. */
    val regions = ArrayList<Region>()

    /** Segments this group sealed by rolling past them. */
    val sealed = ArrayList<Segment>()

    /** Each block written: its topic, first sequence, record count and position. */
    val blockTopics = ArrayList<Topic>()
    var blockInfo = LongArray(24) // firstSeq, count, position per block
        private set
    var blockCount = 0
        private set

    /** Where the log ends after this group. */
    var end: LogPosition = LogPosition.ZERO

    fun addBlock(topic: Topic, firstSeq: Long, count: Int, position: LogPosition) {
        if (3 * blockCount + 3 > blockInfo.size) blockInfo = blockInfo.copyOf(blockInfo.size * 2)
        blockTopics.add(topic)
        blockInfo[3 * blockCount] = firstSeq
        blockInfo[3 * blockCount + 1] = count.toLong()
        blockInfo[3 * blockCount + 2] = position.packed
        blockCount++
    }

    /** Empties this group for reuse. */
    fun clear() {
        appends.clear()
        syncs.clear()
        needsSync = false
        frameBytes = 0
        taken = 0
        takenBytes = 0
        topics.clear()
        newTopics.clear()
        regions.clear()
        sealed.clear()
        blockTopics.clear()
        blockCount = 0
        end = LogPosition.ZERO
    }

    /** Overwrites every byte this group wrote with zeros, blocking. */
    fun eraseRegions() {
        for (r in regions) SegmentFiles.writeZeros(r.segment.file, r.fileOffset.toLong(), r.fileOffset.toLong() + r.bufferEnd - r.bufferStart)
    }

    /** Resumes every caller waiting on this group with [error]. */
    fun failWaiters(error: Throwable) {
        for (r in appends) r.fail(error)
        for (s in syncs) s.fail(error)
    }

    class Region(val segment: Segment, val fileOffset: Int, val bufferStart: Int, val bufferEnd: Int)
}
