package dev.kwal.engine.format

import dev.kwal.Compression
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.ints.shouldBeGreaterThan
import io.kotest.matchers.ints.shouldBeLessThan
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.property.Arb
import io.kotest.property.arbitrary.element
import io.kotest.property.arbitrary.int
import io.kotest.property.arbitrary.list
import io.kotest.property.arbitrary.long
import io.kotest.property.checkAll
import java.nio.ByteBuffer
import java.util.zip.CRC32C
import kotlin.random.Random

/**
 * Property tests of the compressed block body codec ([CompressedBody]): compress then check-and-decompress
 * round-trips, incompressible bodies are left alone, and every damaged or forged body is refused with a reason —
 * never an exception, never an allocation past the block's bound.
 */
class CompressedBodySpec :
    FunSpec({
        timeout = 120_000L

        val codecs = listOf(Compression.Lz4, Compression.Zstd(1), Compression.Zstd(3), Compression.Zstd(19))
        val segmentSize = 1 shl 20
        val position = LogPosition(3, 4096)
        val at = position.offset

        /** Payloads that compress: text from a small vocabulary, with numbers, like log records. */
        fun textPayload(r: Random, size: Int): ByteArray {
            val words = listOf("order", "customer", "\"status\":", "\"paid\"", "{", "}", ",", "amount", "EUR", " ")
            val sb = StringBuilder()
            while (sb.length < size) {
                sb.append(if (r.nextInt(4) == 0) r.nextInt(100_000).toString() else words[r.nextInt(words.size)])
            }
            return sb.substring(0, size).encodeToByteArray()
        }

        /**
         * A segment-sized buffer holding, at [at], a block of [payloads] of topic 7 from sequence [first], its body
         * plain; returns the buffer and the plain body length.
         */
        fun plainBlock(payloads: List<ByteArray>, first: Long): Pair<ByteBuffer, Int> {
            val b = ByteBuffer.allocate(segmentSize)
            b.position(at + BlockHeader.SIZE)
            val codec = RecordFrame.Codec()
            payloads.forEachIndexed { i, p -> codec.encode(b, 7, first + i, p) }
            return b to b.position() - at - BlockHeader.SIZE
        }

        /** Compresses the block of [b] in place with [compression]; its header written. Returns the stored body or -1. */
        fun compressBlock(b: ByteBuffer, body: Int, count: Int, first: Long, compression: Compression): Int {
            val c = CompressedBody.Compressor(compression)
            val stored = c.compress(b, at + BlockHeader.SIZE, body, position)
            val flags = if (stored >= 0) BlockHeader.FLAG_COMPRESSED else 0
            BlockHeader.write(
                b, at, position, flags, 7, first, count, if (stored >= 0) stored else body, LogPosition.ZERO, 1L,
                CRC32C(), if (stored >= 0) c.codec else 0,
            )
            return stored
        }

        fun decompress(b: ByteBuffer, d: CompressedBody.Decompressor = CompressedBody.Decompressor()): String? {
            BlockHeader.check(b, at, position, CRC32C())?.let { return "header: $it" }
            return d.decompress(b, at, position, segmentSize)
        }

        /** The frames decoded from [d]'s plain body, checked. */
        fun frames(d: CompressedBody.Decompressor, count: Int, first: Long): List<ByteArray> {
            val codec = RecordFrame.Codec()
            var p = 0
            return List(count) { i ->
                val payload = codec.decode(d.plain, p, d.plainLength, 7, first + i).shouldNotBeNull()
                p += RecordFrame.HEADER_SIZE + payload.size
                payload
            }.also { p shouldBe d.plainLength }
        }

        test("compress then decompress round-trips every frame, for every codec, and the body gets smaller") {
            checkAll(200, Arb.element(codecs), Arb.list(Arb.int(0..3000), 1..40), Arb.long(0L..1_000_000L)) {
                    compression,
                    sizes,
                    first,
                ->
                val r = Random(sizes.hashCode() + first)
                val payloads = sizes.map { textPayload(r, it) }
                val (b, body) = plainBlock(payloads, first)
                val stored = compressBlock(b, body, payloads.size, first, compression)
                if (body >= 256) stored shouldBeGreaterThan 0 // text this size always compresses
                if (stored >= 0) {
                    stored shouldBeLessThan body
                    val d = CompressedBody.Decompressor()
                    decompress(b, d).shouldBeNull()
                    d.plainLength shouldBe body
                    frames(d, payloads.size, first).zip(payloads).forEach { (got, want) -> got shouldBe want }
                }
            }
        }

        test("a body that does not get smaller is left plain, byte for byte") {
            checkAll(100, Arb.element(codecs), Arb.list(Arb.int(0..2000), 1..10)) { compression, sizes ->
                val r = Random(sizes.hashCode())
                val payloads = sizes.map { ByteArray(it).also { p -> r.nextBytes(p) } }
                val (b, body) = plainBlock(payloads, 0)
                val before = b.array().copyOf()
                CompressedBody.Compressor(compression).compress(b, at + BlockHeader.SIZE, body, position) shouldBe -1
                b.array() shouldBe before
            }
        }

        test("one decompressor reads bodies of both codecs and of growing and shrinking sizes in turn") {
            val d = CompressedBody.Decompressor()
            val r = Random(11)
            for (i in 0 until 40) {
                val compression = codecs[i % codecs.size]
                val payloads = List(1 + r.nextInt(20)) { textPayload(r, r.nextInt(1, 4000)) }
                val (b, body) = plainBlock(payloads, i.toLong())
                compressBlock(b, body, payloads.size, i.toLong(), compression) shouldBeGreaterThan 0
                decompress(b, d).shouldBeNull()
                frames(d, payloads.size, i.toLong()).zip(payloads).forEach { (got, want) -> got shouldBe want }
            }
        }

        test("every bit flipped in a compressed body is refused before it is decompressed") {
            checkAll(300, Arb.element(codecs), Arb.int(0..Int.MAX_VALUE)) { compression, pick ->
                val r = Random(pick)
                val payloads = List(1 + r.nextInt(10)) { textPayload(r, r.nextInt(300, 2000)) }
                val (b, body) = plainBlock(payloads, 0)
                val stored = compressBlock(b, body, payloads.size, 0, compression)
                stored shouldBeGreaterThan 0
                val bit = pick % (stored * 8)
                val i = at + BlockHeader.SIZE + bit / 8
                b.put(i, (b.get(i).toInt() xor (1 shl (bit % 8))).toByte())
                val reason = decompress(b).shouldNotBeNull()
                withClue(reason) {
                    // the CRC field, the length or the compressed bytes: the length may be refused by its bound first
                    (reason.contains("checksum mismatch") || reason.contains("out of bounds")) shouldBe true
                }
            }
        }

        test("a forged uncompressed length is refused, with or without a recomputed body CRC, never allocated") {
            val forged = listOf(
                Int.MAX_VALUE, Int.MIN_VALUE, -1, 0, 11, segmentSize, segmentSize - at - BlockHeader.SIZE + 1,
                segmentSize - at - BlockHeader.SIZE, 1 shl 30,
            )
            for (compression in codecs) {
                for (recompute in listOf(false, true)) {
                    for (delta in listOf(-1, 1, 1000)) {
                        checkForged(compression, recompute, null, delta)
                    }
                    for (v in forged) checkForged(compression, recompute, v, 0)
                }
            }
        }

        test("garbage compressed bytes under a valid body CRC are refused, never an exception") {
            checkAll(300, Arb.element(codecs), Arb.int(9..3000), Arb.int(12..60_000)) { compression, n, length ->
                val r = Random(n * 31 + length)
                val b = ByteBuffer.allocate(segmentSize)
                val bytes = ByteArray(n - CompressedBody.PREFIX).also { r.nextBytes(it) }
                if (r.nextBoolean() && bytes.size > 8) {
                    // a plausible start: a real frame's magic, so the decoder goes further than the first bytes
                    val real = Compressors.compress(compression, textPayload(r, 500))
                    real.copyInto(bytes, 0, 0, minOf(real.size, bytes.size / 2))
                }
                val body = at + BlockHeader.SIZE
                b.putInt(body + CompressedBody.OFF_LENGTH, length)
                b.put(body + CompressedBody.PREFIX, bytes)
                b.putInt(body, CompressedBody.crc(CRC32C(), position, length, bytes, 0, bytes.size))
                BlockHeader.write(
                    b, at, position, BlockHeader.FLAG_COMPRESSED, 7, 0, 1, n, LogPosition.ZERO, 1L, CRC32C(),
                    CompressedBody.codecOf(compression),
                )
                val d = CompressedBody.Decompressor()
                if (decompress(b, d) == null) {
                    // Garbage that happens to decompress to exactly the length claimed: its frame must still fail.
                    RecordFrame.Codec().check(d.plain, 0, d.plainLength, 7, 0) shouldBe -1
                }
            }
        }

        test("the header refuses an unknown codec, a codec on a plain block and a compressed body too short") {
            val (b, body) = plainBlock(listOf(textPayload(Random(1), 3000)), 0)
            compressBlock(b, body, 1, 0, Compression.Lz4) shouldBeGreaterThan 0
            val crc = CRC32C()
            BlockHeader.check(b, at, position, crc).shouldBeNull()
            fun with(edit: (ByteBuffer) -> Unit): String? {
                val copy = ByteBuffer.wrap(b.array().copyOf())
                edit(copy)
                copy.putInt(at + BlockHeader.OFF_CRC, BlockHeader.computeCrc(copy, at, position, crc))
                return BlockHeader.check(copy, at, position, crc)
            }
            with { it.put(at + BlockHeader.OFF_CODEC, 3.toByte()) }.shouldNotBeNull() shouldContain "codec"
            with { it.put(at + BlockHeader.OFF_CODEC, 0.toByte()) }.shouldNotBeNull() shouldContain "codec"
            with { it.put(at + BlockHeader.OFF_FLAGS, 0.toByte()) }.shouldNotBeNull() shouldContain "codec"
            with { it.put(at + BlockHeader.OFF_FLAGS, (8 or BlockHeader.FLAG_COMPRESSED).toByte()) }.shouldNotBeNull()
            with { it.putInt(at + BlockHeader.OFF_BODY_LENGTH, CompressedBody.PREFIX) }.shouldNotBeNull()
            // the flags of the group's last block keep COMPRESSED when CONTINUED is cleared
            with { it.put(at + BlockHeader.OFF_FLAGS, 3.toByte()) }.shouldBeNull()
        }
    }) {
    private companion object {
        /** [payload] compressed as a whole by [compression]'s library, for seeding garbage with a real start. */
        object Compressors {
            fun compress(compression: Compression, payload: ByteArray): ByteArray = when (compression) {
                is Compression.Zstd -> com.github.luben.zstd.Zstd.compress(payload, compression.level)
                else -> CompressedBody.lz4.fastCompressor().compress(payload)
            }
        }

        /**
         * Forges the uncompressed length of a compressed block to [value] (or its real length + [delta]), recomputing
         * the body CRC if [recompute], and checks the block is refused.
         */
        fun checkForged(compression: Compression, recompute: Boolean, value: Int?, delta: Int) {
            val segmentSize = 1 shl 20
            val position = LogPosition(3, 4096)
            val at = position.offset
            val b = ByteBuffer.allocate(segmentSize)
            b.position(at + BlockHeader.SIZE)
            val codec = RecordFrame.Codec()
            val text = "{\"order\":1,\"status\":\"paid\"}".repeat(40).encodeToByteArray()
            repeat(5) { codec.encode(b, 7, it.toLong(), text) }
            val plain = b.position() - at - BlockHeader.SIZE
            val c = CompressedBody.Compressor(compression)
            val stored = c.compress(b, at + BlockHeader.SIZE, plain, position)
            val crc = CRC32C()
            BlockHeader.write(
                b, at, position, BlockHeader.FLAG_COMPRESSED, 7, 0, 5, stored, LogPosition.ZERO, 1L, crc, c.codec,
            )
            val body = at + BlockHeader.SIZE
            val length = value ?: (plain + delta)
            b.putInt(body + CompressedBody.OFF_LENGTH, length)
            if (recompute) {
                val bytes = ByteArray(stored - CompressedBody.PREFIX).also { b.get(body + CompressedBody.PREFIX, it) }
                b.putInt(body, CompressedBody.crc(crc, position, length, bytes, 0, bytes.size))
            }
            withClue("$compression length $plain -> $length, CRC ${if (recompute) "recomputed" else "stale"}") {
                val reason = CompressedBody.Decompressor().decompress(b, at, position, segmentSize)
                reason.shouldNotBeNull()
                if (!recompute && length != plain) reason shouldContain Regex("checksum|out of bounds")
            }
        }
    }
}
