package dev.kwal.engine.commit

import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.CompressedBody
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.format.RecordFrame
import dev.kwal.engine.storage.Topic
import java.nio.ByteBuffer
import java.util.zip.CRC32C

/** A block retention wants copied forward: [topic]'s block whose first record is [firstSeq], of [length] bytes. */
internal class RelocatedBlock(
    val topic: Topic,
    val firstSeq: Long,
    /** Where it is now. */
    val position: LogPosition,
    /** Its bytes, header included. */
    val length: Int,
)

/**
 * Copies a block to a new place for retention (see `FORMAT.md`, "Relocation"): verified first, where it is, as a
 * reader would (header, compressed body, every frame); then copied byte for byte with a new header — the same topic,
 * sequences, count, body length, codec and timestamp, the flags RELOCATED and CONTINUED added, today's synced-through
 * position — whose CRC binds it to its new place, and for a compressed block a body CRC recomputed for that place.
 * The frames are not touched: their CRCs bind them to topic and sequence, not to a place.
 *
 * Not thread-safe: the [GroupEncoder]'s, under the writer's lock.
 */
internal class Relocator {
    private val crc = CRC32C()
    private val codec = RecordFrame.Codec()
    private val decompressor = CompressedBody.Decompressor()
    private var scratch = ByteArray(0)

    /**
     * Why block [b] cannot be copied from [view] (its segment's mapping, of a segment of [segmentSize] bytes), or
     * null if it is sound and is the block the index says.
     */
    fun problem(view: ByteBuffer, b: RelocatedBlock, segmentSize: Int): String? {
        val at = b.position.offset
        val v = view.duplicate().limit(view.capacity())
        BlockHeader.check(v, at, b.position, crc)?.let { return it }
        if (v.getInt(at + BlockHeader.OFF_TOPIC) != b.topic.id ||
            v.getLong(at + BlockHeader.OFF_FIRST_SEQ) != b.firstSeq
        ) {
            return "block is not ${b.topic}'s at sequence ${b.firstSeq}"
        }
        val body = v.getInt(at + BlockHeader.OFF_BODY_LENGTH)
        if (BlockHeader.SIZE + body != b.length || at.toLong() + b.length > v.capacity()) return "block length changed"
        var frames = v
        var from = at + BlockHeader.SIZE
        var end = from + body
        if (BlockHeader.isCompressed(v, at)) {
            decompressor.decompress(v, at, b.position, segmentSize)?.let { return it }
            frames = decompressor.plain
            from = 0
            end = decompressor.plainLength
        }
        var p = from
        for (i in 0 until v.getInt(at + BlockHeader.OFF_COUNT)) {
            val len = codec.check(frames, p, end, b.topic.id, b.firstSeq + i)
            if (len < 0) return "record ${b.firstSeq + i} fails its checksum"
            p += RecordFrame.HEADER_SIZE + len
        }
        return if (p != end) "block body length does not match its records" else null
    }

    /**
     * The bytes a copy of the block at [at] of [view] needs from its new place to the end of its segment: its length,
     * or for a compressed block its header plus its uncompressed length if that is more — a reader bounds the
     * uncompressed length by the room after the block's place (see `CompressedBody`).
     */
    fun room(view: ByteBuffer, at: Int): Long {
        val body = view.getInt(at + BlockHeader.OFF_BODY_LENGTH)
        if (!BlockHeader.isCompressed(view, at)) return BlockHeader.SIZE.toLong() + body
        val plain = view.getInt(at + BlockHeader.SIZE + CompressedBody.OFF_LENGTH)
        return BlockHeader.SIZE.toLong() + maxOf(body, plain)
    }

    /**
     * Copies block [b] from [view] into [out] at index [to], re-headered for [position] with [syncedThrough] (see the
     * class comment). [out] must have room for [RelocatedBlock.length] bytes at [to]; its position is unchanged.
     */
    fun copy(
        view: ByteBuffer,
        b: RelocatedBlock,
        out: ByteBuffer,
        to: Int,
        position: LogPosition,
        syncedThrough: LogPosition,
    ) {
        out.put(to, view.duplicate().limit(view.capacity()), b.position.offset, b.length)
        val flags = out.get(to + BlockHeader.OFF_FLAGS).toInt() or
            BlockHeader.FLAG_RELOCATED or BlockHeader.FLAG_CONTINUED
        if (BlockHeader.isCompressed(out, to)) {
            val body = to + BlockHeader.SIZE
            val n = b.length - BlockHeader.SIZE - CompressedBody.PREFIX
            if (scratch.size < n) scratch = ByteArray(n)
            out.get(body + CompressedBody.PREFIX, scratch, 0, n)
            val plain = out.getInt(body + CompressedBody.OFF_LENGTH)
            out.putInt(body, CompressedBody.crc(crc, position, plain, scratch, 0, n))
        }
        BlockHeader.write(
            out, to, position, flags, b.topic.id, b.firstSeq, out.getInt(to + BlockHeader.OFF_COUNT),
            b.length - BlockHeader.SIZE, syncedThrough,
            out.getLong(to + BlockHeader.OFF_TIMESTAMP), crc, out.get(to + BlockHeader.OFF_CODEC).toInt(),
        )
    }
}
