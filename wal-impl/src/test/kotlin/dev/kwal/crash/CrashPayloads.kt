package dev.kwal.crash

import java.nio.ByteBuffer
import java.util.zip.CRC32
import kotlin.random.Random

/**
 * Self-describing payloads for the crash tests, reproducible from (seed, writer, n):
 *
 * `[topic length: 1][topic: UTF-8][seed: 8][writer: 4][n: 8][filler: Random(seed, writer, n)][CRC32 of all before: 4]`
 *
 * The filler is random bytes for even n and, for odd n, words of a small vocabulary drawn from the same Random: text
 * that compresses, so that a log written with compression on holds both compressed and plain blocks.
 *
 * The trailing CRC lets the parent check every record it finds, acknowledged or not; the embedded topic
 * catches a record that was replayed under the wrong topic, and the filler is regenerated and compared.
 */
object CrashPayloads {
    private const val FIXED = 1 + 8 + 4 + 8 + 4

    fun minSize(topic: String): Int = FIXED + topic.encodeToByteArray().size

    fun make(topic: String, seed: Long, writer: Int, n: Long, size: Int): ByteArray {
        val t = topic.encodeToByteArray()
        require(t.size < 256)
        val total = maxOf(size, FIXED + t.size)
        val buf = ByteBuffer.allocate(total)
        buf.put(t.size.toByte()).put(t).putLong(seed).putInt(writer).putLong(n)
        val filler = ByteArray(total - buf.position() - 4)
        fill(filler, seed, writer, n)
        buf.put(filler)
        buf.putInt(crc(buf.array(), 0, total - 4).toInt())
        return buf.array()
    }

    /** Returns why [payload] is not a valid payload of [topic], or null if it is. */
    fun problem(topic: String, payload: ByteArray): String? {
        if (payload.size < FIXED + 1) return "too short (${payload.size} bytes)"
        val buf = ByteBuffer.wrap(payload)
        val stored = buf.getInt(payload.size - 4).toLong() and 0xffffffffL
        val actual = crc(payload, 0, payload.size - 4)
        if (stored != actual) return "embedded CRC %08x != computed %08x".format(stored, actual)
        val tl = buf.get().toInt() and 0xff
        if (FIXED + tl > payload.size) return "bad topic length $tl"
        val t = ByteArray(tl).also { buf.get(it) }.decodeToString()
        if (t != topic) return "payload belongs to topic '$t'"
        val seed = buf.long
        val writer = buf.int
        val n = buf.long
        val filler = ByteArray(payload.size - buf.position() - 4).also { buf.get(it) }
        val expected = ByteArray(filler.size).also { fill(it, seed, writer, n) }
        if (!filler.contentEquals(expected)) return "filler differs from Random(seed=$seed, writer=$writer, n=$n)"
        return null
    }

    /** The (seed, writer, n) a payload was made from; call only on a payload [problem] accepts. */
    data class Origin(val seed: Long, val writer: Int, val n: Long) {
        /** The writer without its batch bits (see [batchWriter]). */
        val base: Int get() = if (writer < 0) writer else writer and 0x1ff

        /** The payload's index in its batch (0 for a single append). */
        val batchIndex: Int get() = if (writer < 0) 0 else (writer ushr 9) and 0x7ff

        /** The size of its batch, or 0 for a single append (or a writer that does not mark batches). */
        val batchSize: Int get() = if (writer < 0) 0 else (writer ushr 20) and 0x7ff
    }

    fun origin(payload: ByteArray): Origin {
        val buf = ByteBuffer.wrap(payload)
        val tl = buf.get().toInt() and 0xff
        buf.position(1 + tl)
        return Origin(buf.long, buf.int, buf.long)
    }

    /**
     * The writer field of payload [index] of a batch of [size] (at most [MAX_BATCH]) made by writer [w] (0..511): the
     * batch is written into the payloads, so a parent can check that a batch is present whole or not at all.
     */
    fun batchWriter(w: Int, index: Int, size: Int): Int {
        require(w in 0..0x1ff && index in 0 until size && size in 1..MAX_BATCH)
        return w or (index shl 9) or (size shl 20)
    }

    /** The largest batch [batchWriter] can mark. */
    const val MAX_BATCH = 0x7ff

    fun crc(bytes: ByteArray, off: Int = 0, len: Int = bytes.size): Long =
        CRC32().apply { update(bytes, off, len) }.value

    private fun fillerRandom(seed: Long, writer: Int, n: Long) =
        Random(seed * 1_000_003L xor (writer.toLong() shl 40) xor n)

    private val words = listOf(
        "{\"order\":", "\"status\":\"paid\"", ",", "\"amount\":", "12.50", "\"EUR\"", "}", " ", "customer", "42",
    ).map { it.encodeToByteArray() }

    /** Fills [out] with the filler of (seed, writer, n): random bytes for even n, compressible text for odd n. */
    private fun fill(out: ByteArray, seed: Long, writer: Int, n: Long) {
        val r = fillerRandom(seed, writer, n)
        if (n % 2 == 0L) {
            r.nextBytes(out)
            return
        }
        var i = 0
        while (i < out.size) {
            val w = words[r.nextInt(words.size)]
            val k = minOf(w.size, out.size - i)
            w.copyInto(out, i, 0, k)
            i += k
        }
    }
}
