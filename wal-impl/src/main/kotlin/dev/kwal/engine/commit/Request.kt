package dev.kwal.engine.commit

import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.RecordFrame
import dev.kwal.engine.storage.Topic
import kotlinx.coroutines.CancellableContinuation

/** What callers send to the writer through the request channel. */
internal sealed class Request

/**
 * One [dev.kwal.Wal.append] (a single [payload]) or [dev.kwal.Wal.appendBatch] ([batch]): the unit that is
 * written whole or not at all. The request is the only object an append allocates besides its continuation.
 */
internal class AppendRequest(
    val topicName: String,
    private val payload: ByteArray?,
    private val batch: List<ByteArray>?,
    /** Whether the caller waits for the group's sync. */
    val sync: Boolean,
) : Request() {
    val count: Int = batch?.size ?: 1

    /** Bytes of record frames this request encodes to. */
    val frameBytes: Long = if (payload != null) RecordFrame.HEADER_SIZE.toLong() + payload.size
    else batch!!.sumOf { RecordFrame.HEADER_SIZE.toLong() + it.size }

    lateinit var cont: CancellableContinuation<Long>

    /** Writer thread: the resolved topic, the first sequence assigned, the next request of the same topic in the group. */
    var topic: Topic? = null
    var firstSeq: Long = -1
    var next: AppendRequest? = null

    fun payloadAt(i: Int): ByteArray = payload ?: batch!![i]
}

/** A barrier: everything written before it is synced before [cont] (if any) resumes. */
internal class SyncRequest(val cont: CancellableContinuation<Unit>?) : Request()

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
