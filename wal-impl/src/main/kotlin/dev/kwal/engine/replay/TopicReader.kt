package dev.kwal.engine.replay

import dev.kwal.Record
import dev.kwal.RecordView
import dev.kwal.WalClosedException
import dev.kwal.WalCorruptedException
import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.CompressedBody
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.format.RecordFrame
import dev.kwal.engine.storage.BlockHeaders
import dev.kwal.engine.storage.BlockIndex
import dev.kwal.engine.storage.BlockRef
import dev.kwal.engine.storage.LogLifecycle
import dev.kwal.engine.storage.Segment
import dev.kwal.engine.storage.SegmentSet
import dev.kwal.engine.storage.SegmentState
import dev.kwal.engine.storage.Topic
import kotlinx.coroutines.Job
import kotlinx.coroutines.ensureActive
import kotlinx.coroutines.flow.FlowCollector
import java.nio.ByteBuffer
import java.util.concurrent.atomic.LongAdder
import java.util.zip.CRC32C

/**
 * Reads a topic's acknowledged records from its blocks, through each segment's read-only mapping — the active
 * segment's too: a reader never looks past what was acknowledged, and acknowledged bytes are in the page cache the
 * mapping shows, whichever way they were written. Every block header and record checksum is verified before a
 * record is handed out; a failure raises [WalCorruptedException] and nothing of the bad record is returned.
 * Each record handed out owns its payload array: nothing handed out points into a mapping — but for the one view of a
 * [readViews], which points into the open block and is valid only while its action runs.
 *
 * A reader borrows one segment's mapping at a time ([Segment.borrowMapping]): the segment it is reading. It gives it
 * back when it moves on to another segment, and always when [read] ends — normally, by an exception, or cancelled
 * (while it is suspended in `emit`, it keeps the mapping: the segment's mapping stays until it resumes). So a mapping
 * is never unmapped under a reader, and a reader holds at most one. After the log has closed, a read under way maps
 * the segments it has not reached yet by path, while their files are there (else [WalClosedException]).
 *
 * The read is a cursor over one block at a time: [nextRecord] (plain, not suspending) checks and decodes one
 * frame, and [read] only hands each record to its collector, so the per-record work is a small method that
 * compiles early and nothing is allocated per record but the [Record] and its payload. [nextView] is its
 * counterpart for [readViews]: it checks a frame and points the read's one view at its payload, allocating nothing.
 *
 * One reader per collection (it holds scratch state and the cursor of the read in progress); not thread-safe.
 */
internal class TopicReader(
    private val segments: SegmentSet,
    private val lifecycle: LogLifecycle,
    /** Counts the block headers this reader reads (a block opened, a [seek] probe), if given: tests count them. */
    private val headersRead: LongAdder? = null,
) : BlockHeaders {
    private val crc = CRC32C()
    private val codec = RecordFrame.Codec()

    /** Decompresses this reader's compressed blocks, made on the first one. */
    private var decompressor: CompressedBody.Decompressor? = null

    /** The segment whose mapping this reader borrows, if any, and its duplicate of that mapping. */
    private var borrowed: Segment? = null
    private var borrowedView: ByteBuffer = EMPTY

    // The read in progress (set by [read]).
    private var topic: Topic? = null
    private var topicId = 0
    private var topicName = ""

    /** The first sequence not to return. */
    private var end = 0L

    /** The next sequence to return; frames below it (in the first block) are checked but skipped. */
    private var next = 0L

    /** The block open (or last opened), if [located]; else the next block is looked up from [next]. */
    private val ref = BlockRef()
    private var located = false

    // The open block: frames of sequences [seq, blockEndSeq) lie at [framePos, bodyEnd) of [view].
    private var view: ByteBuffer = EMPTY
    private var position = LogPosition.ZERO
    private var framePos = 0
    private var bodyEnd = 0
    private var seq = 0L
    private var blockEndSeq = 0L
    private var timestamp = 0L

    /** Emits records [from, end) of [topic] to [out], in order. [end] must not exceed what was acknowledged. */
    suspend fun read(topic: Topic, from: Long, end: Long, out: FlowCollector<Record>) {
        if (from >= end) return
        start(topic, from, end)
        try {
            while (true) out.emit(nextRecord() ?: return)
        } finally {
            giveBack()
        }
    }

    /**
     * Record [seq] of [topic], checked, or null if [seq] is not below [end] (which must not exceed what was
     * acknowledged). One index lookup — a walk of at most one run of headers from the index's sample (see
     * [BlockIndex]) — and one block read: the frames before [seq] in its block are checked, not copied.
     */
    fun readOne(topic: Topic, seq: Long, end: Long): Record? {
        if (seq >= end) return null
        start(topic, seq, end)
        try {
            return nextRecord()
        } finally {
            giveBack()
        }
    }

    /**
     * Records [from, end) of [topic], in order, at most [maxRecords], and after the first only while their payloads
     * total at most [maxBytes]. [end] must not exceed what was acknowledged.
     */
    fun readList(topic: Topic, from: Long, end: Long, maxRecords: Int, maxBytes: Int): List<Record> {
        if (from >= end) return emptyList()
        start(topic, from, end)
        try {
            val out = ArrayList<Record>(minOf(maxRecords.toLong(), end - from, LIST_CAPACITY).toInt())
            var bytes = 0L
            while (out.size < maxRecords) {
                val r = nextRecord() ?: break
                if (out.isNotEmpty() && bytes + r.payload.size > maxBytes) break
                bytes += r.payload.size
                out.add(r)
            }
            return out
        } finally {
            giveBack()
        }
    }

    /**
     * Calls [action] with a view of each record [from, end) of [topic], in order; [end] must not exceed what was
     * acknowledged. One [MappedRecordView] serves the whole read: it points into the open block (the segment's mapping,
     * or the decompressed body) and is valid until the read ends, so nothing is allocated per record. Each frame
     * is checked before [action] sees it — its bounds and magic always, its CRC unless [skipSealed] and its block lies
     * in a segment before the active one. [job], if given, is checked for cancellation at every block and every
     * [CANCEL_CHECK_EVERY] records. Whatever ends the read (the end, an exception from [action], corruption,
     * cancellation), the view is invalidated and the mapping given back.
     */
    fun readViews(topic: Topic, from: Long, end: Long, skipSealed: Boolean, job: Job?, action: (RecordView) -> Unit) {
        if (from >= end) return
        start(topic, from, end)
        val view = MappedRecordView(topic.name)
        skipSealedChecks = skipSealed
        this.job = job
        untilCancelCheck = CANCEL_CHECK_EVERY
        view.valid = true
        try {
            while (nextView(view)) action(view)
        } finally {
            view.end()
            giveBack()
        }
    }

    /**
     * The first sequence below [end] of [topic] whose block's timestamp is at least [timestamp], or [end] if none:
     * a binary search over the blocks holding records below [end], reading (and checking) one block header per
     * step. Block timestamps are non-decreasing in log order (the encoder makes them so), and every record of a
     * block carries its block's timestamp, so the answer is the first sequence of the first block at or after
     * [timestamp]. [end] must not exceed what was acknowledged, and be read before this call.
     */
    fun seek(topic: Topic, timestamp: Long, end: Long): Long {
        var retries = 0
        while (true) {
            this.topic = topic
            topicId = topic.id
            topicName = topic.name
            try {
                return topic.index.seek(timestamp, maxOf(topic.first, 0), end, this, ref)
            } catch (e: RuntimeException) {
                // Retention dropped the samples searched, or deleted a segment, meanwhile: search again, from the new
                // first sequence.
                if ((e !== SegmentGone && e !== BlockIndex.Dropped) || ++retries > MAX_RETRIES) throw e
            } finally {
                giveBack()
            }
        }
    }

    /**
     * The mapping holding block [firstSeq] of the topic being read, at [position]: its header checked, and checked to
     * be the block the index says — this topic's, from [firstSeq].
     */
    private fun indexedBlock(firstSeq: Long, position: LogPosition): ByteBuffer {
        val view = header(position)
        val at = position.offset
        if (view.getInt(at + BlockHeader.OFF_TOPIC) != topicId ||
            view.getLong(at + BlockHeader.OFF_FIRST_SEQ) != firstSeq
        ) {
            throw corrupt("block does not belong to $topicName at sequence $firstSeq", position)
        }
        return view
    }

    override fun header(position: LogPosition): ByteBuffer =
        blockView(segments[position.segmentId] ?: throw SegmentGone, position)

    /** Gives back the mapping this reader borrows, if any (after using it as [BlockHeaders] directly). */
    fun release() = giveBack()

    /** Gives back the mapping this reader borrows, if any, and forgets every view of it. */
    private fun giveBack() {
        val segment = borrowed ?: return
        borrowed = null
        borrowedView = EMPTY
        view = EMPTY
        seq = 0
        blockEndSeq = 0
        segment.returnMapping()
    }

    private fun start(topic: Topic, from: Long, end: Long) {
        this.topic = topic
        topicId = topic.id
        topicName = topic.name
        this.end = end
        next = maxOf(from, 0)
        located = false
        seq = 0
        blockEndSeq = 0
    }

    /** The next record of the read, checked, or null when the read is done. */
    private fun nextRecord(): Record? {
        while (true) {
            if (seq >= end) return null
            if (seq == blockEndSeq && !openBlock()) return null
            val s = seq
            val at = framePos
            if (s < next) {
                // Before the first record asked for: checked, not copied.
                val length = codec.check(view, at, bodyEnd, topicId, s)
                if (length < 0) throw corrupt("record $s of topic $topicName fails its checksum", position)
                framePos = at + RecordFrame.HEADER_SIZE + length
                seq = s + 1
                continue
            }
            val payload = codec.decode(view, at, bodyEnd, topicId, s)
                ?: throw corrupt("record $s of topic $topicName fails its checksum", position)
            framePos = at + RecordFrame.HEADER_SIZE + payload.size
            seq = s + 1
            next = s + 1
            return Record(topicName, s, timestamp, payload)
        }
    }

    // The view read in progress (set by [readViews]).
    private var skipSealedChecks = false
    private var job: Job? = null
    private var untilCancelCheck = 0

    /** Whether the open block's frames get their CRC checked ([readViews]). */
    private var checkFrames = true

    /**
     * Points [out] at the next record of the read, its frame checked (see [readViews]); false when the read is done.
     * Frames before the first record asked for are checked the same way, and skipped.
     */
    private fun nextView(out: MappedRecordView): Boolean {
        val job = job
        if (job != null && --untilCancelCheck <= 0) {
            untilCancelCheck = CANCEL_CHECK_EVERY
            job.ensureActive()
        }
        while (true) {
            if (seq >= end) return false
            if (seq == blockEndSeq) {
                job?.ensureActive()
                if (!openBlock()) return false
                checkFrames = !skipSealedChecks || position.segmentId >= segments.activeId
            }
            val s = seq
            val at = framePos
            val length = if (checkFrames) {
                codec.check(view, at, bodyEnd, topicId, s)
            } else {
                codec.soundLength(view, at, bodyEnd)
            }
            if (length < 0) throw corrupt("record $s of topic $topicName fails its checksum", position)
            framePos = at + RecordFrame.HEADER_SIZE + length
            seq = s + 1
            if (s < next) continue
            next = s + 1
            out.show(view, at + RecordFrame.HEADER_SIZE, length, s, timestamp)
            return true
        }
    }

    /**
     * Opens the next block of the read (the one holding [next] first, then each one after) and checks its header;
     * false when the read has no blocks left.
     *
     * A block whose segment retention has deleted is either truncated — the read then skips to the topic's first
     * sequence: records truncated while a read runs may be skipped — or was copied forward before, and the index has
     * the copy already: look it up again, once.
     */
    private fun openBlock(): Boolean {
        var moved = false
        while (true) {
            try {
                return openIndexedBlock()
            } catch (e: RuntimeException) {
                if (e !== SegmentGone && e !== BlockIndex.Dropped) throw e
                located = false
                val topic = topic!!
                val first = topic.first
                if (next < first) {
                    next = first
                } else if (moved) {
                    throw corrupt("block of ${topic.name} at sequence $next is in no segment", ref.position)
                } else {
                    moved = true
                }
            }
        }
    }

    private fun openIndexedBlock(): Boolean {
        val topic = topic!!
        val index = topic.index
        if (!located) {
            if (!index.locate(next, this, ref)) return false
            located = true
        } else {
            index.advance(ref, this)
        }
        val firstSeq = ref.firstSeq
        if (firstSeq >= end) return false
        val position = ref.position
        val view = indexedBlock(firstSeq, position)
        val at = position.offset
        this.view = view
        this.position = position
        framePos = at + BlockHeader.SIZE
        bodyEnd = framePos + view.getInt(at + BlockHeader.OFF_BODY_LENGTH)
        // The segment indexedBlock just borrowed the mapping of.
        if (BlockHeader.isCompressed(view, at)) openCompressed(view, at, position, borrowed!!)
        timestamp = view.getLong(at + BlockHeader.OFF_TIMESTAMP)
        seq = firstSeq
        blockEndSeq = firstSeq + view.getInt(at + BlockHeader.OFF_COUNT)
        return true
    }

    /**
     * Checks and decompresses the compressed block at [at] of [view], at [position] of [segment], and points the
     * cursor at its frames, in this reader's buffer; throws [WalCorruptedException] if the block is not sound.
     */
    private fun openCompressed(view: ByteBuffer, at: Int, position: LogPosition, segment: Segment) {
        val d = decompressor ?: CompressedBody.Decompressor().also { decompressor = it }
        d.decompress(view, at, position, segment.size)?.let { throw corrupt(it, position) }
        this.view = d.plain
        framePos = 0
        bodyEnd = d.plainLength
    }

    /**
     * The mapping of [segment], checked to hold a sound block header at [position] and the whole body it
     * announces. Its limit is its capacity.
     */
    private fun blockView(segment: Segment, position: LogPosition): ByteBuffer = try {
        blockViewOrThrow(segment, position)
    } catch (e: dev.kwal.WalException) {
        throw e
    } catch (e: java.io.IOException) {
        // Retention deleted it after this reader found it: its blocks were truncated, or copied elsewhere.
        if (segment.state == SegmentState.DELETED) throw SegmentGone
        // After close, a segment is mapped by path, from a file that may have been deleted since.
        if (lifecycle.isClosed ||
            e is java.nio.channels.ClosedChannelException
        ) {
            throw WalClosedException("Wal is closed, and ${segment.file.path} cannot be mapped again: $e")
        }
        throw dev.kwal.WalException("cannot map ${segment.file.path}: $e", e)
    }

    private fun blockViewOrThrow(segment: Segment, position: LogPosition): ByteBuffer {
        headersRead?.increment()
        if (borrowed !== segment) {
            giveBack()
            borrowedView = segment.borrowMapping()
            borrowed = segment
        }
        val view = borrowedView
        val at = position.offset
        view.limit(view.capacity())
        BlockHeader.check(view, at, position, crc)?.let { throw corrupt(it, position) }
        val body = view.getInt(at + BlockHeader.OFF_BODY_LENGTH)
        if (body < 0 ||
            at.toLong() + BlockHeader.SIZE + body > view.capacity()
        ) {
            throw corrupt("block body runs past its bounds", position)
        }
        return view
    }

    override fun corrupt(what: String, position: LogPosition): WalCorruptedException = WalCorruptedException(
        what,
        segments[position.segmentId]?.file?.path,
        position.offset.toLong(),
    )

    /** A block's segment was deleted by retention: see [openBlock]. */
    private object SegmentGone : RuntimeException() {
        private fun readResolve(): Any = SegmentGone
        override fun fillInStackTrace(): Throwable = this
    }

    private companion object {
        val EMPTY: ByteBuffer = ByteBuffer.allocate(0)

        /** How often [seek] starts again when retention moves the blocks it searches. */
        const val MAX_RETRIES = 100

        /** The most entries [readList] reserves up front. */
        const val LIST_CAPACITY = 1024L

        /** How many records [readViews] hands out between two checks for cancellation (besides one per block). */
        const val CANCEL_CHECK_EVERY = 1024
    }
}
