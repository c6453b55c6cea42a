package dev.kwal.engine.format

import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.comparables.shouldBeGreaterThan
import io.kotest.matchers.comparables.shouldBeLessThan
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.shouldNotBe
import io.kotest.matchers.types.shouldBeInstanceOf
import io.kotest.matchers.types.shouldNotBeSameInstanceAs
import io.kotest.property.Arb
import io.kotest.property.arbitrary.bind
import io.kotest.property.arbitrary.boolean
import io.kotest.property.arbitrary.byte
import io.kotest.property.arbitrary.byteArray
import io.kotest.property.arbitrary.int
import io.kotest.property.arbitrary.long
import io.kotest.property.arbitrary.nonNegativeInt
import io.kotest.property.checkAll
import java.nio.ByteBuffer
import java.util.zip.CRC32C

/** Property tests of the on-disk codecs: record frames, block headers, segment headers and log positions. */
class FormatCodecSpec :
    FunSpec({
        timeout = 60_000L

        val payloads = Arb.byteArray(Arb.int(0..300), Arb.byte())
        val prefixes = Arb.int(0..16)

        /**
         * Encodes one frame after [prefix] bytes of junk, followed by 8 bytes of junk; returns the buffer and the
         * frame's end.
         */
        fun encodeFrame(prefix: Int, topic: Int, seq: Long, payload: ByteArray): Pair<ByteBuffer, Int> {
            val b = ByteBuffer.allocate(prefix + RecordFrame.HEADER_SIZE + payload.size + 8)
            repeat(prefix) { b.put((it * 7 + 3).toByte()) }
            RecordFrame.Codec().encode(b, topic, seq, payload)
            val end = b.position()
            while (b.hasRemaining()) b.put(0x5A)
            return b to end
        }

        fun flip(b: ByteBuffer, bit: Int) {
            val i = bit / 8
            b.put(i, (b.get(i).toInt() xor (1 shl (bit % 8))).toByte())
        }

        // ---- RecordFrame ----

        test("RecordFrame: encode then check round-trips payload, length and position") {
            checkAll(300, payloads, Arb.int(), Arb.long(), prefixes) { payload, topic, seq, prefix ->
                val (b, end) = encodeFrame(prefix, topic, seq, payload)
                end shouldBe prefix + RecordFrame.HEADER_SIZE + payload.size
                val codec = RecordFrame.Codec()
                codec.check(b.duplicate(), prefix, end, topic, seq) shouldBe payload.size
                // the frame may also be checked against a larger end (more frames after it)
                codec.check(b.duplicate(), prefix, b.capacity(), topic, seq) shouldBe payload.size
                val copy = ByteArray(payload.size)
                b.duplicate().position(prefix + RecordFrame.HEADER_SIZE).get(copy)
                copy shouldBe payload
                b.getInt(prefix + 4) shouldBe payload.size
                b.get(prefix + 8) shouldBe RecordFrame.MAGIC
            }
        }

        test(
            "RecordFrame: decode returns a fresh copy of a sound frame's payload (heap and direct buffers), " +
                "null for any damage",
        ) {
            val codec = RecordFrame.Codec() // one codec across topics: its cached seed must follow the topic id
            checkAll(
                300,
                payloads,
                Arb.int(),
                Arb.long(),
                prefixes,
                Arb.nonNegativeInt(),
            ) { payload, topic, seq, prefix, bitSeed ->
                val (heap, end) = encodeFrame(prefix, topic, seq, payload)
                val direct = ByteBuffer.allocateDirect(heap.capacity()).put(heap.duplicate().clear())
                for (b in listOf(heap, direct)) {
                    codec.decode(b, prefix, end, topic, seq) shouldBe payload
                    codec.decode(b, prefix, b.capacity(), topic, seq) shouldBe payload
                    codec.decode(b, prefix, end - 1, topic, seq) shouldBe null
                    codec.decode(b, prefix, end, topic xor 1, seq) shouldBe null
                    codec.decode(b, prefix, end, topic, seq + 1) shouldBe null
                }
                val decoded = codec.decode(heap, prefix, end, topic, seq)!!
                decoded shouldNotBeSameInstanceAs codec.decode(heap, prefix, end, topic, seq)
                flip(direct, prefix * 8 + bitSeed % ((end - prefix) * 8))
                codec.decode(direct, prefix, end, topic, seq) shouldBe null
            }
        }

        test(
            "RecordFrame: decode checks payloads of a few hundred bytes to a few KiB, " +
                "and any flipped bit of the frame makes it return null",
        ) {
            val codec = RecordFrame.Codec()
            val sizes = Arb.int(90..4096)
            checkAll(200, sizes, Arb.int(), Arb.long(), prefixes, Arb.nonNegativeInt()) {
                    size,
                    topic,
                    seq,
                    prefix,
                    bit,
                ->
                val payload = ByteArray(size) { (it * 31 + seq).toByte() }
                val (heap, end) = encodeFrame(prefix, topic, seq, payload)
                val direct = ByteBuffer.allocateDirect(heap.capacity()).put(heap.duplicate().clear())
                codec.decode(direct, prefix, end, topic, seq) shouldBe payload
                codec.decode(direct, prefix, end, topic, seq + 1) shouldBe null
                flip(direct, prefix * 8 + bit % ((end - prefix) * 8))
                codec.decode(direct, prefix, end, topic, seq) shouldBe null
                // What was decoded before the flip is the caller's own copy.
                codec.decode(heap, prefix, end, topic, seq) shouldBe payload
            }
        }

        test("RecordFrame: a frame cut short fails its check") {
            checkAll(200, payloads, Arb.int(), Arb.long(), Arb.int(1..400)) { payload, topic, seq, cut ->
                val (b, end) = encodeFrame(0, topic, seq, payload)
                val shortEnd = maxOf(0, end - (cut % end).coerceAtLeast(1))
                RecordFrame.Codec().check(b.duplicate(), 0, shortEnd, topic, seq) shouldBe -1
            }
        }

        test("RecordFrame: any single bit flip anywhere in a frame makes its check fail") {
            checkAll(500, payloads, Arb.int(), Arb.long(), Arb.nonNegativeInt()) { payload, topic, seq, bitSeed ->
                val (b, end) = encodeFrame(4, topic, seq, payload)
                val bits = (end - 4) * 8
                flip(b, 4 * 8 + bitSeed % bits)
                val result = RecordFrame.Codec().check(b.duplicate(), 4, end, topic, seq)
                // Either it fails outright, or (a flipped length) it claims a different length, which the block's
                // body length then contradicts. In practice the CRC seeds the length, so it always fails.
                result shouldNotBe payload.size
                result shouldBe -1
            }
        }

        test("RecordFrame: every bit of a small frame, flipped exhaustively, fails the check") {
            val payload = "hello, kwal".encodeToByteArray()
            val (clean, end) = encodeFrame(0, 7, 42L, payload)
            for (bit in 0 until end * 8) {
                val b = ByteBuffer.allocate(clean.capacity()).put(clean.duplicate().clear())
                flip(b, bit)
                RecordFrame.Codec().check(b.duplicate(), 0, end, 7, 42L) shouldBe -1
            }
        }

        test("RecordFrame: checking under a different topic id or sequence fails") {
            checkAll(
                300,
                payloads,
                Arb.int(),
                Arb.long(),
                Arb.int(),
                Arb.long(),
            ) { payload, topic, seq, otherTopic, otherSeq ->
                val (b, end) = encodeFrame(0, topic, seq, payload)
                val codec = RecordFrame.Codec()
                if (otherTopic != topic) codec.check(b.duplicate(), 0, end, otherTopic, seq) shouldBe -1
                if (otherSeq != seq) codec.check(b.duplicate(), 0, end, topic, otherSeq) shouldBe -1
                codec.check(b.duplicate(), 0, end, topic xor 1, seq) shouldBe -1
                codec.check(b.duplicate(), 0, end, topic, seq + 1) shouldBe -1
                codec.check(b.duplicate(), 0, end, topic, seq) shouldBe payload.size
            }
        }

        test("RecordFrame: consecutive frames each check at their own offset") {
            checkAll(100, Arb.int(1..8), Arb.int(), Arb.long(0L..Long.MAX_VALUE / 2)) { n, topic, first ->
                val ps = List(n) { i -> ByteArray(i * 13) { (it + i).toByte() } }
                val b = ByteBuffer.allocate(ps.sumOf { RecordFrame.HEADER_SIZE + it.size })
                val codec = RecordFrame.Codec()
                ps.forEachIndexed { i, p -> codec.encode(b, topic, first + i, p) }
                var at = 0
                ps.forEachIndexed { i, p ->
                    codec.check(b.duplicate(), at, b.capacity(), topic, first + i) shouldBe p.size
                    at += RecordFrame.HEADER_SIZE + p.size
                }
                at shouldBe b.capacity()
            }
        }

        // ---- BlockHeader ----

        class H(
            val flags: Int,
            val topic: Int,
            val firstSeq: Long,
            val count: Int,
            val body: Int,
            val synced: LogPosition,
            val timestamp: Long,
            val position: LogPosition,
            val at: Int,
        )

        val positions = Arb.bind(Arb.int(1..100_000), Arb.int(0..Int.MAX_VALUE)) { s, o -> LogPosition(s, o) }
        val headers = Arb.bind(
            Arb.boolean(), Arb.int(0..Int.MAX_VALUE), Arb.long(0L..Long.MAX_VALUE), Arb.int(1..10_000),
            Arb.int(0..1_000_000), positions, Arb.long(), positions, Arb.int(0..64),
        ) { continued, topic, firstSeq, count, extra, synced, timestamp, position, at ->
            H(
                if (continued) BlockHeader.FLAG_CONTINUED else 0, topic, firstSeq, count,
                count * RecordFrame.HEADER_SIZE + extra, synced, timestamp, position, at,
            )
        }

        fun writeHeader(h: H): ByteBuffer {
            val b = ByteBuffer.allocate(h.at + BlockHeader.SIZE + 16)
            repeat(b.capacity()) { b.put(it, 0x33) }
            BlockHeader.write(
                b,
                h.at,
                h.position,
                h.flags,
                h.topic,
                h.firstSeq,
                h.count,
                h.body,
                h.synced,
                h.timestamp,
                CRC32C(),
            )
            b.position() shouldBe 0
            return b
        }

        test("BlockHeader: write then check round-trips every field") {
            checkAll(300, headers) { h ->
                val b = writeHeader(h)
                BlockHeader.check(b, h.at, h.position, CRC32C()).shouldBeNull()
                b.getInt(h.at) shouldBe BlockHeader.MAGIC
                b.get(h.at + BlockHeader.OFF_VERSION).toInt() shouldBe BlockHeader.VERSION
                b.get(h.at + BlockHeader.OFF_FLAGS).toInt() shouldBe h.flags
                b.getInt(h.at + BlockHeader.OFF_TOPIC) shouldBe h.topic
                b.getLong(h.at + BlockHeader.OFF_FIRST_SEQ) shouldBe h.firstSeq
                b.getInt(h.at + BlockHeader.OFF_COUNT) shouldBe h.count
                b.getInt(h.at + BlockHeader.OFF_BODY_LENGTH) shouldBe h.body
                LogPosition(b.getLong(h.at + BlockHeader.OFF_SYNCED)) shouldBe h.synced
                b.getLong(h.at + BlockHeader.OFF_TIMESTAMP) shouldBe h.timestamp
                // the bytes around the header are untouched
                if (h.at > 0) b.get(h.at - 1) shouldBe 0x33.toByte()
                b.get(h.at + BlockHeader.SIZE) shouldBe 0x33.toByte()
            }
        }

        test("BlockHeader: any single bit flip in a header fails its check") {
            checkAll(500, headers, Arb.int(0 until BlockHeader.SIZE * 8)) { h, bit ->
                val b = writeHeader(h)
                flip(b, h.at * 8 + bit)
                BlockHeader.check(b, h.at, h.position, CRC32C()).shouldNotBeNull()
            }
        }

        test("BlockHeader: checking at a different log position fails") {
            checkAll(300, headers, positions) { h, other ->
                val b = writeHeader(h)
                val crc = CRC32C()
                if (other != h.position) BlockHeader.check(b, h.at, other, crc).shouldNotBeNull()
                BlockHeader.check(
                    b,
                    h.at,
                    LogPosition(h.position.segmentId + 1, h.position.offset),
                    crc,
                ).shouldNotBeNull()
                BlockHeader.check(
                    b,
                    h.at,
                    LogPosition(h.position.segmentId, h.position.offset xor 8),
                    crc,
                ).shouldNotBeNull()
                BlockHeader.check(b, h.at, h.position, crc).shouldBeNull()
            }
        }

        test("BlockHeader: a header cut short, with no records or a too short body fails its check") {
            val h = H(0, 3, 10, 2, 2 * RecordFrame.HEADER_SIZE, LogPosition(1, 64), 0, LogPosition(1, 64), 0)
            val b = writeHeader(h)
            BlockHeader.check(b.duplicate().limit(BlockHeader.SIZE - 1), 0, h.position, CRC32C()) shouldBe
                "block header cut short"
            val crc = CRC32C()
            val none = ByteBuffer.allocate(BlockHeader.SIZE)
            BlockHeader.write(none, 0, h.position, 0, 3, 0, 0, 0, h.synced, 0, crc)
            BlockHeader.check(none, 0, h.position, crc) shouldBe "block with no records"
            val short = ByteBuffer.allocate(BlockHeader.SIZE)
            BlockHeader.write(short, 0, h.position, 0, 3, 0, 2, 2 * RecordFrame.HEADER_SIZE - 1, h.synced, 0, crc)
            BlockHeader.check(short, 0, h.position, crc) shouldBe "block body too short for its records"
            val flags = ByteBuffer.allocate(BlockHeader.SIZE)
            BlockHeader.write(flags, 0, h.position, 8, 3, 0, 1, RecordFrame.HEADER_SIZE, h.synced, 0, crc)
            BlockHeader.check(flags, 0, h.position, crc) shouldBe "unknown block flags"
            // bit 1 is COMPRESSED: it needs a codec (CompressedBodySpec checks the rest)
            BlockHeader.write(flags, 0, h.position, 2, 3, 0, 1, RecordFrame.HEADER_SIZE, h.synced, 0, crc)
            BlockHeader.check(flags, 0, h.position, crc) shouldBe "unknown codec 0"
        }

        test("BlockHeader: zero helpers") {
            val b = ByteBuffer.allocate(200)
            BlockHeader.isZero(b, 0) shouldBe true
            BlockHeader.allZero(b, 0, 200) shouldBe true
            BlockHeader.lastNonZero(b, 0, 200) shouldBe -1
            b.put(137, 1)
            BlockHeader.isZero(b, 0) shouldBe true
            BlockHeader.isZero(b, 100) shouldBe false
            BlockHeader.isZero(b, 180) shouldBe true
            BlockHeader.allZero(b, 0, 137) shouldBe true
            BlockHeader.allZero(b, 0, 138) shouldBe false
            BlockHeader.lastNonZero(b, 0, 200) shouldBe 137
            BlockHeader.lastNonZero(b, 0, 137) shouldBe -1
            BlockHeader.lastNonZero(b, 137, 138) shouldBe 137
            checkAll(200, Arb.int(0..199), Arb.int(0..199)) { i, j ->
                val c = ByteBuffer.allocate(200)
                c.put(i, 9)
                c.put(j, 9)
                BlockHeader.lastNonZero(c, 0, 200) shouldBe maxOf(i, j)
                BlockHeader.allZero(c, 0, minOf(i, j)) shouldBe true
                BlockHeader.allZero(c, 0, minOf(i, j) + 1) shouldBe false
            }
        }

        // ---- SegmentHeader ----

        val segmentHeaders = Arb.bind(
            Arb.int(1..Int.MAX_VALUE),
            Arb.int((64 shl 10)..(1 shl 30)),
            Arb.long(),
            Arb.long(),
        ) { id, size, logId, created ->
            SegmentHeader(id, size, logId, created)
        }

        test("SegmentHeader: encode then decode round-trips") {
            checkAll(300, segmentHeaders) { h ->
                val b = h.encode()
                b.position() shouldBe 0
                b.remaining() shouldBe SegmentHeader.SIZE
                b.getInt(0) shouldBe SegmentHeader.MAGIC
                for (i in 32 until 60) b.get(i) shouldBe 0.toByte()
                val decoded = SegmentHeader.decode(b).shouldBeInstanceOf<SegmentHeader.Result.Ok>().header
                b.position() shouldBe 0
                decoded.segmentId shouldBe h.segmentId
                decoded.segmentSize shouldBe h.segmentSize
                decoded.logId shouldBe h.logId
                decoded.createdMillis shouldBe h.createdMillis
                // also when the header is followed by the rest of the file
                val file = ByteBuffer.allocate(SegmentHeader.SIZE + 100).put(h.encode()).position(0)
                SegmentHeader.decode(file).shouldBeInstanceOf<SegmentHeader.Result.Ok>().header.segmentId shouldBe
                    h.segmentId
            }
        }

        test("SegmentHeader: any single bit flip fails decoding") {
            checkAll(500, segmentHeaders, Arb.int(0 until SegmentHeader.SIZE * 8)) { h, bit ->
                val b = h.encode()
                flip(b, bit)
                SegmentHeader.decode(b).shouldBeInstanceOf<SegmentHeader.Result.Bad>()
            }
        }

        test("SegmentHeader: zeros, garbage and short buffers are not headers") {
            SegmentHeader.decode(ByteBuffer.allocate(SegmentHeader.SIZE)).shouldBeInstanceOf<SegmentHeader.Result.Bad>()
            SegmentHeader.decode(ByteBuffer.allocate(10)).shouldBeInstanceOf<SegmentHeader.Result.Bad>().reason shouldBe
                "file shorter than a segment header"
            val good = SegmentHeader(1, 64 shl 10, 99, 1).encode()
            SegmentHeader.decode(good.duplicate().limit(SegmentHeader.SIZE - 1))
                .shouldBeInstanceOf<SegmentHeader.Result.Bad>()
            checkAll(100, Arb.byteArray(Arb.int(64..128), Arb.byte())) { garbage ->
                SegmentHeader.decode(ByteBuffer.wrap(garbage)).shouldBeInstanceOf<SegmentHeader.Result.Bad>()
            }
        }

        // ---- LogPosition ----

        val nonNeg = Arb.int(0..Int.MAX_VALUE)

        test("LogPosition: packs and unpacks any segment id and offset") {
            checkAll(500, Arb.int(), Arb.int()) { s, o ->
                val p = LogPosition(s, o)
                p.segmentId shouldBe s
                p.offset shouldBe o
                LogPosition(p.packed) shouldBe p
                p.packed shouldBe ((s.toLong() shl 32) or (o.toLong() and 0xFFFF_FFFFL))
            }
            LogPosition.ZERO.segmentId shouldBe 0
            LogPosition.ZERO.offset shouldBe 0
            LogPosition(3, 64).toString() shouldBe "segment 3 offset 64"
        }

        test("LogPosition: orders by segment id, then offset") {
            checkAll(500, nonNeg, nonNeg, nonNeg, nonNeg) { s1, o1, s2, o2 ->
                val a = LogPosition(s1, o1)
                val b = LogPosition(s2, o2)
                val expected = compareValuesBy(s1 to o1, s2 to o2, { it.first }, { it.second })
                Integer.signum(a.compareTo(b)) shouldBe Integer.signum(expected)
                Integer.signum(a.packed.compareTo(b.packed)) shouldBe Integer.signum(expected)
                (a == b) shouldBe (s1 == s2 && o1 == o2)
            }
            LogPosition(1, Int.MAX_VALUE) shouldBeLessThan LogPosition(2, 0)
            LogPosition(2, 64) shouldBeGreaterThan LogPosition(1, Int.MAX_VALUE)
            // offsets are unsigned within a segment
            LogPosition(1, -1) shouldBeGreaterThan LogPosition(1, Int.MAX_VALUE)
            LogPosition(1, -1) shouldBeLessThan LogPosition(2, 0)
            listOf(LogPosition(2, 0), LogPosition(1, 500), LogPosition(1, 64), LogPosition.ZERO).sorted() shouldBe
                listOf(LogPosition.ZERO, LogPosition(1, 64), LogPosition(1, 500), LogPosition(2, 0))
        }
    })
