package dev.kwal.engine.format

import java.nio.ByteBuffer
import java.util.zip.CRC32C

/*
 * A record frame, inside a block body; frames follow one another with no padding.
 *
 *   offset size field
 *   0      4    CRC32C over: the record's topic id (4 bytes) and sequence (8 bytes), which are not stored in
 *               the frame but implied by its block, then bytes 4..11 of this frame, then the payload. A
 *               frame moved to another topic or sequence therefore fails its check.
 *   4      4    payload length
 *   8      1    magic/version byte 0xB1 (format 1)
 *   9      1    flags, zero
 *   10     2    reserved, zero
 *   12     n    payload
 */
internal object RecordFrame {
    const val HEADER_SIZE = 12
    const val MAGIC: Byte = 0xB1.toByte()

    /**
     * A reusable encoder/checker: it holds scratch space, so one instance per thread.
     */
    class Codec {
        private val crc = CRC32C()
        private val scratch = ByteArray(20)
        private val scratchBuf = ByteBuffer.wrap(scratch)

        private fun seed(topicId: Int, seq: Long, length: Int) {
            crc.reset()
            scratchBuf.putInt(0, topicId).putLong(4, seq).putInt(12, length)
            scratch[16] = MAGIC; scratch[17] = 0; scratch[18] = 0; scratch[19] = 0
            crc.update(scratch, 0, 20)
        }

        /** Encodes one frame for [payload] at [b]'s position, advancing it. */
        fun encode(b: ByteBuffer, topicId: Int, seq: Long, payload: ByteArray) {
            seed(topicId, seq, payload.size)
            crc.update(payload, 0, payload.size)
            b.putInt(crc.value.toInt()).putInt(payload.size).put(MAGIC).put(0).putShort(0).put(payload)
        }

        /**
         * Checks the frame at absolute index [at] of [b], which must end by [end]. Returns the payload length
         * if the frame is sound, or -1. [b] must be a buffer the caller owns (a duplicate): its position and
         * limit are moved, and its limit is left at its capacity.
         */
        fun check(b: ByteBuffer, at: Int, end: Int, topicId: Int, seq: Long): Int {
            b.limit(b.capacity())
            if (end - at < HEADER_SIZE) return -1
            val length = b.getInt(at + 4)
            if (length < 0 || length > end - at - HEADER_SIZE) return -1
            if (b.get(at + 8) != MAGIC || b.get(at + 9).toInt() != 0 || b.getShort(at + 10).toInt() != 0) return -1
            val stored = b.getInt(at)
            seed(topicId, seq, length)
            b.limit(at + HEADER_SIZE + length).position(at + HEADER_SIZE)
            crc.update(b)
            b.limit(b.capacity())
            return if (crc.value.toInt() == stored) length else -1
        }
    }
}
