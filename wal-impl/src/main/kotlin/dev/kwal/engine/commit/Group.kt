package dev.kwal.engine.commit

import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.storage.Segment
import dev.kwal.engine.storage.SegmentFiles
import dev.kwal.engine.storage.Topic
import dev.kwal.engine.storage.TopicTable

/**
 * One group commit: the requests drained together, and, once encoded ([GroupEncoder]), where their bytes go and which
 * blocks they form. Built and written under the writer's lock, then finished by the [Completer] (on the sync thread,
 * or on the thread that wrote it).
 *
 * Its appends are kept per topic, in *runs* (one per topic, in order of first appearance): the encoder lays each run
 * out as that topic's blocks. A topic's run is found through [Topic.groupSlot] while the group is built;
 * [releaseTopics] lets the topics go once it is encoded (or given up).
 */
internal class Group {
    val appends = ArrayList<AppendRequest>()
    val syncs = ArrayList<SyncRequest>()
    var needsSync = false
    var frameBytes = 0L

    /** Requests taken from the queue for this group, abandoned ones included, and their queued bytes. */
    var taken = 0
        private set
    var takenBytes = 0L
        private set

    /**
     * Topics with requests in this group, in order of first appearance; [runHead] is each one's first request, and
     * [AppendRequest.next] links the rest of its run (no allocation per topic).
     */
    val topics = ArrayList<Topic>()
    private val runHeads = ArrayList<AppendRequest>()
    private val runTails = ArrayList<AppendRequest>()

    /** Topics this group registers (its registry run names them). */
    val newTopics = ArrayList<Topic>()

    /** The contiguous file ranges this group's buffer is written to, one per segment touched. */
    val regions = ArrayList<Region>()

    /** Segments this group sealed by rolling past them. */
    val sealed = ArrayList<Segment>()

    /**
     * Each block written: its topic, and in [blockInfo] its first sequence, record count, position, and length
     * (header included) with bit 32 set if it is a relocated copy ([addRelocated]).
     */
    private val blockTopics = ArrayList<Topic>()
    private var blockInfo = LongArray(32)
    private var blockCount = 0

    /** Blocks of other segments that retention asked this group to copy forward (see [RelocateRequest]). */
    val relocations = ArrayList<RelocateRequest>()

    /** Where the log ends after this group. */
    var end: LogPosition = LogPosition.ZERO

    /** Adds [request], taken from the queue: see [add]. */
    fun take(request: Request, table: TopicTable) {
        taken++
        takenBytes += request.queuedBytes
        add(request, table)
    }

    /**
     * Adds [request] — unless it is an append its caller abandoned: that one is never written. An append's topic is
     * looked up in [table], and registered there if it is new (the group then names it in its registry run).
     */
    fun add(request: Request, table: TopicTable) {
        when (request) {
            is SyncRequest -> {
                syncs.add(request)
                needsSync = true
            }

            is RelocateRequest -> {
                relocations.add(request)
                frameBytes += request.bytes
            }

            is AppendRequest -> {
                if (request.abandoned) return
                val topic = knownTopic(request, table) ?: table.add(request.topicName).also { newTopics.add(it) }
                request.topic = topic
                request.next = null
                val slot = topic.groupSlot
                if (slot < 0) {
                    topic.groupSlot = topics.size
                    topics.add(topic)
                    runHeads.add(request)
                    runTails.add(request)
                } else {
                    runTails[slot].next = request
                    runTails[slot] = request
                }
                appends.add(request)
                frameBytes += request.frameBytes
                if (request.sync) needsSync = true
            }
        }
    }

    /** The first append to [topics]`[i]`; [AppendRequest.next] leads to the others, in the order they were added. */
    fun runHead(i: Int): AppendRequest = runHeads[i]

    /** Lets go of this group's topics ([Topic.groupSlot]): once encoded, or given up. */
    fun releaseTopics() {
        for (t in topics) t.groupSlot = -1
    }

    /** Notes a block of [length] bytes written for [topic]. */
    fun addBlock(topic: Topic, firstSeq: Long, count: Int, position: LogPosition, length: Int) =
        addBlock(topic, firstSeq, count, position, length.toLong())

    /** Notes a relocated copy, of [length] bytes, of [topic]'s block whose first record is [firstSeq]. */
    fun addRelocated(topic: Topic, firstSeq: Long, count: Int, position: LogPosition, length: Int) =
        addBlock(topic, firstSeq, count, position, length.toLong() or RELOCATED)

    private fun addBlock(topic: Topic, firstSeq: Long, count: Int, position: LogPosition, lengthAndFlag: Long) {
        if (4 * blockCount + 4 > blockInfo.size) blockInfo = blockInfo.copyOf(blockInfo.size * 2)
        blockTopics.add(topic)
        blockInfo[4 * blockCount] = firstSeq
        blockInfo[4 * blockCount + 1] = count.toLong()
        blockInfo[4 * blockCount + 2] = position.packed
        blockInfo[4 * blockCount + 3] = lengthAndFlag
        blockCount++
    }

    fun blockCount(): Int = blockCount
    fun blockTopic(i: Int): Topic = blockTopics[i]
    fun blockFirstSeq(i: Int): Long = blockInfo[4 * i]
    fun blockRecords(i: Int): Int = blockInfo[4 * i + 1].toInt()
    fun blockPosition(i: Int): LogPosition = LogPosition(blockInfo[4 * i + 2])
    fun blockLength(i: Int): Int = (blockInfo[4 * i + 3] and 0xFFFF_FFFFL).toInt()
    fun blockRelocated(i: Int): Boolean = blockInfo[4 * i + 3] and RELOCATED != 0L

    /** Empties this group for reuse. */
    fun clear() {
        appends.clear()
        syncs.clear()
        needsSync = false
        frameBytes = 0
        taken = 0
        takenBytes = 0
        topics.clear()
        runHeads.clear()
        runTails.clear()
        newTopics.clear()
        regions.clear()
        sealed.clear()
        blockTopics.clear()
        blockCount = 0
        relocations.clear()
        end = LogPosition.ZERO
    }

    /** Overwrites every byte this group wrote with zeros, blocking. */
    fun eraseRegions() {
        for (r in regions) {
            SegmentFiles.writeZeros(
                r.segment.file,
                r.fileOffset.toLong(),
                r.fileOffset.toLong() + r.bufferEnd - r.bufferStart,
            )
        }
    }

    /**
     * Tells every caller in this group that its request is done; appenders through [resumer], which dispatches them
     * when its chunks fill or on [Resumer.flush].
     */
    fun completeWaiters(resumer: Resumer) {
        for (r in appends) r.complete(resumer)
        for (r in relocations) r.complete()
        for (s in syncs) s.complete()
    }

    /** Tells every caller in this group that its request failed with [error]. */
    fun failWaiters(error: Throwable) {
        for (r in appends) r.fail(error)
        for (r in relocations) r.fail(error)
        for (s in syncs) s.fail(error)
    }

    /** Bytes `[bufferStart, bufferEnd)` of the encode buffer go to [segment] at [fileOffset]. */
    class Region(val segment: Segment, val fileOffset: Int, val bufferStart: Int, val bufferEnd: Int)

    companion object {
        private const val RELOCATED = 1L shl 32

        /**
         * [request]'s topic if it is registered: the one its caller found, unless rolled back since, or a fresh lookup.
         */
        fun knownTopic(request: AppendRequest, table: TopicTable): Topic? =
            request.topic?.takeIf { it.registered } ?: table[request.topicName]
    }
}
