package dev.kwal.engine.commit

import dev.kwal.Compression
import dev.kwal.WalException
import dev.kwal.WalOptions
import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.CompressedBody
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.format.RecordFrame
import dev.kwal.engine.format.SegmentHeader
import dev.kwal.engine.storage.LogLifecycle
import dev.kwal.engine.storage.Segment
import dev.kwal.engine.storage.SegmentSet
import dev.kwal.engine.storage.Topic
import dev.kwal.engine.storage.TopicTable
import org.slf4j.LoggerFactory
import java.nio.ByteBuffer
import java.util.zip.CRC32C

/**
 * Lays a [Group] out as blocks, encodes it into one buffer, and can undo it.
 *
 * [encode] assigns sequence numbers and lays the group out — a registry run naming the group's new topics, then one
 * run per topic, each run cut into blocks of at most [WalOptions.blockSize], every block but the group's last flagged
 * CONTINUED (see `FORMAT.md`) — rolling to the next segment ([SegmentSet.roll]) before a unit (an append, a batch, a
 * name) that might not fit the active one: a unit never spans segments, a group may. It records in the group the
 * [Group.Region]s to write (one per segment touched), the blocks, and the segments it sealed, and moves [tail].
 *
 * Every block of a group carries the group's timestamp: the clock's time, or the previous group's timestamp if the
 * clock reads earlier (it stepped back), so timestamps never decrease in log order, across reopens too (the first
 * group after an open is seeded with the newest timestamp recovery kept).
 *
 * [undo] reverses all of that for a group whose encoding or write failed: its bytes overwritten with durable zeros, its
 * rolls undone, its sequence numbers and topic registrations given back. The log goes on.
 *
 * Not thread-safe: used under the writer's lock ([GroupWriter]), by one thread at a time.
 */
internal class GroupEncoder(
    private val options: WalOptions,
    private val table: TopicTable,
    private val segments: SegmentSet,
    private val lifecycle: LogLifecycle,
    /** Offset in the active segment where the next group goes. */
    tail: Int,
    /** The newest group timestamp in the log (recovery's [dev.kwal.engine.recovery.RecoveredLog.newestTimestamp]). */
    newestTimestamp: Long = Long.MIN_VALUE,
    /** The wall clock, in ms since the epoch. */
    private val clock: () -> Long = System::currentTimeMillis,
) {
    private val log = LoggerFactory.getLogger(GroupEncoder::class.java)

    /** Offset in the active segment where the next group goes. */
    var tail: Int = tail
        private set

    init {
        segments.activeTail = tail
    }

    /** The encode buffer for ordinary groups; [buffer] grows past it for a large batch, and comes back to it after. */
    private val baseBuffer: ByteBuffer =
        ByteBuffer.allocateDirect(minOf(options.maxGroupBytes.toLong() * 2, 64L shl 20).toInt())
    private var buffer: ByteBuffer = baseBuffer
    private val crc = CRC32C()
    private val codec = RecordFrame.Codec()
    private val blockSize = options.blockSize

    /** Compresses a user topic's block body of at least [compressionThreshold] bytes when it closes, if on. */
    private val compressor: CompressedBody.Compressor? =
        if (options.compression == Compression.None) null else CompressedBody.Compressor(options.compression)
    private val compressionThreshold = options.compressionThreshold

    /** Where the log ends now: the active segment, at [tail]. */
    fun end(): LogPosition = LogPosition(segments.active.id, tail)

    /** Whether a unit that may take [bytes] ([AppendRequest.bytesBound]) fits the active segment without a roll. */
    fun fits(bytes: Long): Boolean = tail + bytes <= segments.active.size

    /** The bytes of [region] of the group just encoded, as a view of the encode buffer. */
    fun bytesOf(region: Group.Region): ByteBuffer =
        buffer.duplicate().apply { limit(region.bufferEnd).position(region.bufferStart) }

    // ---- the group being encoded ----

    /** Where the group being encoded started, for [undo]. */
    private var startSegment: Segment = segments.active
    private var startTail = 0

    private var group: Group = NO_GROUP
    private var regionStart = 0
    private var regionFileOffset = 0
    private var runTopic: Topic? = null
    private var blockOpen = false
    private var blockStart = 0
    private var blockFirstSeq = 0L
    private var blockRecords = 0
    private var seq = 0L

    /** The group's timestamp: never less than the previous group's (see [encode]). */
    private var timestamp = newestTimestamp
    private var synced = LogPosition.ZERO
    private var lastBlockStart = 0
    private var lastBlockPosition = LogPosition.ZERO

    /** Whether the group's last block so far was written final (no CONTINUED flag), so needs no rewrite. */
    private var lastBlockFinal = false

    /**
     * Encodes [g], whose every block records [syncedThrough] as the position through which the log is durable. A group
     * without appends (a barrier) encodes to nothing. Throws if a roll fails (the disk is full): then [undo] it.
     */
    fun encode(g: Group, syncedThrough: LogPosition) {
        startSegment = segments.active
        startTail = tail
        if (g.appends.isEmpty() && g.relocations.isEmpty()) return
        group = g
        // A large batch grew the buffer: let that one go (and its native memory with it) once groups are small again.
        if (buffer !== baseBuffer && g.frameBytes * 2 <= baseBuffer.capacity()) buffer = baseBuffer
        buffer.clear()
        regionStart = 0
        regionFileOffset = tail
        // Non-decreasing in log order, whatever the clock does, so that a time can be found by binary search.
        timestamp = maxOf(timestamp, clock())
        synced = syncedThrough
        if (g.newTopics.isNotEmpty()) {
            beginRun(table.registry)
            for (t in g.newTopics) {
                val name = t.name.encodeToByteArray()
                fitUnit(unitBytesBound(1, blockSize) { name.size })
                frame(name)
            }
            endRun()
        }
        lastBlockFinal = false
        for (i in g.topics.indices) {
            beginRun(g.topics[i])
            var r: AppendRequest? = g.runHead(i)
            while (r != null) {
                fitUnit(r.bytesBound(blockSize))
                r.firstSeq = seq
                for (k in 0 until r.count) frame(r.payloadAt(k))
                r = r.next
            }
            // The last run's last block is the group's last if no relocated copy follows: written final at once.
            endRun(last = i == g.topics.size - 1 && g.relocations.isEmpty())
        }
        g.releaseTopics()
        for (r in g.relocations) {
            r.copied = 0
            r.copiedBytes = 0
            for (b in r.blocks) {
                if (relocate(b)) {
                    r.copied++
                    r.copiedBytes += b.length
                }
            }
        }
        if (g.blockCount() > 0 && !lastBlockFinal) {
            // The group's last block says so: recovery keeps the group only if this block is there and sound.
            val lastFlags =
                buffer.get(lastBlockStart + BlockHeader.OFF_FLAGS).toInt() and BlockHeader.FLAG_CONTINUED.inv()
            BlockHeader.rewriteFlags(buffer, lastBlockStart, lastBlockPosition, lastFlags, crc)
        }
        closeRegion()
        tail = regionFileOffset + (buffer.position() - regionStart)
        segments.activeTail = tail
        group = NO_GROUP // the group holds its callers' payloads: keep no reference once it is encoded
    }

    private fun filePosition(bufferIndex: Int) = regionFileOffset + (bufferIndex - regionStart)

    private fun beginRun(topic: Topic) {
        runTopic = topic
        seq = topic.reserved
        blockOpen = false
    }

    /** Ends the run; [last]: its last block is the group's last, and is closed without CONTINUED (see [closeBlock]). */
    private fun endRun(last: Boolean = false) {
        if (blockOpen) closeBlock(last)
        runTopic!!.reserved = seq
    }

    /**
     * Rolls to a new segment first if a unit that may take [needed] bytes ([unitBytesBound]) might not fit this one.
     *
     * [needed] counts the unit's blocks plain; compression happens only when a block closes ([closeBlock]) and keeps a
     * body only if it is smaller, so every block ends no later than it would plain, and the check still holds. (A
     * block is also cut at [blockSize] by its plain size, since it is open, and plain, while frames are added.)
     */
    private fun fitUnit(needed: Long) {
        val at = filePosition(buffer.position())
        val active = segments.active
        if (at + needed <= active.size) return
        // Never past an empty segment: recovery would read the data after it as a torn tail. Recovery leaves an empty
        // active segment only at today's size, which fits any unit accepted, so this is a bug if it fails.
        check(at > SegmentHeader.SIZE) {
            "unit of $needed bytes does not fit the empty segment ${active.id} of ${active.size} bytes"
        }
        val topic = runTopic!!
        endRun()
        closeRegion()
        group.sealed.add(segments.roll())
        regionStart = buffer.position()
        regionFileOffset = SegmentHeader.SIZE
        beginRun(topic)
        check(regionFileOffset + needed <= segments.active.size) {
            "unit of $needed bytes cannot fit in an empty segment"
        }
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
        } else {
            ensure(length)
        }
        codec.encode(buffer, runTopic!!.id, seq, payload)
        seq++
        blockRecords++
    }

    /**
     * Closes the open block as CONTINUED, or, if it is the group's [last] block, without: else [encode] clears the flag
     * on the group's last block afterwards (rewriting its header CRC). A user topic's block of at least
     * [compressionThreshold] bytes of frames is compressed, if compression is on and that makes it smaller.
     */
    private fun closeBlock(last: Boolean = false) {
        val topic = runTopic!!
        val position = LogPosition(segments.active.id, filePosition(blockStart))
        var flags = if (last) 0 else BlockHeader.FLAG_CONTINUED
        var body = buffer.position() - blockStart - BlockHeader.SIZE
        var codec = CompressedBody.CODEC_NONE
        if (compressor != null && topic.id != 0 && body >= compressionThreshold) {
            val packed = compressor.compress(buffer, blockStart + BlockHeader.SIZE, body, position)
            if (packed >= 0) {
                body = packed
                flags = flags or BlockHeader.FLAG_COMPRESSED
                codec = compressor.codec
                buffer.position(blockStart + BlockHeader.SIZE + body)
            }
        }
        BlockHeader.write(
            buffer, blockStart, position, flags, topic.id, blockFirstSeq, blockRecords,
            body, synced, timestamp, crc, codec,
        )
        group.addBlock(topic, blockFirstSeq, blockRecords, position, BlockHeader.SIZE + body)
        lastBlockStart = blockStart
        lastBlockPosition = position
        lastBlockFinal = last
        blockOpen = false
    }

    /**
     * Copies block [b] to the end of the group as a relocated copy ([Relocator]), rolling first if it might not fit.
     * A block that is not sound where it is, or cannot fit an empty segment of today's size, is left where it is
     * (logged): its segment then stays. Returns whether it was copied.
     */
    private fun relocate(b: RelocatedBlock): Boolean {
        val source = segments[b.position.segmentId] ?: return false
        val view = source.borrowMapping()
        try {
            val problem = relocator.problem(view, b, source.size)
            if (problem != null) {
                log.error("kwal: not copying {}'s block at {} forward: {}", b.topic, b.position, problem)
                return false
            }
            val room = relocator.room(view, b.position.offset)
            if (filePosition(buffer.position()) + room > segments.active.size) {
                // It goes into the next segment, of today's size, which may be smaller than the active one.
                if (room > segments.segmentSize - SegmentHeader.SIZE) {
                    log.warn(
                        "kwal: {}'s block at {} is too large to copy into a segment of today's size",
                        b.topic,
                        b.position,
                    )
                    return false
                }
                check(filePosition(buffer.position()) > SegmentHeader.SIZE) { "relocation past an empty segment" }
                closeRegion()
                group.sealed.add(segments.roll())
                regionStart = buffer.position()
                regionFileOffset = SegmentHeader.SIZE
            }
            ensure(b.length)
            val start = buffer.position()
            val position = LogPosition(segments.active.id, filePosition(start))
            relocator.copy(view, b, buffer, start, position, synced)
            buffer.position(start + b.length)
            group.addRelocated(b.topic, b.firstSeq, buffer.getInt(start + BlockHeader.OFF_COUNT), position, b.length)
            lastBlockStart = start
            lastBlockPosition = position
            lastBlockFinal = false
            return true
        } finally {
            source.returnMapping()
        }
    }

    private val relocator = Relocator()

    private fun closeRegion() {
        if (buffer.position() > regionStart) {
            group.regions.add(Group.Region(segments.active, regionFileOffset, regionStart, buffer.position()))
        }
    }

    private fun ensure(bytes: Int) {
        if (buffer.remaining() >= bytes) return
        val bigger = ByteBuffer.allocateDirect(maxOf(buffer.capacity() * 2, buffer.position() + bytes))
        buffer.flip()
        bigger.put(buffer)
        buffer = bigger
    }

    // ---- undo ----

    /**
     * Gives up [g], which was never encoded (the log had failed): lets its topics go and gives back its registrations.
     */
    fun abandon(g: Group) {
        g.releaseTopics()
        giveBackRegistrations(g)
    }

    /**
     * Undoes [g], the group [encode] last took, whose encoding or write failed with [cause]: overwrites what it wrote
     * with zeros and syncs them (else a power cut could bring back blocks of it that a later, shorter group does not
     * overwrite, and recovery would find them sound), undoes its rolls, gives back its sequence numbers and its topic
     * registrations. If the zeros cannot be made durable, the log stops ([LogLifecycle.stop]). Returns the error its
     * callers get; it does not tell them.
     */
    fun undo(g: Group, cause: Throwable): WalException {
        log.warn("write failed; rolling back a group of {} requests: {}", g.appends.size, cause.toString())
        g.releaseTopics()
        group = NO_GROUP
        val error = (cause as? WalException) ?: WalException("write failed: $cause", cause)
        try {
            g.eraseRegions()
            for (r in g.regions) r.segment.file.force()
        } catch (e: Throwable) {
            // The failed group's bytes may still be on disk and could pass recovery's checks: stop.
            e.addSuppressed(cause)
            lifecycle.stop(e)
        }
        segments.rollBackTo(startSegment)
        tail = startTail
        segments.activeTail = tail
        // Each topic's first request in this group got the topic's sequence at the group's start.
        val firstSeqOf = HashMap<Topic, Long>()
        for (r in g.appends) firstSeqOf.putIfAbsent(r.topic!!, r.firstSeq)
        for ((t, s) in firstSeqOf) if (s >= 0) t.reserved = s
        giveBackRegistrations(g)
        return error
    }

    private fun giveBackRegistrations(g: Group) {
        for (t in g.newTopics.asReversed()) table.removeLast(t)
        table.registry.reserved = table.count.toLong()
    }

    private companion object {
        /** [group] between encodings. */
        val NO_GROUP = Group()
    }
}
