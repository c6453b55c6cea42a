package dev.kwal.engine.format

import java.lang.invoke.MethodHandles
import java.lang.invoke.VarHandle
import java.nio.ByteBuffer
import java.nio.ByteOrder
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

    /** Bytes 8..11 of every sound frame, as a big-endian int: magic, then zero flags and reserved. */
    private const val MAGIC_WORD: Int = 0xB1 shl 24

    /**
     * A reusable encoder/checker: it holds scratch space, so one instance per thread.
     */
    class Codec {
        private val crc = CRC32C()

        /**
         * The CRC input that precedes the payload: topic id, sequence, then frame bytes 4..11 (length, magic,
         * flags, reserved). Bytes 16..19 never change.
         */
        private val seedBytes = ByteArray(SEED_SIZE).also { it[16] = MAGIC }

        /**
         * Resets the checksum and feeds it the seed of record [seq] of topic [topicId] with a [length]-byte payload.
         * Seed bytes 0..15 are written as two big-endian longs, the 8-byte words the checksum reads back right after
         * (written any other way — smaller or straddling stores, or through a ByteBuffer — it measured slower).
         */
        private fun seed(topicId: Int, seq: Long, length: Int) {
            BIG_ENDIAN_LONG.set(seedBytes, 0, (topicId.toLong() shl 32) or (seq ushr 32))
            BIG_ENDIAN_LONG.set(seedBytes, 8, (seq shl 32) or (length.toLong() and 0xFFFF_FFFFL))
            crc.reset()
            crc.update(seedBytes, 0, SEED_SIZE)
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
            val length = soundLength(b, at, end)
            if (length < 0) return -1
            seed(topicId, seq, length)
            b.limit(at + HEADER_SIZE + length).position(at + HEADER_SIZE)
            crc.update(b)
            b.limit(b.capacity())
            return if (crc.value.toInt() == b.getInt(at)) length else -1
        }

        /**
         * Checks the frame at absolute index [at] of [b], which must end by [end], and returns a fresh copy of
         * its payload if the frame is sound (record [seq] of topic [topicId], checksum matching), or null.
         *
         * The payload is copied out of [b] first and the checksum computed over the copy, so [b] is read once
         * and what is returned is exactly what was checked, even if [b]'s memory changed meanwhile. Only
         * absolute reads are used: [b]'s position and limit are not moved, and its limit must be at least [end].
         */
        fun decode(b: ByteBuffer, at: Int, end: Int, topicId: Int, seq: Long): ByteArray? {
            val length = soundLength(b, at, end)
            if (length < 0) return null
            val payload = ByteArray(length)
            b.get(at + HEADER_SIZE, payload)
            seed(topicId, seq, length)
            crc.update(payload, 0, length)
            return if (crc.value.toInt() == b.getInt(at)) payload else null
        }

        /**
         * The payload length of the frame at [at] if its header is sound and its payload ends by [end], or -1: its
         * bounds and magic, not its checksum. Absolute reads only.
         */
        fun soundLength(b: ByteBuffer, at: Int, end: Int): Int {
            if (end - at < HEADER_SIZE) return -1
            val length = b.getInt(at + 4)
            if (length < 0 || length > end - at - HEADER_SIZE) return -1
            return if (b.getInt(at + 8) == MAGIC_WORD) length else -1
        }

        private companion object {
            /** Topic id (4), sequence (8), frame bytes 4..11 (8). */
            const val SEED_SIZE = 20

            private val BIG_ENDIAN_LONG: VarHandle =
                MethodHandles.byteArrayViewVarHandle(LongArray::class.java, ByteOrder.BIG_ENDIAN)
        }
    }
}
