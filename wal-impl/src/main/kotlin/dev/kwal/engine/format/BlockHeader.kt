package dev.kwal.engine.format

import java.nio.ByteBuffer
import java.util.zip.CRC32C

/*
 * A block: consecutive records of one topic, written in one group commit. A group is a sequence of blocks —
 * a registry run naming new topics, then each topic's records — laid out back to back (across a segment roll
 * if it must), and it is the unit recovery keeps or drops: every block of a group but its last has the
 * CONTINUED flag, so a group whose last block is missing or bad is dropped whole.
 *
 *   +--------------+---------------+---------------+-- ... --+
 *   | block header | record frame  | record frame  |         |   (bodyLength bytes of frames)
 *   +--------------+---------------+---------------+-- ... --+
 *
 * Block header, 48 bytes, big-endian:
 *
 *   offset size field
 *   0      4    magic 'KWBK' (0x4B57424B)
 *   4      4    header CRC32C: over bytes 8..47 of this header, then the block's own segment id (4 bytes)
 *               and offset (4 bytes). A block copied to another place therefore fails its check.
 *   8      1    format version (1)
 *   9      1    flags: bit 0 CONTINUED = this is not the last block of its group; the group goes on in the
 *               next block (in this segment, or at the start of the next segment after a roll); bit 1 COMPRESSED =
 *               the body is compressed (see CompressedBody.kt); bit 2 RELOCATED = a copy, made by retention, of a
 *               block written earlier elsewhere: same topic, sequences, records, body and timestamp, with a new
 *               header for its new place (see Relocation in FORMAT.md); other bits zero
 *   10     1    codec id: 0 in a plain block; in a COMPRESSED one 1 = LZ4, 2 = zstd
 *   11     1    reserved, zero
 *   12     4    topic id (0 = the topic registry, whose records are topic names)
 *   16     8    sequence of the block's first record in the topic
 *   24     4    record count, at least 1
 *   28     4    body length: bytes after this header: the record frames, or in a COMPRESSED block the
 *               compressed body
 *   32     8    synced-through position (segment id << 32 | offset): every byte of the log before it had
 *               been made durable when this block was written. Tells recovery a torn tail from corruption.
 *   40     8    timestamp, ms since the epoch: when the group was written
 */
internal object BlockHeader {
    const val SIZE = 48
    const val MAGIC = 0x4B57424B
    const val VERSION = 1
    const val FLAG_CONTINUED = 1
    const val FLAG_COMPRESSED = 2
    const val FLAG_RELOCATED = 4

    const val OFF_CRC = 4
    const val OFF_VERSION = 8
    const val OFF_FLAGS = 9
    const val OFF_CODEC = 10
    const val OFF_TOPIC = 12
    const val OFF_FIRST_SEQ = 16
    const val OFF_COUNT = 24
    const val OFF_BODY_LENGTH = 28
    const val OFF_SYNCED = 32
    const val OFF_TIMESTAMP = 40

    /**
     * Writes a header at absolute index [at] of [b] and returns its CRC; [b]'s position is unchanged.
     * The header is bound to [position], its place in the log.
     */
    fun write(
        b: ByteBuffer,
        at: Int,
        position: LogPosition,
        flags: Int,
        topicId: Int,
        firstSeq: Long,
        count: Int,
        bodyLength: Int,
        syncedThrough: LogPosition,
        timestamp: Long,
        crc: CRC32C,
        codec: Int = CompressedBody.CODEC_NONE,
    ) {
        b.putInt(at, MAGIC)
        b.put(at + OFF_VERSION, VERSION.toByte())
        b.put(at + OFF_FLAGS, flags.toByte())
        b.put(at + OFF_CODEC, codec.toByte())
        b.put(at + 11, 0)
        b.putInt(at + OFF_TOPIC, topicId)
        b.putLong(at + OFF_FIRST_SEQ, firstSeq)
        b.putInt(at + OFF_COUNT, count)
        b.putInt(at + OFF_BODY_LENGTH, bodyLength)
        b.putLong(at + OFF_SYNCED, syncedThrough.packed)
        b.putLong(at + OFF_TIMESTAMP, timestamp)
        b.putInt(at + OFF_CRC, computeCrc(b, at, position, crc))
    }

    /** Replaces the flags of the header at absolute index [at] of [b], which lives at [position], and its CRC. */
    fun rewriteFlags(b: ByteBuffer, at: Int, position: LogPosition, flags: Int, crc: CRC32C) {
        b.put(at + OFF_FLAGS, flags.toByte())
        b.putInt(at + OFF_CRC, computeCrc(b, at, position, crc))
    }

    /** The CRC a header at absolute index [at] of [b] should carry if it lives at [position]. */
    fun computeCrc(b: ByteBuffer, at: Int, position: LogPosition, crc: CRC32C): Int {
        crc.reset()
        val view = b.duplicate()
        view.limit(at + SIZE).position(at + OFF_VERSION)
        crc.update(view)
        // The place, as 8 big-endian bytes, byte by byte: no buffer to allocate for each header.
        updateInt(crc, position.segmentId)
        updateInt(crc, position.offset)
        return crc.value.toInt()
    }

    private fun updateInt(crc: CRC32C, v: Int) {
        crc.update(v ushr 24)
        crc.update(v ushr 16)
        crc.update(v ushr 8)
        crc.update(v)
    }

    /** Whether the header at absolute index [at] of [b] has the RELOCATED flag. */
    fun isRelocated(b: ByteBuffer, at: Int): Boolean = b.get(at + OFF_FLAGS).toInt() and FLAG_RELOCATED != 0

    /** Whether the header at absolute index [at] of [b] has the COMPRESSED flag. */
    fun isCompressed(b: ByteBuffer, at: Int): Boolean = b.get(at + OFF_FLAGS).toInt() and FLAG_COMPRESSED != 0

    /**
     * Checks the header at absolute index [at] of [b] as found at [position]: magic, CRC, version, flags, codec and
     * bounds (a compressed body's own checks are [CompressedBody.Decompressor]'s). Returns `null` if it is sound,
     * otherwise the reason it is not. Field values are not range-checked against the log's state here; callers do
     * that.
     */
    fun check(b: ByteBuffer, at: Int, position: LogPosition, crc: CRC32C): String? {
        if (b.limit() - at < SIZE) return "block header cut short"
        if (b.getInt(at) != MAGIC) return "bad block magic"
        if (b.getInt(at + OFF_CRC) != computeCrc(b, at, position, crc)) return "block header checksum mismatch"
        if (b.get(at + OFF_VERSION).toInt() != VERSION) return "unsupported block version ${b.get(at + OFF_VERSION)}"
        if (b.get(at + OFF_FLAGS).toInt() and (FLAG_CONTINUED or FLAG_COMPRESSED or FLAG_RELOCATED).inv() != 0) {
            return "unknown block flags"
        }
        if (b.getInt(at + OFF_COUNT) < 1) return "block with no records"
        val body = b.getInt(at + OFF_BODY_LENGTH)
        val codec = b.get(at + OFF_CODEC).toInt()
        if (isCompressed(b, at)) {
            if (codec != CompressedBody.CODEC_LZ4 && codec != CompressedBody.CODEC_ZSTD) return "unknown codec $codec"
            if (body <= CompressedBody.PREFIX) return "compressed block body too short"
            return null
        }
        if (codec != CompressedBody.CODEC_NONE) return "codec $codec on a plain block"
        if (body <
            RecordFrame.HEADER_SIZE * b.getInt(at + OFF_COUNT).toLong()
        ) {
            return "block body too short for its records"
        }
        return null
    }

    fun isZero(b: ByteBuffer, at: Int): Boolean {
        if (b.limit() - at < SIZE) return b.limit() == at || allZero(b, at, b.limit())
        return allZero(b, at, at + SIZE)
    }

    /** Whether bytes [from, until) of [b] are all zero. */
    fun allZero(b: ByteBuffer, from: Int, until: Int): Boolean {
        var i = from
        while (i + 8 <= until) {
            if (b.getLong(i) != 0L) return false
            i += 8
        }
        while (i < until) {
            if (b.get(i).toInt() != 0) return false
            i++
        }
        return true
    }

    /** The index of the last non-zero byte of [b] in [from, until), or -1. */
    fun lastNonZero(b: ByteBuffer, from: Int, until: Int): Int {
        var i = until
        while (i - 8 >= from && b.getLong(i - 8) == 0L) i -= 8
        while (i > from) {
            if (b.get(i - 1).toInt() != 0) return i - 1
            i--
        }
        return -1
    }
}
