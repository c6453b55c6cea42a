package dev.kwal.engine.replay

import dev.kwal.Record
import dev.kwal.WalCorruptedException
import dev.kwal.engine.commit.LogState
import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.format.RecordFrame
import dev.kwal.engine.storage.Segment
import dev.kwal.engine.storage.Topic
import java.nio.ByteBuffer
import java.util.zip.CRC32C

/**
 * Reads a topic's acknowledged records from its blocks: sealed segments through their read-only mapping,
 * the active segment through positional reads. Every block header and record checksum is verified before a
 * record is handed out; a failure raises [WalCorruptedException] and nothing of the bad record is returned.
 *
 * One reader per collection (it holds scratch state); not thread-safe.
 */
internal class TopicReader(private val state: LogState) {
    private val crc = CRC32C()
    private val codec = RecordFrame.Codec()
    private var mappedId = -1
    private var mappedView: ByteBuffer? = null
    private var scratch: ByteBuffer = ByteBuffer.allocate(4096)

    /** Emits records [from, end) of [topic], in order. [end] must not exceed what was acknowledged. */
    suspend fun read(topic: Topic, from: Long, end: Long, emit: suspend (Record) -> Unit) {
        if (from >= end) return
        val index = topic.index
        val n = index.size
        var i = index.find(maxOf(from, 0), n)
        var next = maxOf(from, 0)
        while (i < n && next < end) {
            val firstSeq = index.firstSeq(i)
            if (firstSeq >= end) break
            val position = index.position(i)
            val segment = state.segments[position.segmentId] ?: throw corrupt("segment ${position.segmentId} is not open", position)
            val (view, at) = blockView(segment, position)
            val count = view.getInt(at + BlockHeader.OFF_COUNT)
            val bodyEnd = at + BlockHeader.SIZE + view.getInt(at + BlockHeader.OFF_BODY_LENGTH)
            if (view.getInt(at + BlockHeader.OFF_TOPIC) != topic.id || view.getLong(at + BlockHeader.OFF_FIRST_SEQ) != firstSeq) {
                throw corrupt("block does not belong to ${topic.name} at sequence $firstSeq", position)
            }
            val timestamp = view.getLong(at + BlockHeader.OFF_TIMESTAMP)
            var p = at + BlockHeader.SIZE
            var seq = firstSeq
            for (k in 0 until count) {
                if (seq >= end) break
                val length = codec.check(view, p, bodyEnd, topic.id, seq)
                if (length < 0) throw corrupt("record $seq of topic ${topic.name} fails its checksum", position)
                if (seq >= next) {
                    val payload = ByteArray(length)
                    view.get(p + RecordFrame.HEADER_SIZE, payload)
                    emit(Record(topic.name, seq, timestamp, payload))
                    next = seq + 1
                }
                p += RecordFrame.HEADER_SIZE + length
                seq++
            }
            i++
        }
    }

    /** A buffer holding the whole checked block header at [position] and its body, and the header's index in it. */
    private fun blockView(segment: Segment, position: LogPosition): Pair<ByteBuffer, Int> = try {
        blockViewOrThrow(segment, position)
    } catch (e: dev.kwal.WalException) {
        throw e
    } catch (e: java.io.IOException) {
        throw dev.kwal.WalException("cannot read ${segment.file.path} at ${position.offset}: $e", e)
    }

    private fun blockViewOrThrow(segment: Segment, position: LogPosition): Pair<ByteBuffer, Int> {
        val at: Int
        val view: ByteBuffer
        if (segment.sealed) {
            if (mappedId != segment.id) { mappedView = segment.mapping().duplicate(); mappedId = segment.id }
            view = mappedView!!
            at = position.offset
        } else {
            view = try {
                readBlock(segment, position)
            } catch (e: java.nio.channels.ClosedChannelException) {
                // The log closed under us; close() sealed and mapped every segment before closing its file.
                if (!segment.sealed) throw dev.kwal.WalClosedException()
                return blockViewOrThrow(segment, position)
            }
            at = 0
        }
        view.limit(view.capacity())
        BlockHeader.check(view, at, position, crc)?.let { throw corrupt(it, position) }
        val body = view.getInt(at + BlockHeader.OFF_BODY_LENGTH)
        if (at.toLong() + BlockHeader.SIZE + body > view.capacity()) throw corrupt("block body runs past its bounds", position)
        return view to at
    }

    private fun readBlock(segment: Segment, position: LogPosition): ByteBuffer {
        val file = segment.file
        scratch.clear()
        readFully(file, scratch, position.offset.toLong(), BlockHeader.SIZE)
        // Check the header before trusting its length to size a buffer; the body is bounded by the segment.
        BlockHeader.check(scratch, 0, position, crc)?.let { throw corrupt(it, position) }
        val body = scratch.getInt(BlockHeader.OFF_BODY_LENGTH)
        if (body < 0 || position.offset.toLong() + BlockHeader.SIZE + body > segment.size) throw corrupt("block length $body out of bounds", position)
        val total = BlockHeader.SIZE + body
        if (scratch.capacity() < total) {
            val bigger = ByteBuffer.allocate(maxOf(total, scratch.capacity() * 2))
            scratch.flip()
            bigger.put(scratch)
            scratch = bigger
        }
        readFully(file, scratch, position.offset.toLong() + scratch.position(), total)
        return scratch
    }

    /** Reads into [dst] until it holds at least [atLeast] bytes (it may read more, up to its capacity). */
    private fun readFully(file: dev.kwal.engine.io.LogFile, dst: ByteBuffer, at: Long, atLeast: Int) {
        var pos = at
        dst.limit(dst.capacity())
        while (dst.position() < atLeast) {
            val n = file.read(dst, pos)
            if (n < 0) throw WalCorruptedException("unexpected end of file", file.path, pos)
            pos += n
        }
    }

    private fun corrupt(what: String, position: LogPosition) = WalCorruptedException(
        what, state.segments[position.segmentId]?.file?.path, position.offset.toLong(),
    )
}
