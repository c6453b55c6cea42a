package dev.kwal.engine.commit

import dev.kwal.WalException
import dev.kwal.WalFailedException
import dev.kwal.WalOptions
import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.format.RecordFrame
import dev.kwal.engine.format.SegmentHeader
import dev.kwal.engine.storage.Segment
import dev.kwal.engine.storage.SegmentFiles
import dev.kwal.engine.storage.Topic
import dev.kwal.engine.storage.TopicTable
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.asExecutor
import kotlinx.coroutines.channels.SendChannel
import kotlinx.coroutines.sync.Mutex
import org.slf4j.LoggerFactory
import java.nio.ByteBuffer
import java.util.concurrent.CompletableFuture
import java.util.zip.CRC32C

/**
 * The first stage of group commit, one coroutine on the log's writer thread.
 *
 * It takes the first queued request, drains whatever else is queued up to [WalOptions.maxGroupBytes],
 * assigns sequence numbers, lays the group out as blocks — a registry run naming new topics, then one run
 * per topic, every block but the group's last flagged CONTINUED — encodes it into one buffer, writes that with one write per segment touched (one, unless the
 * group rolls to a new segment), and hands the group to the [GroupAcknowledger], which syncs and completes
 * it while this stage writes the next group.
 *
 * If a write fails, the group is rolled back: its bytes are overwritten with zeros, its sequence numbers and
 * topic registrations are given back, and every caller in it gets the error. The log goes on.
 *
 * ### The inline path
 * An append that needs no sync, made while the log is idle, does not need group commit: there is nothing to
 * group it with and no sync to share. Handing it to this coroutine and back would cost two thread wake-ups,
 * tens of microseconds each, for a copy into the page cache of well under a microsecond. So [writeInline] lets the caller write it as a
 * group of its own, on its own thread, through the same code and under the same [lock] the writer coroutine
 * holds while it builds, writes and routes a group. Everything this class keeps (the active segment, the
 * tail, the encoder, topic reservations) is only touched under [lock], by one thread at a time.
 */
internal class GroupWriter(
    private val options: WalOptions,
    private val files: SegmentFiles,
    private val table: TopicTable,
    private val state: LogState,
    private val logId: Long,
    private var active: Segment,
    private var tail: Int,
    spares: List<Segment>,
    private val queue: RequestQueue,
    private val toAcknowledger: SendChannel<Group>,
    private val completer: Completer,
) {
    private val log = LoggerFactory.getLogger(GroupWriter::class.java)
    private val spares = ArrayDeque(spares)
    private var preparing: CompletableFuture<Segment>? = null
    /** The encode buffer for ordinary groups; [buffer] grows past it for a large batch, and comes back to it after. */
    private val baseBuffer: ByteBuffer = ByteBuffer.allocateDirect(minOf(options.maxGroupBytes.toLong() * 2, 64L shl 20).toInt())
    private var buffer: ByteBuffer = baseBuffer
    private val crc = CRC32C()
    private val codec = RecordFrame.Codec()
    private val blockSize = options.blockSize

    /** Held while a group is built, written and routed, by this coroutine or by an inline caller. */
    private val lock = Mutex()

    /** Under [lock]: the writer has written its last group; nothing may be written any more. */
    private var stopped = false

    suspend fun run() {
        var carry: Request? = null
        try {
            while (true) {
                val first = carry ?: queue.receive() ?: break
                carry = null
                lock.lock()
                val group = Group()
                try {
                    take(group, first)
                    while (group.frameBytes < options.maxGroupBytes) {
                        take(group, queue.tryReceive() ?: break)
                    }
                    if (process(group)) {
                        // Counted off only now, under the lock: until the group has its sequences, an inline append
                        // (which waits for an idle queue) must not overtake any request in it.
                        queue.taken(group.taken, group.takenBytes)
                        carry = queue.tryReceive()
                        route(group, idle = carry == null)
                    } else {
                        queue.taken(group.taken, group.takenBytes)
                    }
                } catch (e: Throwable) {
                    // A bug, not an I/O error (those are rolled back in process): fail this group's callers too.
                    state.fail(e)
                    group.failWaiters(state.unavailable())
                    throw e
                } finally {
                    lock.unlock()
                }
            }
            // Closed: one last barrier so that close() syncs everything written.
            lock.lock()
            try {
                stopped = true
                route(Group().apply { needsSync = true }, idle = true)
            } finally {
                lock.unlock()
            }
        } catch (e: Throwable) {
            state.fail(e)
            log.error("kwal writer stopped", e)
            queue.fail(state.unavailable())
            carry?.fail(state.unavailable())
            while (true) (queue.tryReceive() ?: break).fail(state.unavailable())
            throw e
        } finally {
            toAcknowledger.close()
            for (s in spares) runCatching { s.file.close() }
            preparing?.let { p ->
                runCatching { p.get().file.close() }
            }
        }
    }

    /**
     * Writes [request], which needs no sync, on the calling thread and acknowledges it, if the log is idle:
     * no group being written, none waiting for its sync, no request queued. Returns false, having done nothing,
     * otherwise, and also when the request would need what is not cheap or not idle (a new topic, a segment
     * roll): the caller then queues it as usual.
     *
     * On true the request has been through the same path as a queued one: acknowledged (its
     * [AppendRequest.firstSeq] is set), or failed ([AppendRequest.error] is set) and rolled back.
     * The caller's thread copies the group into the page cache through the segment's shared mapping
     * ([dev.kwal.engine.io.LogFile.store]): no system call, unless a page is touched for the first time.
     */
    fun writeInline(request: AppendRequest): Boolean {
        if (!lock.tryLock() && !lockSoon()) return false
        try {
            if (stopped || completer.inFlight.get() != 0 || !queue.isIdle) return false
            if (known(request) == null) return false
            if (tail + request.bytesBound(blockSize) > active.size) return false
            val group = inlineGroup
            group.clear()
            add(group, request)
            try {
                if (processInline(group)) finishHere(group)
                group.clear() // it holds the caller's payload
            } catch (e: Throwable) {
                // A bug, as in run(): stop the log; the writer coroutine fails whatever is queued.
                if (state.fail(e)) queue.fail(WalFailedException("internal error: $e", e))
                group.failWaiters(state.unavailable())
            }
            return true
        } finally {
            lock.unlock()
        }
    }

    /**
     * Tries [lock] again for a moment while nothing is queued: a caller whose previous append was queued is
     * resumed while the writer still holds the lock, and would otherwise find it held and queue again.
     */
    private fun lockSoon(): Boolean {
        repeat(LOCK_SPINS) {
            if (!queue.isIdle) return false
            Thread.onSpinWait()
            if (lock.tryLock()) return true
        }
        return false
    }

    /** [request]'s topic if it is registered: the one its caller found, unless rolled back since, or a fresh lookup. */
    private fun known(request: AppendRequest): Topic? = request.topic?.takeIf { it.registered } ?: table[request.topicName]

    private fun add(group: Group, request: Request) {
        when (request) {
            is SyncRequest -> { group.syncs.add(request); group.needsSync = true }
            is AppendRequest -> {
                if (request.abandoned) return // cancelled while queued: never written
                val topic = known(request) ?: table.add(request.topicName).also { group.newTopics.add(it) }
                request.topic = topic
                request.next = null
                val tailRequest = topic.groupTail as AppendRequest?
                if (tailRequest == null) { topic.groupHead = request; group.topics.add(topic) } else tailRequest.next = request
                topic.groupTail = request
                group.appends.add(request)
                group.frameBytes += request.frameBytes
                if (request.sync) group.needsSync = true
            }
        }
    }

    /** Adds [request], taken from the queue, to [group], counting it for [RequestQueue.taken]. */
    private fun take(group: Group, request: Request) {
        group.taken++
        group.takenBytes += request.queuedBytes
        add(group, request)
    }

    /**
     * Finishes a written group here when the acknowledger has nothing in flight and either the group needs no
     * sync or no request is waiting ([idle]): one thread hop less. Otherwise hands it over, so the next group is
     * written while this one syncs.
     */
    private suspend fun route(group: Group, idle: Boolean) {
        if (completer.inFlight.get() == 0 && (idle || !group.needsSync)) {
            finishHere(group)
        } else {
            completer.inFlight.incrementAndGet()
            toAcknowledger.send(group)
        }
    }

    /** Finishes [group] on this thread; only while the acknowledger has nothing in flight. */
    private fun finishHere(group: Group) {
        single.clear()
        single.add(group)
        completer.finish(single)
        single.clear()
    }

    private val single = ArrayList<Group>(1)

    /** The group [writeInline] reuses: it is finished before the lock is released, so nothing keeps it. */
    private val inlineGroup = Group()

    /** Encodes and writes [group] with suspending writes; returns whether it was written (false: it failed and its callers have been told). */
    private suspend fun process(group: Group): Boolean =
        encodeAndWrite(group) { r, bytes -> r.segment.file.write(bytes, r.fileOffset.toLong()) }

    /** As [process], but stores the group through the segment's mapping, on the calling thread. */
    private fun processInline(group: Group): Boolean =
        encodeAndWrite(group) { r, bytes -> r.segment.file.store(bytes, r.fileOffset.toLong()) }

    /** Encodes [group], then hands each region's bytes to [write]; rolls the group back if either fails. */
    private inline fun encodeAndWrite(group: Group, write: (Group.Region, ByteBuffer) -> Unit): Boolean {
        if (!encodeOrFail(group)) return false
        try {
            for (r in group.regions) write(r, buffer.duplicate().apply { limit(r.bufferEnd).position(r.bufferStart) })
        } catch (e: Throwable) {
            rollback(group, e)
            return false
        }
        group.end = LogPosition(active.id, tail)
        return true
    }

    /** Encodes [group] (if the log has not failed); false if it could not be, and its callers have been told. */
    private fun encodeOrFail(group: Group): Boolean {
        if (state.failure != null) {
            unlinkTopics(group)
            rollbackRegistrations(group)
            group.failWaiters(state.unavailable())
            return false
        }
        groupStartSegment = active
        groupStartTail = tail
        if (group.appends.isEmpty()) return true
        try {
            // Encoding can fail too: rolling may have to create a segment, and the disk may be full.
            encode(group)
        } catch (e: Throwable) {
            rollback(group, e)
            return false
        }
        return true
    }

    /** Where the group being processed started, for [rollback]. */
    private var groupStartSegment: Segment = active
    private var groupStartTail = 0

    // ---- layout and encoding ----

    private var regionStart = 0
    private var regionFileOffset = 0
    private var runTopic: Topic? = null
    private var blockOpen = false
    private var blockStart = 0
    private var blockFirstSeq = 0L
    private var blockRecords = 0
    private var seq = 0L
    private var timestamp = 0L
    private var synced = LogPosition.ZERO
    private var group: Group = NO_GROUP
    private var lastBlockStart = 0
    private var lastBlockPosition = LogPosition.ZERO

    private fun filePosition(bufferIndex: Int) = regionFileOffset + (bufferIndex - regionStart)

    private fun encode(g: Group) {
        group = g
        // A large batch grew the buffer: let that one go (and its native memory with it) once groups are small again.
        if (buffer !== baseBuffer && g.frameBytes * 2 <= baseBuffer.capacity()) buffer = baseBuffer
        buffer.clear()
        regionStart = 0
        regionFileOffset = tail
        timestamp = System.currentTimeMillis()
        synced = state.durableFrontier
        if (g.newTopics.isNotEmpty()) {
            val registry = table.registry
            beginRun(registry)
            for (t in g.newTopics) {
                val name = t.name.encodeToByteArray()
                fitUnit(unitBytesBound(1, blockSize) { name.size })
                frame(name)
            }
            endRun()
        }
        for (topic in g.topics) {
            beginRun(topic)
            var r = topic.groupHead as AppendRequest?
            while (r != null) {
                fitUnit(r.bytesBound(blockSize))
                r.firstSeq = seq
                for (i in 0 until r.count) frame(r.payloadAt(i))
                r = r.next
            }
            endRun()
        }
        unlinkTopics(g)
        // The group's last block says so: recovery keeps the group only if this block is there and sound.
        BlockHeader.rewriteFlags(buffer, lastBlockStart, lastBlockPosition, 0, crc)
        closeRegion()
        tail = regionFileOffset + (buffer.position() - regionStart)
        group = NO_GROUP // the group holds its callers' payloads: keep no reference once it is encoded
    }

    private fun unlinkTopics(g: Group) {
        for (t in g.topics) { t.groupHead = null; t.groupTail = null }
    }

    private fun beginRun(topic: Topic) {
        runTopic = topic
        seq = topic.reserved
        blockOpen = false
    }

    private fun endRun() {
        if (blockOpen) closeBlock()
        runTopic!!.reserved = seq
    }

    /** Rolls to a new segment first if a unit that may take [needed] bytes ([unitBytesBound]) might not fit in this one. */
    private fun fitUnit(needed: Long) {
        val at = filePosition(buffer.position())
        if (at + needed <= active.size) return
        // Never past an empty segment: recovery would read the data after it as a torn tail. Recovery leaves an empty
        // active segment only at today's size, which fits any unit accepted, so this is a bug if it fails.
        check(at > SegmentHeader.SIZE) { "unit of $needed bytes does not fit the empty segment ${active.id} of ${active.size} bytes" }
        val topic = runTopic!!
        endRun()
        closeRegion()
        roll()
        regionStart = buffer.position()
        regionFileOffset = SegmentHeader.SIZE
        beginRun(topic)
        check(regionFileOffset + needed <= active.size) { "unit of $needed bytes cannot fit in an empty segment" }
    }

    private fun frame(payload: ByteArray) {
        val length = RecordFrame.HEADER_SIZE + payload.size
        if (blockOpen && (buffer.position() - blockStart) + length > blockSize) closeBlock()
        if (!blockOpen) {
            ensure(BlockHeader.SIZE + length)
            blockOpen = true
            blockStart = buffer.position()
            blockFirstSeq = seq
            blockRecords = 0
            buffer.position(blockStart + BlockHeader.SIZE)
        } else ensure(length)
        codec.encode(buffer, runTopic!!.id, seq, payload)
        seq++
        blockRecords++
    }

    /** Closes the open block as CONTINUED; [encode] clears the flag on the group's last block. */
    private fun closeBlock() {
        val topic = runTopic!!
        val position = LogPosition(active.id, filePosition(blockStart))
        BlockHeader.write(
            buffer, blockStart, position, BlockHeader.FLAG_CONTINUED, topic.id, blockFirstSeq, blockRecords,
            buffer.position() - blockStart - BlockHeader.SIZE, synced, timestamp, crc,
        )
        group.addBlock(topic, blockFirstSeq, blockRecords, position)
        lastBlockStart = blockStart
        lastBlockPosition = position
        blockOpen = false
    }

    private fun closeRegion() {
        if (buffer.position() > regionStart) {
            group.regions.add(Group.Region(active, regionFileOffset, regionStart, buffer.position()))
        }
    }

    private fun ensure(bytes: Int) {
        if (buffer.remaining() >= bytes) return
        val bigger = ByteBuffer.allocateDirect(maxOf(buffer.capacity() * 2, buffer.position() + bytes))
        buffer.flip()
        bigger.put(buffer)
        buffer = bigger
    }

    // ---- segments ----

    private fun roll() {
        val next = nextSegment()
        active.sealed = true
        group.sealed.add(active)
        active = next
        state.segments[next.id] = next
        if (spares.isEmpty() && preparing == null) {
            val id = next.id + 1
            preparing = CompletableFuture.supplyAsync({ files.create(id, options.segmentSize, logId) }, Dispatchers.IO.asExecutor())
        }
    }

    /** The spare, or the one being prepared (waiting for it, blocking), or a new one. */
    private fun nextSegment(): Segment {
        val id = active.id + 1
        spares.removeFirstOrNull()?.let { check(it.id == id) { "spare ${it.id} is not segment $id" }; return it }
        preparing?.let { p ->
            preparing = null
            val s = runCatching { p.get() }.getOrNull()
            if (s != null && s.id == id) return s
            s?.file?.close()
        }
        return files.create(id, options.segmentSize, logId)
    }

    // ---- rollback ----

    private fun rollback(g: Group, cause: Throwable) {
        val startSegment = groupStartSegment
        val startTail = groupStartTail
        log.warn("write failed; rolling back a group of {} requests: {}", g.appends.size, cause.toString())
        unlinkTopics(g)
        val error = (cause as? WalException) ?: WalException("write failed: $cause", cause)
        try {
            g.eraseRegions()
            // Durable zeros: otherwise a power cut could bring back blocks of this group that a later, shorter
            // group does not overwrite, and recovery would find them sound.
            for (r in g.regions) r.segment.file.force()
        } catch (e: Throwable) {
            // The failed group's bytes may still be on disk and could pass recovery's checks: stop.
            e.addSuppressed(cause)
            state.fail(e)
        }
        // Give back the segments this group rolled into, newest last, so they are used again in order.
        for (s in g.sealed.asReversed()) s.sealed = false
        for (id in active.id downTo startSegment.id + 1) state.segments.remove(id)?.let { spares.addFirst(it) }
        active = startSegment
        tail = startTail
        // Each topic's first request in this group got the topic's sequence at the group's start.
        val firstSeqOf = HashMap<Topic, Long>()
        for (r in g.appends) firstSeqOf.putIfAbsent(r.topic!!, r.firstSeq)
        for ((t, s) in firstSeqOf) if (s >= 0) t.reserved = s
        rollbackRegistrations(g)
        g.failWaiters(error)
    }

    private fun rollbackRegistrations(g: Group) {
        for (t in g.newTopics.asReversed()) table.removeLast(t)
        table.registry.reserved = table.count.toLong()
    }

    private companion object {
        /** [group] between encodings. */
        val NO_GROUP = Group()

        /** About a few microseconds of spinning: the tail of a group the writer is finishing, no more. */
        const val LOCK_SPINS = 64
    }
}
