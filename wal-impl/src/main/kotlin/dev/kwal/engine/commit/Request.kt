package dev.kwal.engine.commit

import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.RecordFrame
import dev.kwal.engine.storage.Topic
import kotlinx.coroutines.CancellableContinuation
import kotlin.coroutines.resume
import kotlin.coroutines.resumeWithException

/**
 * What callers send to the writer through the [RequestQueue]. A request knows how to tell its caller the outcome:
 * [complete] once what it asked for is done (written and, if it asked, synced), or [fail]. Exactly one of them is
 * called, once, by whichever thread finishes the request's group (see [Completer]).
 */
internal sealed class Request {
    /** What this request counts for against [dev.kwal.WalOptions.maxQueuedBytes]. */
    abstract val queuedBytes: Long

    /** Whether the caller gave up (was cancelled) while the request was queued: then it is never written. */
    abstract val abandoned: Boolean

    /** Tells the caller its request is done. */
    abstract fun complete()

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
 *
 * A queued request has a continuation ([cont]), which [complete] resumes with [firstSeq]. A request its caller writes
 * itself ([InlineAppender]) has none: that caller reads the outcome where it writes it, and [complete] and [fail] do
 * nothing.
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
    val frameBytes: Long = if (payload != null) {
        RecordFrame.HEADER_SIZE.toLong() + payload.size
    } else {
        batch!!.sumOf { RecordFrame.HEADER_SIZE.toLong() + it.size }
    }

    override val queuedBytes: Long get() = frameBytes + OVERHEAD

    /** The suspended caller, set before the request is queued; null while the caller writes it itself. */
    var cont: CancellableContinuation<Long>? = null

    /** The first sequence assigned, by the writer. */
    var firstSeq: Long = -1

    /** The next append to the same topic in the group being built (see [Group.runHead]). */
    var next: AppendRequest? = null

    override val abandoned: Boolean get() = cont?.isActive == false

    /**
     * Called with [firstSeq] once the request is acknowledged, before its caller is resumed, on the thread finishing
     * its group — in log order, whatever becomes of the caller (it may be cancelled meanwhile). For the engine's own
     * records (control records), never for a user's: it must be quick and must not throw.
     */
    var onAcked: ((Long) -> Unit)? = null

    override fun complete() {
        onAcked?.invoke(firstSeq)
        cont?.resume(firstSeq)
    }

    /** As [complete], but the caller is resumed through [resumer], in bulk with others (see [Resumer]). */
    fun complete(resumer: Resumer) {
        onAcked?.invoke(firstSeq)
        cont?.let { resumer.resume(it, firstSeq) }
    }

    override fun fail(e: Throwable) {
        cont?.resumeWithException(e)
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

/**
 * Retention's request to copy [blocks] forward (see [Relocator]): written as relocated copies at the end of the log,
 * after the appends of its group; once acknowledged, each topic's index points at the copies, and [cont] resumes.
 * It counts nothing against the queue's bound: retention sends one at a time.
 */
internal class RelocateRequest(
    val blocks: List<RelocatedBlock>,
    /** Resumed with this request (its [copied] counts) once the copies are acknowledged, or with the error. */
    private val cont: CancellableContinuation<RelocateRequest>,
) : Request() {
    /** The bytes the copies take. */
    val bytes: Long = blocks.sumOf { it.length.toLong() }

    /** How many of [blocks] were copied, and their bytes (the encoder leaves one where it is if it cannot). */
    var copied = 0
    var copiedBytes = 0L

    override val queuedBytes: Long get() = 0

    override val abandoned: Boolean get() = false

    override fun complete() {
        cont.resume(this)
    }

    override fun fail(e: Throwable) {
        cont.resumeWithException(e)
    }
}

/** A barrier: everything written before it is synced before [cont] (if any) resumes. */
internal class SyncRequest(val cont: CancellableContinuation<Unit>?) : Request() {
    override val queuedBytes: Long get() = 0

    override val abandoned: Boolean get() = false

    override fun complete() {
        cont?.resume(Unit)
    }

    override fun fail(e: Throwable) {
        cont?.resumeWithException(e)
    }
}

/**
 * The bytes a unit of [count] frames, with payloads of [payloadSize]`(0 until count)` bytes, takes in a segment
 * when it starts a new block: its frames plus one header per block, the blocks cut as [GroupEncoder] cuts them — a
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
