package dev.kwal.engine.commit

import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.RecordFrame
import dev.kwal.engine.storage.Topic
import kotlinx.coroutines.CancellableContinuation
import kotlin.coroutines.resume
import kotlin.coroutines.resumeWithException

/** What callers send to the writer through the [RequestQueue]. */
internal sealed class Request {
    /** What this request counts for against [dev.kwal.WalOptions.maxQueuedBytes]. */
    abstract val queuedBytes: Long

    /** Tells the caller its request failed with [e] (and nothing of it is stored). */
    abstract fun fail(e: Throwable)

    internal companion object {
        /** Memory a queued request holds besides its payloads: the request, its continuation, the queue's node. */
        const val OVERHEAD = 256L
    }
}

/**
 * One [dev.kwal.Wal.append] (a single [payload]) or [dev.kwal.Wal.appendBatch] ([batch]): the unit that is
 * written whole or not at all. The request is the only object an append allocates besides its continuation.
 */
internal class AppendRequest(
    val topicName: String,
    /** The topic as the caller found it registered, or null: saves the writer a lookup (see [Topic.registered]). */
    var topic: Topic?,
    private val payload: ByteArray?,
    private val batch: List<ByteArray>?,
    /** Whether the caller waits for the group's sync. */
    val sync: Boolean,
) : Request() {
    val count: Int = batch?.size ?: 1

    /** Bytes of record frames this request encodes to. */
    val frameBytes: Long = if (payload != null) RecordFrame.HEADER_SIZE.toLong() + payload.size
    else batch!!.sumOf { RecordFrame.HEADER_SIZE.toLong() + it.size }

    override val queuedBytes: Long get() = frameBytes + OVERHEAD

    /** The suspended caller; null while the caller writes this request itself ([GroupWriter.writeInline]). */
    var cont: CancellableContinuation<Long>? = null

    /** Set instead of resuming [cont] when it is null: the error the inline caller throws. */
    var error: Throwable? = null
        private set

    /** Writer: the first sequence assigned, the next request of the same topic in the group. */
    var firstSeq: Long = -1
    var next: AppendRequest? = null

    /** After an inline write: the first sequence, or the error the write failed with. */
    fun inlineResult(): Long {
        error?.let { throw it }
        return firstSeq
    }

    /** Whether the caller gave up (was cancelled) while the request was queued. */
    val abandoned: Boolean get() = cont?.isActive == false

    /** Tells the caller its request is acknowledged, at [firstSeq]. */
    fun succeed() {
        cont?.resume(firstSeq)
    }

    /** Tells the caller its request failed with [e] and nothing of it is stored. */
    override fun fail(e: Throwable) {
        val c = cont
        if (c != null) c.resumeWithException(e) else error = e
    }

    fun payloadAt(i: Int): ByteArray = payload ?: batch!![i]

    /**
     * The most bytes this request takes in a segment, block headers included, in blocks of [blockSize] (the log's,
     * the same on every call): see [unitBytesBound]. A single append's is one block; a batch's is counted frame by
     * frame, once: first by its caller, in [dev.kwal.engine.KwalEngine.appendBatch]'s size check, before the
     * request is handed to the writer.
     */
    fun bytesBound(blockSize: Int): Long {
        if (payload != null) return BlockHeader.SIZE.toLong() + frameBytes
        var b = batchBound
        if (b < 0) {
            val list = batch!!
            b = unitBytesBound(list.size, blockSize) { list[it].size }
            batchBound = b
        }
        return b
    }

    private var batchBound = -1L
}

/** A barrier: everything written before it is synced before [cont] (if any) resumes. */
internal class SyncRequest(val cont: CancellableContinuation<Unit>?) : Request() {
    override val queuedBytes: Long get() = 0

    fun succeed() {
        cont?.resume(Unit)
    }

    override fun fail(e: Throwable) {
        cont?.resumeWithException(e)
    }
}

/**
 * The bytes a unit of [count] frames, with payloads of [payloadSize]`(0 until count)` bytes, takes in a segment
 * when it starts a new block: its frames plus one header per block, the blocks cut as [GroupWriter] cuts them — a
 * block is closed when the next frame would make it larger than [blockSize], header included.
 *
 * Exact for a unit that starts a block: every unit after a roll, and a batch checked against an empty segment.
 * An upper bound for a unit that continues a block already open in its run: that layout is "next fit" too, and a
 * block that starts at a later frame ends at the same frame or a later one; so, by induction, the k-th block the
 * unit opens ends no earlier than the k-th block of the fresh layout, and the unit opens no more blocks (writes no
 * more headers) than that.
 *
 * No shortcut from the frame total will do: blocks of one frame just over half a block hold barely half a block
 * each, header included, so the headers outnumber any count derived from the total.
 */
internal inline fun unitBytesBound(count: Int, blockSize: Int, payloadSize: (Int) -> Int): Long {
    var bytes = 0L
    var used = blockSize.toLong() // no block open: the first frame opens one
    for (i in 0 until count) {
        val frame = RecordFrame.HEADER_SIZE.toLong() + payloadSize(i)
        if (used + frame > blockSize) {
            bytes += BlockHeader.SIZE
            used = BlockHeader.SIZE.toLong()
        }
        used += frame
        bytes += frame
    }
    return bytes
}
