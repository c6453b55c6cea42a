package dev.kwal.engine.format

import com.github.luben.zstd.Zstd
import com.github.luben.zstd.ZstdCompressCtx
import com.github.luben.zstd.ZstdDecompressCtx
import dev.kwal.Compression
import net.jpountz.lz4.LZ4Factory
import java.lang.ref.Cleaner
import java.nio.ByteBuffer
import java.util.zip.CRC32C

/*
 * The body of a compressed block: a block whose header has the COMPRESSED flag (bit 1 of byte 9) and a codec id
 * (byte 10: 1 = LZ4, 2 = zstd; a plain block has 0 there). Its body length (header offset 28) counts the bytes
 * stored, laid out, big-endian, as:
 *
 *   offset size field
 *   0      4    body CRC32C over: the block's own segment id (4 bytes) and offset (4 bytes), as the header's CRC, then
 *               bytes 4..(body length - 1) of this body (the uncompressed length and the compressed bytes).
 *   4      4    uncompressed length U: the bytes of record frames the compressed bytes decompress to. Sound only if
 *               12 x record count <= U <= segment size - block offset - 48: the writer compresses a block laid out
 *               plain at its place, which fit its segment, so no sound block claims more (and nothing larger is
 *               ever allocated for a forged U).
 *   8      n    compressed bytes, n = body length - 8 >= 1: an LZ4 block (codec 1) or one zstd frame (codec 2)
 *               holding exactly U bytes: the record frames of a plain body, which keep their own CRCs.
 *
 * Reading checks, in order: U within its bounds, the body CRC (over a copy of the bytes, which is what is then
 * decompressed), decompression into at most U bytes with a decoder that never writes past its destination and that
 * yields exactly U bytes; then each frame as in a plain block. The writer keeps a compressed body only when it is
 * smaller than the plain one (8 + n < U), so a block never takes more room compressed than plain, and compresses
 * only user topics' blocks (a reader accepts a compressed registry block all the same).
 */
internal object CompressedBody {
    /** Bytes before the compressed bytes: body CRC, uncompressed length. */
    const val PREFIX = 8
    const val OFF_LENGTH = 4

    /** The codec id (header byte 10) of a plain block. */
    const val CODEC_NONE = 0
    const val CODEC_LZ4 = 1
    const val CODEC_ZSTD = 2

    /** The codec id [compression] writes. */
    fun codecOf(compression: Compression): Int = when (compression) {
        Compression.None -> CODEC_NONE
        Compression.Lz4 -> CODEC_LZ4
        is Compression.Zstd -> CODEC_ZSTD
    }

    /**
     * The body CRC of a compressed body at [position] whose uncompressed length is [length] and whose compressed bytes
     * are [bytes]`[from, from + n)`.
     */
    fun crc(crc: CRC32C, position: LogPosition, length: Int, bytes: ByteArray, from: Int, n: Int): Int {
        crc.reset()
        updateInt(crc, position.segmentId)
        updateInt(crc, position.offset)
        updateInt(crc, length)
        crc.update(bytes, from, n)
        return crc.value.toInt()
    }

    private fun updateInt(crc: CRC32C, v: Int) {
        crc.update(v ushr 24)
        crc.update(v ushr 16)
        crc.update(v ushr 8)
        crc.update(v)
    }

    /** Closes native codec contexts once their holder is unreachable: the holders have no close of their own. */
    internal val cleaner: Cleaner = Cleaner.create()

    internal val lz4: LZ4Factory = LZ4Factory.fastestInstance()

    /** A zstd context and the action that frees it; the action must not refer to the holder. */
    private class Freer(private val ctx: AutoCloseable) : Runnable {
        override fun run() = ctx.close()
    }

    /**
     * Compresses block bodies in place for the writer, with [compression] (not [Compression.None]). Holds scratch
     * space and, for zstd, a native context (freed once this is unreachable): one per writer, not thread-safe.
     */
    class Compressor(compression: Compression) {
        val codec = codecOf(compression)
        private val lz4 = if (codec == CODEC_LZ4) CompressedBody.lz4.fastCompressor() else null
        private val zstd: ZstdCompressCtx? = if (compression is Compression.Zstd) {
            ZstdCompressCtx().setLevel(compression.level).setChecksum(false).setContentSize(true).also {
                cleaner.register(this, Freer(it))
            }
        } else {
            null
        }
        private val crc = CRC32C()
        private var plain = ByteArray(0)
        private var packed = ByteArray(0)

        init {
            require(codec != CODEC_NONE) { "no compressor for $compression" }
        }

        /**
         * Compresses the [length]-byte plain body at index [at] of [b], the body of the block at [position], and if
         * that is smaller, replaces it there with the compressed body (prefix and compressed bytes) and returns its
         * length; otherwise leaves [b] unchanged and returns -1. Absolute accesses only: [b]'s position is unchanged.
         */
        fun compress(b: ByteBuffer, at: Int, length: Int, position: LogPosition): Int {
            if (plain.size < length) plain = ByteArray(length)
            b.get(at, plain, 0, length)
            val bound =
                if (lz4 != null) lz4.maxCompressedLength(length) else Zstd.compressBound(length.toLong()).toInt()
            if (packed.size < bound) packed = ByteArray(bound)
            val n = if (lz4 != null) {
                lz4.compress(plain, 0, length, packed, 0, bound)
            } else {
                zstd!!.compressByteArray(packed, 0, bound, plain, 0, length)
            }
            if (PREFIX + n >= length) return -1
            b.putInt(at, crc(crc, position, length, packed, 0, n))
            b.putInt(at + OFF_LENGTH, length)
            b.put(at + PREFIX, packed, 0, n)
            return PREFIX + n
        }
    }

    /**
     * Checks and decompresses compressed bodies, for a reader or recovery: one per reader, not thread-safe. Holds the
     * last body it decompressed in [plain], frames at `[0, plainLength)`, until the next call, and, once it has read a
     * zstd block, a native context (freed once this is unreachable).
     */
    class Decompressor {
        private val crc = CRC32C()
        private var packed = ByteArray(0)
        private var plainBytes = ByteArray(0)
        private var zstd: ZstdDecompressCtx? = null

        /** The frames of the last body decompressed, at `[0, plainLength)`. */
        var plain: ByteBuffer = ByteBuffer.wrap(plainBytes)
            private set
        var plainLength = 0
            private set

        /**
         * Checks and decompresses the body of the compressed block at index [at] of [b] (a segment's mapping, or a
         * view of it, whose header passed [BlockHeader.check] and whose body lies within [b]), the block at
         * [position] of a segment of [segmentSize] bytes. Returns null if it is sound — its frames are then in
         * [plain] — or the reason it is not. Reads [b] with absolute accesses only, each byte once.
         */
        fun decompress(b: ByteBuffer, at: Int, position: LogPosition, segmentSize: Int): String? {
            val codec = b.get(at + BlockHeader.OFF_CODEC).toInt()
            val count = b.getInt(at + BlockHeader.OFF_COUNT)
            val body = at + BlockHeader.SIZE
            val n = b.getInt(at + BlockHeader.OFF_BODY_LENGTH) - PREFIX
            val length = b.getInt(body + OFF_LENGTH)
            val max = segmentSize.toLong() - at - BlockHeader.SIZE
            if (length < RecordFrame.HEADER_SIZE.toLong() * count || length > max) {
                return "compressed block claims $length bytes of records, out of bounds"
            }
            if (packed.size < n) packed = ByteArray(n)
            b.get(body + PREFIX, packed, 0, n)
            if (crc(crc, position, length, packed, 0, n) != b.getInt(body)) return "compressed block checksum mismatch"
            if (plainBytes.size < length) {
                plainBytes = ByteArray(length)
                plain = ByteBuffer.wrap(plainBytes)
            }
            val got = try {
                when (codec) {
                    CODEC_LZ4 -> lz4.safeDecompressor().decompress(packed, 0, n, plainBytes, 0, length)
                    CODEC_ZSTD -> zstdContext().decompressByteArray(plainBytes, 0, length, packed, 0, n)
                    else -> return "unknown codec $codec"
                }
            } catch (e: RuntimeException) {
                // LZ4Exception, ZstdException: malformed input, or output that would not fit in `length` bytes.
                return "compressed block does not decompress (${e.message})"
            }
            if (got != length) return "compressed block decompresses to $got bytes, not $length"
            plainLength = length
            return null
        }

        private fun zstdContext(): ZstdDecompressCtx = zstd ?: ZstdDecompressCtx().also {
            cleaner.register(this, Freer(it))
            zstd = it
        }
    }
}
