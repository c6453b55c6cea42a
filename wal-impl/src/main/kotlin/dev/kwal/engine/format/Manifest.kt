package dev.kwal.engine.format

import java.nio.BufferUnderflowException
import java.nio.ByteBuffer
import java.util.zip.CRC32C

/*
 * The manifest, file `kwal.manifest`: where a log starts once retention has deleted its oldest segments, and what
 * those segments held that the rest of the log still needs. A log that never deleted a segment has none.
 *
 *   offset size field
 *   0      4    magic 'KWMF' (0x4B574D46)
 *   4      2    version (1)
 *   6      2    reserved, zero
 *   8      4    body length n
 *   12     4    CRC32C of the body
 *   16     n    body:
 *
 *   body, big-endian; a string is a 2-byte length, then that many bytes of UTF-8:
 *     8    log id
 *     4    first segment id S: the log is segments S, S+1, ...; every segment below S is deleted
 *     4    topic count m; then, for topics 1..m in id order:
 *            string  name
 *            8       first sequence: records below it were truncated
 *            8       next sequence: the topic had records below it, all durable, when this was written
 *     4    consumer count; then, per consumer:
 *            string  name
 *            4       position count; then, per position: string topic, 8 position
 *
 * It is replaced whole: written to `kwal.manifest.tmp`, synced, renamed over `kwal.manifest`, the directory synced;
 * only then are segments below S deleted. The control topic's first sequence is where the consumer positions above
 * were taken: control records below it are folded into them.
 */
internal class Manifest(
    val logId: Long,
    val firstSegment: Int,
    /** Topics 1..m in id order. */
    val topics: List<TopicState>,
    /** Consumer → topic → position. */
    val consumers: Map<String, Map<String, Long>>,
) {
    class TopicState(val name: String, val first: Long, val next: Long)

    fun encode(): ByteBuffer {
        val out = java.io.ByteArrayOutputStream()
        val data = java.io.DataOutputStream(out)
        data.writeLong(logId)
        data.writeInt(firstSegment)
        data.writeInt(topics.size)
        for (t in topics) {
            writeString(data, t.name)
            data.writeLong(t.first)
            data.writeLong(t.next)
        }
        data.writeInt(consumers.size)
        for ((consumer, positions) in consumers) {
            writeString(data, consumer)
            data.writeInt(positions.size)
            for ((topic, position) in positions) {
                writeString(data, topic)
                data.writeLong(position)
            }
        }
        data.flush()
        val bytes = out.toByteArray()
        val b = ByteBuffer.allocate(HEADER + bytes.size)
        b.putInt(MAGIC).putShort(VERSION.toShort()).putShort(0).putInt(bytes.size).putInt(crcOf(bytes)).put(bytes)
        b.flip()
        return b
    }

    companion object {
        const val FILE = "kwal.manifest"
        const val TMP = "kwal.manifest.tmp"
        const val MAGIC = 0x4B574D46
        const val VERSION = 1
        private const val HEADER = 16

        private fun writeString(out: java.io.DataOutputStream, s: String) {
            val bytes = s.encodeToByteArray()
            out.writeShort(bytes.size)
            out.write(bytes)
        }

        private fun crcOf(bytes: ByteArray): Int = CRC32C().apply { update(bytes) }.value.toInt()

        /** The manifest in [bytes], or the reason they hold none. */
        fun decode(bytes: ByteArray): Result {
            if (bytes.size < HEADER) return Result.Bad("manifest shorter than its header")
            val b = ByteBuffer.wrap(bytes)
            if (b.getInt() != MAGIC) return Result.Bad("not a kwal manifest (bad magic)")
            val version = b.getShort().toInt()
            if (version != VERSION) return Result.Bad("unsupported manifest version $version")
            b.getShort()
            val length = b.getInt()
            val crc = b.getInt()
            if (length < 0 || length != bytes.size - HEADER) return Result.Bad("manifest length mismatch")
            val body = bytes.copyOfRange(HEADER, bytes.size)
            if (crcOf(body) != crc) return Result.Bad("manifest checksum mismatch")
            return try {
                val r = ByteBuffer.wrap(body)
                val logId = r.getLong()
                val first = r.getInt()
                val topics = List(count(r)) { TopicState(string(r), r.getLong(), r.getLong()) }
                val consumers = LinkedHashMap<String, Map<String, Long>>()
                repeat(count(r)) {
                    val name = string(r)
                    val positions = LinkedHashMap<String, Long>()
                    repeat(count(r)) { positions[string(r)] = r.getLong() }
                    consumers[name] = positions
                }
                if (r.hasRemaining()) return Result.Bad("manifest has trailing bytes")
                if (first < 1) return Result.Bad("manifest names first segment $first")
                Result.Ok(Manifest(logId, first, topics, consumers))
            } catch (e: BufferUnderflowException) {
                Result.Bad("manifest body cut short")
            } catch (e: CharacterCodingException) {
                Result.Bad("manifest holds a name that is not UTF-8")
            }
        }

        /** A count, which cannot exceed the bytes left (every counted item takes at least one). */
        private fun count(b: ByteBuffer): Int =
            b.getInt().also { if (it < 0 || it > b.remaining()) throw BufferUnderflowException() }

        private fun string(b: ByteBuffer): String {
            val n = b.getShort().toInt() and 0xFFFF
            if (n > b.remaining()) throw BufferUnderflowException()
            val bytes = ByteArray(n)
            b.get(bytes)
            return bytes.decodeToString(throwOnInvalidSequence = true)
        }
    }

    sealed interface Result {
        class Ok(val manifest: Manifest) : Result
        class Bad(val reason: String) : Result
    }
}
