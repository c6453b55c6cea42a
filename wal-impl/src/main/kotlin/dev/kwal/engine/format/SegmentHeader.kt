package dev.kwal.engine.format

import java.nio.ByteBuffer
import java.util.zip.CRC32C

/*
 * A segment file: a fixed-size file, pre-written with zeros, named seg-NNNNNNNNNN.kwal (decimal id).
 *
 *   0       64                                                              segmentSize
 *   +-------+--------+--------+--------+-----  ...  -----+------------------+
 *   | header| block  | block  | block  |                 | zeros (unused)   |
 *   +-------+--------+--------+--------+-----  ...  -----+------------------+
 *
 * Segment header, 64 bytes, big-endian:
 *
 *   offset size field
 *   0      4    magic 'KWSG' (0x4B575347)
 *   4      2    format version (1)
 *   6      2    header length (64)
 *   8      4    segment id (1, 2, 3, ...: consecutive)
 *   12     4    segment size in bytes, as created (recovery scans min(file length, this))
 *   16     8    log id: random, chosen when the log is created; the same in every segment
 *   24     8    creation time, ms since the epoch
 *   32     28   reserved, zero
 *   60     4    CRC32C of bytes 0..59
 */
internal class SegmentHeader(val segmentId: Int, val segmentSize: Int, val logId: Long, val createdMillis: Long) {

    fun encode(): ByteBuffer {
        val b = ByteBuffer.allocate(SIZE)
        b.putInt(MAGIC).putShort(VERSION.toShort()).putShort(SIZE.toShort())
        b.putInt(segmentId).putInt(segmentSize).putLong(logId).putLong(createdMillis)
        val crc = CRC32C()
        crc.update(b.array(), 0, CRC_OFFSET)
        b.putInt(CRC_OFFSET, crc.value.toInt())
        b.position(0).limit(SIZE)
        return b
    }

    companion object {
        const val SIZE = 64
        const val MAGIC = 0x4B575347
        const val VERSION = 1
        private const val CRC_OFFSET = 60

        /** Decodes the header in [b] (64 bytes from its position), or returns why it is not one. */
        fun decode(b: ByteBuffer): Result {
            if (b.remaining() < SIZE) return Result.Bad("file shorter than a segment header")
            val p = b.position()
            val bytes = ByteArray(SIZE)
            b.duplicate().get(bytes)
            val w = ByteBuffer.wrap(bytes)
            if (w.getInt(0) != MAGIC) return Result.Bad("not a kwal segment (bad magic)")
            val crc = CRC32C()
            crc.update(bytes, 0, CRC_OFFSET)
            if (w.getInt(CRC_OFFSET) != crc.value.toInt()) return Result.Bad("segment header checksum mismatch")
            val version = w.getShort(4).toInt()
            if (version != VERSION) return Result.Bad("unsupported segment format version $version")
            if (w.getShort(6).toInt() != SIZE) return Result.Bad("unexpected segment header length")
            check(p == b.position())
            return Result.Ok(SegmentHeader(w.getInt(8), w.getInt(12), w.getLong(16), w.getLong(24)))
        }
    }

    sealed interface Result {
        class Ok(val header: SegmentHeader) : Result
        class Bad(val reason: String) : Result
    }
}
