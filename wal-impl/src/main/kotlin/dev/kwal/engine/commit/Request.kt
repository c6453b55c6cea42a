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
 * The most bytes a unit of [count] frames totalling [frameBytes] takes in a segment, block headers
 * included, when blocks hold at most [blockSize] bytes. The writer rolls to a new segment before a unit
 * that might not fit; a batch over this bound for an empty segment is refused up front.
 */
internal fun unitBytesBound(frameBytes: Long, count: Int, blockSize: Int): Long {
    // A block is closed only when the next frame does not fit, so every closed block but one holds more than
    // half a block — or only one frame. Hence at most min(count, 2 * frames / blockSize + 1) + 1 headers.
    val blocks = minOf(count.toLong(), 2 * frameBytes / blockSize + 1) + 1
    return frameBytes + blocks * BlockHeader.SIZE
}
