package dev.kwal

import dev.kwal.engine.Kwal
import dev.kwal.engine.KwalEngine
import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.CompressedBody
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.io.FaultyFileIo
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldContainAll
import io.kotest.matchers.collections.shouldNotBeEmpty
import io.kotest.matchers.comparables.shouldBeGreaterThan
import io.kotest.matchers.longs.shouldBeGreaterThan
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import java.nio.ByteBuffer
import java.nio.file.Files
import java.nio.file.Path
import java.util.zip.CRC32C
import kotlin.random.Random

/**
 * Compression ([WalOptions.compression]) on real logs: records replay exactly whatever mix of plain, LZ4 and zstd
 * blocks a log holds and whatever today's option; the threshold and "only if smaller" decide what is stored
 * compressed; a damaged or forged compressed block is a [WalCorruptedException] on replay and a corruption (or a
 * torn tail, truncated) on open, never wrong records; a failed write of a compressed group rolls back.
 */
class CompressionSpec :
    FunSpec({
        timeout = 300_000L

        val codecs = listOf(Compression.Lz4, Compression.Zstd(3))

        fun options(
            dir: Path,
            compression: Compression,
            threshold: Int = 256,
            durability: Durability = Durability.Sync,
            policy: CorruptionPolicy = CorruptionPolicy.FAIL,
        ) = TestLogs.scanned(dir, durability, policy).toBuilder()
            .compression(compression).compressionThreshold(threshold).build()

        /** The codec id of every block of [dir], registry blocks aside. */
        fun codecs(dir: Path): List<Int> = LogFiles.allBlocks(dir).filter { it.topicId != 0 }.map { blk ->
            val codec = LogFiles.readByte(LogFiles.segment(dir, blk.segment), blk.at + BlockHeader.OFF_CODEC.toLong())
            if (blk.compressed) codec.toInt() else codec.toInt().also { it shouldBe 0 }
        }

        suspend fun replayAll(wal: Wal, expected: Map<String, List<ByteArray>>) {
            for ((topic, payloads) in expected) {
                val got = wal.replay(topic).toList()
                withClue("topic $topic") {
                    got.map { it.sequence } shouldBe payloads.indices.map { it.toLong() }
                    got.zip(payloads).forEach { (r, p) -> r.payload shouldBe p }
                }
            }
        }

        /** Appends singles and batches of JSON events to two topics from a few coroutines; records them. */
        suspend fun workload(wal: Wal, expected: MutableMap<String, MutableList<ByteArray>>, r: Random, n: Int) {
            val topics = listOf("orders", "audit")
            val lock = Any()
            coroutineScope {
                repeat(4) { w ->
                    val rw = Random(r.nextLong())
                    launch(Dispatchers.Default) {
                        repeat(n) { i ->
                            val topic = topics[(w + i) % 2]
                            if (i % 3 == 0) {
                                val batch = List(1 + rw.nextInt(12)) { Events.json(rw) }
                                val range = wal.appendBatch(topic, batch)
                                synchronized(lock) {
                                    val list = expected.getOrPut(topic) { ArrayList() }
                                    batch.forEachIndexed { k, p -> put(list, range.first + k, p) }
                                }
                            } else {
                                val p = Events.json(rw)
                                val seq = wal.append(topic, p, if (i % 2 == 0) Durability.None else null)
                                synchronized(lock) { put(expected.getOrPut(topic) { ArrayList() }, seq, p) }
                            }
                        }
                    }
                }
            }
        }

        for (compression in codecs) {
            test("$compression: appends and batches replay exactly, stored compressed, and again after a reopen") {
                val dir = TestLogs.tempDir("kwal-compress")
                val expected = HashMap<String, MutableList<ByteArray>>()
                Kwal.open(options(dir, compression)).use { wal ->
                    workload(wal, expected, Random(1), 60)
                    replayAll(wal, expected)
                }
                val stored = codecs(dir)
                stored.filter { it != 0 }.toSet() shouldBe setOf(CompressedBody.codecOf(compression))
                // registry blocks are never compressed
                LogFiles.allBlocks(dir).filter { it.topicId == 0 }.none { it.compressed } shouldBe true
                Kwal.open(options(dir, compression)).use { wal ->
                    wal.recovery.corruption.shouldBeNull()
                    wal.recovery.truncatedBytes shouldBe 0
                    wal.recovery.records shouldBe expected.values.sumOf { it.size }.toLong()
                    replayAll(wal, expected)
                    // and a follower reads the compressed blocks too
                    val orders = expected.getValue("orders")
                    wal.follow("orders").take(orders.size).toList().map { it.payload } shouldBe orders
                }
                dir.toFile().deleteRecursively()
            }
        }

        test("options changed between opens: a mix of plain, LZ4 and zstd blocks replays exactly under any option") {
            val dir = TestLogs.tempDir("kwal-compress-mix")
            val expected = HashMap<String, MutableList<ByteArray>>()
            val cycle = listOf(
                Compression.None,
                Compression.Lz4,
                Compression.Zstd(1),
                Compression.Lz4,
                Compression.None,
                Compression.Zstd(19),
            )
            val r = Random(2)
            for ((i, c) in cycle.withIndex()) {
                Kwal.open(options(dir, c, threshold = if (i % 2 == 0) 0 else 2048)).use { wal ->
                    wal.recovery.corruption.shouldBeNull()
                    replayAll(wal, expected)
                    workload(wal, expected, r, 20)
                }
            }
            codecs(dir).toSet() shouldContainAll setOf(0, CompressedBody.CODEC_LZ4, CompressedBody.CODEC_ZSTD)
            for (c in listOf(Compression.None, Compression.Lz4, Compression.Zstd(7))) {
                Kwal.open(options(dir, c)).use { wal -> replayAll(wal, expected) }
            }
            dir.toFile().deleteRecursively()
        }

        test(
            "the threshold: a body of exactly the threshold is compressed, one byte less is not; random data stays plain",
        ) {
            for (compression in codecs) {
                val dir = TestLogs.tempDir("kwal-compress-edge")
                val threshold = 1000
                val text = { size: Int -> "{\"a\":1}".repeat(size / 7 + 1).take(size).encodeToByteArray() }
                val payloads = listOf(
                    text(threshold - 12), // body = threshold
                    text(threshold - 13), // body = threshold - 1
                    Random(5).nextBytes(3000), // incompressible
                    text(3000),
                )
                Kwal.open(options(dir, compression, threshold)).use { wal ->
                    for (p in payloads) wal.append("t", p)
                    wal.replay("t").toList().map { it.payload } shouldBe payloads
                }
                LogFiles.allBlocks(dir).filter { it.topicId != 0 }.map { it.compressed } shouldBe
                    listOf(true, false, false, true)
                // threshold 0: even a small body is compressed if it gets smaller
                Kwal.open(options(dir, compression, 0)).use { wal ->
                    wal.append("t", text(100))
                    wal.replay("t").toList().map { it.payload } shouldBe payloads + listOf(text(100))
                }
                LogFiles.allBlocks(dir).last().compressed shouldBe true
                dir.toFile().deleteRecursively()
            }
        }

        /**
         * A log of 40 groups of topic "t" (batches of 3 JSON events of ~2 KiB, so that each group is one compressed
         * block of its own), closed. Returns its directory, the payloads and the compressed blocks in log order.
         */
        suspend fun compressedLog(compression: Compression): Triple<Path, List<ByteArray>, List<LogFiles.BlockInfo>> {
            val dir = TestLogs.tempDir("kwal-compress-damage")
            val payloads = ArrayList<ByteArray>()
            val r = Random(3)
            Kwal.open(options(dir, compression)).use { wal ->
                repeat(40) {
                    val batch = List(3) { Events.json(r, 2000) }
                    wal.appendBatch("t", batch)
                    payloads += batch
                }
            }
            val blocks = LogFiles.allBlocks(dir).filter { it.topicId != 0 }
            blocks.all { it.compressed } shouldBe true
            return Triple(dir, payloads, blocks)
        }

        /** Rewrites the uncompressed length of compressed block [blk] to [length], the body CRC recomputed if asked. */
        fun forgeLength(dir: Path, blk: LogFiles.BlockInfo, length: Int, recompute: Boolean) {
            val path = LogFiles.segment(dir, blk.segment)
            val b = ByteBuffer.wrap(Files.readAllBytes(path))
            val body = blk.at + BlockHeader.SIZE
            b.putInt(body + CompressedBody.OFF_LENGTH, length)
            if (recompute) {
                val n = blk.body - CompressedBody.PREFIX
                val bytes = ByteArray(n).also { b.get(body + CompressedBody.PREFIX, it) }
                b.putInt(body, CompressedBody.crc(CRC32C(), LogPosition(blk.segment, blk.at), length, bytes, 0, n))
            }
            LogFiles.write(path, body.toLong(), b.array().copyOfRange(body, body + CompressedBody.PREFIX))
        }

        /** The damages a compressed block gets in the tests below: a name and what it does. */
        val damages: List<Pair<String, (Path, LogFiles.BlockInfo) -> Unit>> = listOf(
            "a bit flipped in the compressed bytes" to { dir, blk ->
                LogFiles.flipBit(LogFiles.segment(dir, blk.segment), blk.end - 7L, 2)
            },
            "a bit flipped in the body CRC" to { dir, blk ->
                LogFiles.flipBit(LogFiles.segment(dir, blk.segment), blk.at + BlockHeader.SIZE + 1L, 0)
            },
            "the uncompressed length forged to Int.MAX_VALUE" to { dir, blk ->
                forgeLength(dir, blk, Int.MAX_VALUE, recompute = false)
            },
            "the uncompressed length forged to Int.MAX_VALUE, body CRC recomputed" to { dir, blk ->
                forgeLength(dir, blk, Int.MAX_VALUE, recompute = true)
            },
            "the uncompressed length forged to the segment size, body CRC recomputed" to { dir, blk ->
                forgeLength(dir, blk, 64 shl 10, recompute = true)
            },
            "the uncompressed length forged to negative, body CRC recomputed" to { dir, blk ->
                forgeLength(dir, blk, -12, recompute = true)
            },
            "the uncompressed length forged one byte longer, body CRC recomputed" to { dir, blk ->
                val real = ByteBuffer.wrap(Files.readAllBytes(LogFiles.segment(dir, blk.segment)))
                    .getInt(blk.at + BlockHeader.SIZE + CompressedBody.OFF_LENGTH)
                forgeLength(dir, blk, real + 1, recompute = true)
            },
            "the uncompressed length forged one byte shorter, body CRC recomputed" to { dir, blk ->
                val real = ByteBuffer.wrap(Files.readAllBytes(LogFiles.segment(dir, blk.segment)))
                    .getInt(blk.at + BlockHeader.SIZE + CompressedBody.OFF_LENGTH)
                forgeLength(dir, blk, real - 1, recompute = true)
            },
        )

        for (compression in codecs) {
            test(
                "$compression: a damaged compressed block fails the open (FAIL) or is cut with all after it (TRUNCATE)",
            ) {
                for ((what, damage) in damages) {
                    withClue(what) {
                        val (dir, payloads, blocks) = compressedLog(compression)
                        val victim = blocks[blocks.size / 2]
                        damage(dir, victim)
                        val before = LogFiles.snapshot(dir)
                        val e = shouldThrow<WalCorruptedException> { Kwal.open(options(dir, compression)).close() }
                        e.file?.fileName shouldBe LogFiles.segment(dir, victim.segment).fileName
                        e.offset shouldBe victim.at.toLong()
                        LogFiles.snapshot(dir) shouldBe before
                        Kwal.open(options(dir, compression, policy = CorruptionPolicy.TRUNCATE)).use { wal ->
                            wal.recovery.corruption.shouldNotBeNull()
                            wal.replay("t").toList().map { it.payload } shouldBe
                                payloads.subList(0, victim.firstSeq.toInt())
                        }
                        dir.toFile().deleteRecursively()
                    }
                }
            }

            test("$compression: a compressed block damaged under an open log is a WalCorruptedException on replay") {
                for ((what, damage) in damages) {
                    withClue(what) {
                        val (dir, payloads, blocks) = compressedLog(compression)
                        Kwal.open(options(dir, compression)).use { wal ->
                            val victim = blocks[blocks.size / 2]
                            damage(dir, victim)
                            val seen = ArrayList<ByteArray>()
                            val e = shouldThrow<WalCorruptedException> {
                                wal.replay("t").collect { seen += it.payload }
                            }
                            e.offset shouldBe victim.at.toLong()
                            seen shouldBe payloads.subList(0, victim.firstSeq.toInt())
                            // from inside the damaged block: nothing
                            shouldThrow<WalCorruptedException> { wal.replay("t", victim.firstSeq + 1).toList() }
                            // after it: readable
                            wal.replay("t", victim.firstSeq + victim.count).toList().map { it.payload } shouldBe
                                payloads.subList((victim.firstSeq + victim.count).toInt(), payloads.size)
                        }
                        dir.toFile().deleteRecursively()
                    }
                }
            }

            test("$compression: a torn tail inside the last compressed block is truncated by recovery") {
                for (cut in listOf(3, 8, 64, -1)) {
                    withClue("last $cut bytes of the body lost") {
                        val (dir, payloads, blocks) = compressedLog(compression)
                        val last = blocks.last()
                        val keep = if (cut < 0) CompressedBody.PREFIX / 2 else last.body - cut
                        val path = LogFiles.segment(dir, last.segment)
                        val from = last.at + BlockHeader.SIZE + keep
                        // a sector lost in a power cut reads as the zeros the segment was built with
                        Files.readAllBytes(path).copyOfRange(from, last.end).any { it.toInt() != 0 } shouldBe true
                        LogFiles.zero(path, from, last.end)
                        Kwal.open(options(dir, compression)).use { wal ->
                            wal.recovery.corruption.shouldBeNull()
                            wal.recovery.truncatedBytes shouldBeGreaterThan 0L
                            wal.recovery.droppedRecords shouldBe last.count.toLong()
                            wal.replay("t").toList().map { it.payload } shouldBe
                                payloads.subList(0, last.firstSeq.toInt())
                            // the log goes on where the torn group was
                            wal.append("t", payloads.last()) shouldBe last.firstSeq
                        }
                        dir.toFile().deleteRecursively()
                    }
                }
            }

            test("$compression: a write failure during a compressed group rolls it back; the log goes on") {
                val dir = TestLogs.tempDir("kwal-compress-fault")
                val io = FaultyFileIo()
                val r = Random(4)
                val expected = ArrayList<ByteArray>()
                val wal = withContext(Dispatchers.IO) { KwalEngine.open(options(dir, compression), io) }
                wal.use {
                    repeat(10) { expected += Events.json(r).also { p -> wal.append("t", p) } }
                    io.failNth(FaultyFileIo.Op.WRITE, 1)
                    shouldThrow<WalException> { wal.appendBatch("t", List(20) { Events.json(r) }) }
                    io.allFired() shouldBe true
                    val batch = List(20) { Events.json(r) }
                    wal.appendBatch("t", batch).first shouldBe 10L
                    expected += batch
                    wal.replay("t").toList().map { it.payload } shouldBe expected
                }
                LogFiles.allBlocks(dir).filter { it.topicId != 0 }.any { it.compressed } shouldBe true
                Kwal.open(options(dir, compression)).use { reopened ->
                    reopened.recovery.corruption.shouldBeNull()
                    reopened.replay("t").toList().map { it.payload } shouldBe expected
                }
                dir.toFile().deleteRecursively()
            }
        }

        test("compression options: defaults, bounds, builder and toString") {
            val dir = Path.of("x")
            WalOptions(dir).compression shouldBe Compression.None
            WalOptions(dir).compressionThreshold shouldBe WalOptions.DEFAULT_COMPRESSION_THRESHOLD
            shouldThrow<IllegalArgumentException> { WalOptions(dir, compressionThreshold = -1) }
            shouldThrow<IllegalArgumentException> { Compression.Zstd(0) }
            shouldThrow<IllegalArgumentException> { Compression.Zstd(23) }
            Compression.zstd() shouldBe Compression.Zstd(Compression.DEFAULT_ZSTD_LEVEL)
            Compression.lz4() shouldBe Compression.Lz4
            Compression.none() shouldBe Compression.None
            val o = WalOptions.builder(dir).compression(Compression.zstd(9)).compressionThreshold(0).build()
            o.compression shouldBe Compression.Zstd(9)
            o.compressionThreshold shouldBe 0
            o.toBuilder().build().compression shouldBe Compression.Zstd(9)
            o.toString() shouldContain "compression=Zstd(level=9)"
        }
    }) {
    companion object {
        fun put(list: MutableList<ByteArray>, seq: Long, p: ByteArray) {
            while (list.size <= seq) list.add(ByteArray(0))
            list[seq.toInt()] = p
        }
    }
}

/** Realistic-looking JSON order events, for compression tests. */
object Events {
    private val statuses = listOf("created", "paid", "packed", "shipped", "delivered", "cancelled")
    private val currencies = listOf("EUR", "USD", "GBP", "CHF")
    private val skus = List(50) { "SKU-%05d".format(it * 7919 % 100_000) }

    /** One event of about [size] bytes (at least about 200): an order, its customer and a few lines. */
    fun json(r: Random, size: Int = 200 + r.nextInt(300)): ByteArray {
        val sb = StringBuilder()
        sb.append("{\"type\":\"order.").append(statuses[r.nextInt(statuses.size)]).append("\",")
        sb.append("\"orderId\":\"ord-").append(r.nextInt(1_000_000)).append("\",")
        sb.append("\"customer\":{\"id\":\"cus-").append(r.nextInt(50_000)).append("\",\"country\":\"")
            .append(listOf("DE", "FR", "NL", "US", "GB")[r.nextInt(5)]).append("\"},")
        sb.append("\"currency\":\"").append(currencies[r.nextInt(currencies.size)]).append("\",")
        sb.append("\"ts\":").append(1_764_000_000_000L + r.nextInt(100_000_000)).append(",\"lines\":[")
        var first = true
        while (sb.length < size - 60) {
            if (!first) sb.append(',')
            first = false
            sb.append("{\"sku\":\"").append(skus[r.nextInt(skus.size)]).append("\",\"qty\":").append(1 + r.nextInt(5))
                .append(",\"price\":").append(r.nextInt(10_000) / 100.0).append('}')
        }
        sb.append("]}")
        return sb.toString().encodeToByteArray()
    }
}
