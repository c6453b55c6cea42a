package dev.kwal

import dev.kwal.engine.Kwal
import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.RecordFrame
import dev.kwal.engine.format.SegmentHeader
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.collections.shouldContainExactly
import io.kotest.matchers.comparables.shouldBeGreaterThan
import io.kotest.matchers.comparables.shouldBeGreaterThanOrEqualTo
import io.kotest.matchers.longs.shouldBeInRange
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.withTimeout
import java.nio.file.Files
import java.nio.file.Path
import kotlin.io.path.exists
import kotlin.io.path.fileSize
import kotlin.io.path.name
import kotlin.io.path.readBytes
import kotlin.io.path.writeBytes
import kotlin.random.Random

/**
 * Recovery on real files: a log is written with a real Wal, closed, damaged with plain java.nio, and reopened.
 */
class RecoverySpec :
    FunSpec({
        timeout = 60_000L

        /** Replays [topic] and checks sequences are dense from 0; returns the payloads. */
        suspend fun payloads(wal: Wal, topic: String = "a"): List<List<Byte>> {
            val records = withTimeout(20_000) { wal.replay(topic).toList() }
            records.map { it.sequence } shouldContainExactly (0L until records.size).toList()
            records.forEach { it.topic shouldBe topic }
            return records.map { it.payload.toList() }
        }

        fun expected(topic: String, range: LongRange): List<List<Byte>> = range.map {
            TestLogs.payload(topic, it).toList()
        }

        /** Opens, checks that nothing was truncated and [topic] holds exactly [count] intact records, closes. */
        suspend fun reopenClean(dir: Path, topic: String, count: Long) {
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                wal.recovery.truncatedBytes shouldBe 0
                wal.recovery.droppedRecords shouldBe 0
                wal.recovery.corruption.shouldBeNull()
                payloads(wal, topic) shouldBe expected(topic, 0 until count)
            }
        }

        /** Opens, checks nothing was truncated and "a" holds [count] records with dense sequences, closes. */
        suspend fun reopenCount(dir: Path, count: Long) {
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                wal.recovery.truncatedBytes shouldBe 0
                wal.recovery.corruption.shouldBeNull()
                payloads(wal).size shouldBe count.toInt()
            }
        }

        /** Writes [n] records to "a", each its own synced group, then (optionally) one batch of [batch] records. */
        suspend fun writeLog(dir: Path, n: Long, batch: Int = 0, options: WalOptions = TestLogs.scanned(dir)) {
            Kwal.open(options).use { wal ->
                withTimeout(30_000) {
                    for (i in 0 until n) wal.append("a", TestLogs.payload("a", i)) shouldBe i
                    if (batch > 0) {
                        wal.appendBatch("a", (n until n + batch).map { TestLogs.payload("a", it) }) shouldBe
                            (n until n + batch)
                    }
                }
            }
        }

        // ---- torn tail ----

        val tears: List<Pair<String, (Path, LogFiles.BlockInfo) -> Unit>> = listOf(
            "the last block's second half zeroed" to { p, b -> LogFiles.zero(p, b.at + b.size / 2, b.end) },
            "the last block cut inside its header" to { p, b -> LogFiles.zero(p, b.at + 20, b.end) },
            "the last block's last byte zeroed" to { p, b -> LogFiles.zero(p, b.end - 1, b.end) },
            "the last block's tail overwritten with garbage" to { p, b ->
                LogFiles.write(p, (b.at + b.size / 2).toLong(), Random(7).nextBytes(b.size - b.size / 2))
            },
            "the last block's payload bytes partly overwritten" to { p, b ->
                LogFiles.write(
                    p,
                    (b.at + BlockHeader.SIZE + RecordFrame.HEADER_SIZE + 2).toLong(),
                    byteArrayOf(1, 2, 3, 4, 5),
                )
            },
        )

        for ((name, tear) in tears) {
            test("torn tail: $name is truncated and reported; everything before it survives") {
                val dir = TestLogs.tempDir()
                writeLog(dir, 20, batch = 5)
                val last = LogFiles.dataSegments(dir).last()
                val block = LogFiles.blocks(dir, last).last()
                block.firstSeq shouldBe 20
                block.count shouldBe 5
                tear(LogFiles.segment(dir, last), block)

                Kwal.open(TestLogs.scanned(dir)).use { wal ->
                    wal.recovery.truncatedBytes shouldBeGreaterThan 0L
                    wal.recovery.truncated shouldBe true
                    wal.recovery.corruption.shouldBeNull()
                    payloads(wal) shouldBe expected("a", 0L until 20)
                    wal.nextSequence("a") shouldBe 20
                    withTimeout(20_000) {
                        wal.append("a", TestLogs.payload("a", 20)) shouldBe 20
                        wal.appendBatch("a", (21L until 24).map { TestLogs.payload("a", it) }) shouldBe 21L..23L
                    }
                    payloads(wal) shouldBe expected("a", 0L until 24)
                }
                // the torn bytes are gone for good: a second reopen finds nothing to truncate
                reopenClean(dir, "a", 24)
            }
        }

        test("torn tail: truncatedBytes counts the bytes discarded") {
            val dir = TestLogs.tempDir()
            writeLog(dir, 10, batch = 3)
            val block = LogFiles.blocks(dir, 1).last()
            LogFiles.zero(LogFiles.segment(dir, 1), block.end - 1, block.end)
            // the torn block's last remaining byte: find it, the count is from the block's start through it
            val bytes = LogFiles.segment(dir, 1).readBytes()
            val lastNonZero = (block.end - 1 downTo block.at).first { bytes[it].toInt() != 0 }
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                wal.recovery.truncatedBytes shouldBe (lastNonZero + 1 - block.at).toLong()
                wal.recovery.droppedRecords shouldBe 3 // the torn block's header still passes its check
                payloads(wal) shouldBe expected("a", 0L until 10)
            }
            LogFiles.blocks(dir, 1).last().lastSeq shouldBe 9
            reopenClean(dir, "a", 10)
        }

        // ---- garbage after the data ----

        for ((name, gap) in listOf("right after the last block" to 0, "further on in the zero area" to 1000)) {
            test("garbage $name is a torn tail: truncated and reported, not an error") {
                val dir = TestLogs.tempDir()
                writeLog(dir, 10)
                val seg = LogFiles.segment(dir, 1)
                val end = LogFiles.blocks(dir, 1).last().end
                val garbage = Random(11).nextBytes(100).also {
                    it[0] = 0x11
                    it[99] = 0x22
                }
                LogFiles.write(seg, (end + gap).toLong(), garbage)

                Kwal.open(TestLogs.scanned(dir)).use { wal ->
                    wal.recovery.truncatedBytes shouldBe (gap + 100).toLong()
                    wal.recovery.corruption.shouldBeNull()
                    wal.recovery.droppedRecords shouldBe 0
                    payloads(wal) shouldBe expected("a", 0L until 10)
                    withTimeout(20_000) { wal.append("a", TestLogs.payload("a", 10)) shouldBe 10 }
                }
                reopenClean(dir, "a", 11)
            }
        }

        // ---- corruption in synced data ----

        val flips: List<Pair<String, (LogFiles.BlockInfo) -> Long>> = listOf(
            "a payload bit" to { b -> (b.at + BlockHeader.SIZE + RecordFrame.HEADER_SIZE + 3).toLong() },
            "a record length bit" to { b -> (b.at + BlockHeader.SIZE + 7).toLong() },
            "a record checksum bit" to { b -> (b.at + BlockHeader.SIZE + 1).toLong() },
            "a block header bit" to { b -> (b.at + BlockHeader.OFF_FIRST_SEQ + 7).toLong() },
            "a block magic bit" to { b -> b.at.toLong() },
        )

        for ((name, where) in flips) {
            test(
                "corruption: $name flipped in synced data fails the open naming file and offset; " +
                    "TRUNCATE salvages the prefix",
            ) {
                val dir = TestLogs.tempDir()
                writeLog(dir, 30)
                val seg = LogFiles.segment(dir, 1)
                val block = LogFiles.blocks(dir, 1).single { it.topicId != 0 && it.firstSeq == 15L }
                LogFiles.flipBit(seg, where(block), 0)
                val before = LogFiles.snapshot(dir)

                val e = shouldThrow<WalCorruptedException> { Kwal.open(TestLogs.scanned(dir)).close() }
                e.file shouldBe seg
                e.offset shouldBe block.at.toLong()
                e.message.shouldNotBeNull() shouldContain seg.name
                LogFiles.snapshot(dir) shouldBe before // the failed open changed nothing
                // and released the lock: the same FAIL open fails the same way again
                shouldThrow<WalCorruptedException> {
                    Kwal.open(TestLogs.scanned(dir)).close()
                }.offset shouldBe block.at.toLong()
                LogFiles.snapshot(dir) shouldBe before

                Kwal.open(TestLogs.scanned(dir, policy = CorruptionPolicy.TRUNCATE)).use { wal ->
                    wal.recovery.corruption.shouldNotBeNull() shouldContain "segment 1 offset ${block.at}"
                    wal.recovery.truncatedBytes shouldBeGreaterThan 0L
                    wal.recovery.droppedRecords shouldBeGreaterThanOrEqualTo 14L
                    payloads(wal) shouldBe expected("a", 0L until 15)
                    withTimeout(20_000) { wal.append("a", TestLogs.payload("a", 15)) shouldBe 15 }
                }
                reopenClean(dir, "a", 16)
            }
        }

        test("corruption in the last synced group has no later evidence: it is treated as a torn tail") {
            val dir = TestLogs.tempDir()
            writeLog(dir, 10)
            val block = LogFiles.blocks(dir, 1).last()
            LogFiles.flipBit(LogFiles.segment(dir, 1), (block.end - 1).toLong(), 3)
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                wal.recovery.corruption.shouldBeNull()
                wal.recovery.truncatedBytes shouldBeGreaterThan 0L
                payloads(wal) shouldBe expected("a", 0L until 9)
            }
        }

        test("unsynced data (Durability.None) damaged before a later unsynced group is a torn tail, not corruption") {
            val dir = TestLogs.tempDir()
            // every group's synced-through stays at the log's start: nothing later vouches for any of them
            writeLog(dir, 10, options = TestLogs.scanned(dir, durability = Durability.None))
            val blocks = LogFiles.blocks(dir, 1).filter { it.topicId != 0 }
            blocks.forEach { LogFiles.synced(it).offset shouldBe SegmentHeader.SIZE }
            LogFiles.flipBit(
                LogFiles.segment(dir, 1),
                (blocks[5].at + BlockHeader.SIZE + RecordFrame.HEADER_SIZE).toLong(),
                2,
            )
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                wal.recovery.corruption.shouldBeNull()
                wal.recovery.truncatedBytes shouldBeGreaterThan 0L
                wal.recovery.droppedRecords shouldBe 5 // blocks 5..9 each passed their header checks
                payloads(wal) shouldBe expected("a", 0L until 5)
            }
            reopenClean(dir, "a", 5)
        }

        // ---- damaged or missing segments ----

        /** Writes synced batches of 4 records until at least four segments hold data; returns the records written. */
        suspend fun writeFourSegments(dir: Path): Long {
            var n = 0L
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                withTimeout(30_000) {
                    while (LogFiles.dataSegments(dir).size < 4 || n < 160) {
                        wal.appendBatch("a", (n until n + 4).map { TestLogs.payload("a", it, size = 1500) }) shouldBe
                            (n until n + 4)
                        n += 4
                    }
                }
            }
            return n
        }

        val segmentDamage: List<Pair<String, (Path) -> Unit>> = listOf(
            "replaced by all zeros" to { p -> p.writeBytes(ByteArray(p.fileSize().toInt())) },
            "replaced by garbage" to { p -> p.writeBytes(Random(3).nextBytes(p.fileSize().toInt())) },
            "truncated to 10 bytes" to { p -> LogFiles.truncate(p, 10) },
            "missing (deleted)" to { p -> Files.delete(p) },
            "with a flipped bit in its segment header" to { p -> LogFiles.flipBit(p, 13, 1) },
        )

        for ((name, damage) in segmentDamage) {
            test("segment 2 of 4 $name: WalCorruptedException under FAIL, TRUNCATE keeps segment 1") {
                val dir = TestLogs.tempDir()
                val written = writeFourSegments(dir)
                val dataSegments = LogFiles.dataSegments(dir)
                dataSegments.size shouldBeGreaterThanOrEqualTo 4
                val inFirst = LogFiles.blocks(dir, 1).filter { it.topicId != 0 }
                val kept = inFirst.last().lastSeq + 1
                kept shouldBeGreaterThan 0L
                kept shouldBe inFirst.sumOf { it.count.toLong() }
                val seg2 = LogFiles.segment(dir, 2)
                damage(seg2)
                val before = LogFiles.snapshot(dir)

                val e = shouldThrow<WalCorruptedException> { Kwal.open(TestLogs.scanned(dir)).close() }
                e.file shouldBe seg2
                e.offset shouldBe 0
                LogFiles.snapshot(dir) shouldBe before

                Kwal.open(TestLogs.scanned(dir, policy = CorruptionPolicy.TRUNCATE)).use { wal ->
                    wal.recovery.corruption.shouldNotBeNull() shouldContain "segment 2"
                    wal.recovery.segments shouldBe 1
                    // records of later segments that still pass their checks (none of a destroyed segment's)
                    wal.recovery.droppedRecords shouldBeInRange 1L..(written - kept)
                    payloads(wal) shouldBe (0 until kept).map { TestLogs.payload("a", it, size = 1500).toList() }
                    wal.nextSequence("a") shouldBe kept
                    withTimeout(20_000) { wal.append("a", TestLogs.payload("a", kept, size = 1500)) shouldBe kept }
                }
                // segments after the damage were removed (the writer may have made a new segment 2 since)
                for (id in dataSegments.drop(2)) LogFiles.segment(dir, id).exists() shouldBe false
                Kwal.open(TestLogs.scanned(dir)).use { wal ->
                    wal.recovery.truncatedBytes shouldBe 0
                    wal.recovery.corruption.shouldBeNull()
                    payloads(wal).size shouldBe (kept + 1).toInt()
                }
            }
        }

        test("a middle segment with a sound header but its data zeroed, with synced data after it, is corruption") {
            val dir = TestLogs.tempDir()
            writeFourSegments(dir)
            val kept = LogFiles.blocks(dir, 1).filter { it.topicId != 0 }.last().lastSeq + 1
            val seg2 = LogFiles.segment(dir, 2)
            LogFiles.zero(seg2, SegmentHeader.SIZE, seg2.fileSize().toInt())
            val before = LogFiles.snapshot(dir)
            val e = shouldThrow<WalCorruptedException> { Kwal.open(TestLogs.scanned(dir)).close() }
            e.file shouldBe seg2
            e.offset shouldBe SegmentHeader.SIZE.toLong()
            LogFiles.snapshot(dir) shouldBe before
            Kwal.open(TestLogs.scanned(dir, policy = CorruptionPolicy.TRUNCATE)).use { wal ->
                wal.recovery.corruption.shouldNotBeNull()
                payloads(wal).size shouldBe kept.toInt()
                withTimeout(20_000) { wal.append("a", TestLogs.payload("a", kept, size = 1500)) shouldBe kept }
            }
            reopenCount(dir, kept + 1)
        }

        test("two segments swapped: the header names another segment, which is corruption") {
            val dir = TestLogs.tempDir()
            writeFourSegments(dir)
            val s2 = LogFiles.segment(dir, 2)
            val s3 = LogFiles.segment(dir, 3)
            val tmp = dir.resolve("swap")
            Files.move(s2, tmp)
            Files.move(s3, s2)
            Files.move(tmp, s3)
            val e = shouldThrow<WalCorruptedException> { Kwal.open(TestLogs.scanned(dir)).close() }
            e.file shouldBe s2
            e.offset shouldBe 0
        }

        test("a segment from another log is corruption") {
            val dir = TestLogs.tempDir()
            val other = TestLogs.tempDir()
            writeFourSegments(dir)
            writeFourSegments(other)
            val kept = LogFiles.blocks(dir, 1).filter { it.topicId != 0 }.last().lastSeq + 1
            Files.copy(
                LogFiles.segment(other, 2),
                LogFiles.segment(dir, 2),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING,
            )
            val e = shouldThrow<WalCorruptedException> { Kwal.open(TestLogs.scanned(dir)).close() }
            e.file shouldBe LogFiles.segment(dir, 2)
            e.offset shouldBe 0
            Kwal.open(TestLogs.scanned(dir, policy = CorruptionPolicy.TRUNCATE)).use { wal ->
                wal.recovery.corruption.shouldNotBeNull() shouldContain "another log"
                payloads(wal).size shouldBe kept.toInt()
            }
        }

        test("the first segment missing: FAIL refuses; TRUNCATE leaves an empty log") {
            val dir = TestLogs.tempDir()
            writeFourSegments(dir)
            Files.delete(LogFiles.segment(dir, 1))
            val e = shouldThrow<WalCorruptedException> { Kwal.open(TestLogs.scanned(dir)).close() }
            e.file shouldBe LogFiles.segment(dir, 1)
            e.offset shouldBe 0
            Kwal.open(TestLogs.scanned(dir, policy = CorruptionPolicy.TRUNCATE)).use { wal ->
                wal.recovery.corruption.shouldNotBeNull()
                wal.recovery.segments shouldBe 1
                wal.recovery.records shouldBe 0
                wal.nextSequence("a") shouldBe 0
                payloads(wal).shouldBeEmpty()
                withTimeout(20_000) { wal.append("a", TestLogs.payload("a", 0)) shouldBe 0 }
            }
            LogFiles.segmentIds(dir) shouldContainExactly listOf(1)
            reopenClean(dir, "a", 1)
        }

        test("the last segment file cut short inside its last block: a torn tail; the file is restored to full size") {
            val dir = TestLogs.tempDir()
            writeLog(dir, 20, batch = 5)
            val block = LogFiles.blocks(dir, 1).last()
            val seg = LogFiles.segment(dir, 1)
            LogFiles.truncate(seg, (block.at + block.size / 2).toLong())
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                wal.recovery.truncatedBytes shouldBeGreaterThan 0L
                wal.recovery.corruption.shouldBeNull()
                payloads(wal) shouldBe expected("a", 0L until 20)
                seg.fileSize() shouldBe (64L shl 10)
                withTimeout(20_000) { wal.append("a", TestLogs.payload("a", 20)) shouldBe 20 }
            }
            reopenClean(dir, "a", 21)
        }

        test("the last segment file cut short right after its data: nothing lost, the file is restored to full size") {
            val dir = TestLogs.tempDir()
            writeLog(dir, 10)
            val seg = LogFiles.segment(dir, 1)
            LogFiles.truncate(seg, LogFiles.blocks(dir, 1).last().end.toLong())
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                wal.recovery.truncatedBytes shouldBe 0
                payloads(wal) shouldBe expected("a", 0L until 10)
                seg.fileSize() shouldBe (64L shl 10)
                withTimeout(20_000) { wal.append("a", TestLogs.payload("a", 10)) shouldBe 10 }
            }
            reopenClean(dir, "a", 11)
        }

        test("a block copied right after the last block fails its position-bound check: garbage, not a duplicate") {
            val dir = TestLogs.tempDir()
            writeLog(dir, 10)
            val seg = LogFiles.segment(dir, 1)
            val block = LogFiles.blocks(dir, 1).last()
            val bytes = seg.readBytes().copyOfRange(block.at, block.end)
            LogFiles.write(seg, block.end.toLong(), bytes)
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                wal.recovery.truncatedBytes shouldBe bytes.size.toLong()
                wal.recovery.corruption.shouldBeNull()
                payloads(wal) shouldBe expected("a", 0L until 10)
            }
            reopenClean(dir, "a", 10)
        }

        test("a cleanly closed multi-segment log reopens with every record and nothing truncated") {
            val dir = TestLogs.tempDir()
            val written = writeFourSegments(dir)
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                wal.recovery.truncatedBytes shouldBe 0
                wal.recovery.corruption.shouldBeNull()
                wal.recovery.segments shouldBe LogFiles.dataSegments(dir).size
                payloads(wal) shouldBe (0 until written).map { TestLogs.payload("a", it, size = 1500).toList() }
            }
        }

        // ---- CONTINUED runs ----

        /** Writes 5 single records, then one batch bigger than a block (records 5..16), then [after] more singles. */
        suspend fun writeContinuedRun(dir: Path, after: Int): List<LogFiles.BlockInfo> {
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                withTimeout(30_000) {
                    for (i in 0L until 5) wal.append("a", TestLogs.payload("a", i)) shouldBe i
                    wal.appendBatch("a", (5L until 17).map { TestLogs.payload("a", it, size = 1000) }) shouldBe 5L..16L
                    for (i in 17L until 17 + after) wal.append("a", TestLogs.payload("a", i)) shouldBe i
                }
            }
            val run = LogFiles.blocks(dir, 1).filter { it.topicId != 0 && it.firstSeq in 5L..16L }
            run.size shouldBe 2
            run[0].continued shouldBe true
            run[1].continued shouldBe false
            run[0].firstSeq shouldBe 5
            run[1].lastSeq shouldBe 16
            run[1].at shouldBe run[0].end
            return run
        }

        test("a CONTINUED run torn in its second block: none of the batch survives") {
            val dir = TestLogs.tempDir()
            val run = writeContinuedRun(dir, after = 0)
            LogFiles.zero(LogFiles.segment(dir, 1), run[1].at + run[1].size / 2, run[1].end)
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                wal.recovery.truncatedBytes shouldBeGreaterThan 0L
                wal.recovery.corruption.shouldBeNull()
                wal.recovery.droppedRecords shouldBe 12 // both blocks of the run pass their header checks
                payloads(wal) shouldBe expected("a", 0L until 5)
                wal.nextSequence("a") shouldBe 5
                withTimeout(20_000) { wal.append("a", TestLogs.payload("a", 5)) shouldBe 5 }
            }
            // the first block of the run was zeroed too, not left behind
            LogFiles.blocks(dir, 1).filter { it.topicId != 0 }.map { it.firstSeq } shouldBe (0L..5L).toList()
            reopenClean(dir, "a", 6)
        }

        test("a CONTINUED run whose second block is missing entirely: none of the batch survives") {
            val dir = TestLogs.tempDir()
            val run = writeContinuedRun(dir, after = 0)
            LogFiles.zero(LogFiles.segment(dir, 1), run[1].at, run[1].end)
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                wal.recovery.truncatedBytes shouldBe run[0].size.toLong()
                payloads(wal) shouldBe expected("a", 0L until 5)
            }
            reopenClean(dir, "a", 5)
        }

        test("a CONTINUED run torn in its first block: none of the batch survives") {
            val dir = TestLogs.tempDir()
            val run = writeContinuedRun(dir, after = 0)
            LogFiles.zero(LogFiles.segment(dir, 1), run[0].at + 100, run[0].at + 200)
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                wal.recovery.corruption.shouldBeNull()
                payloads(wal) shouldBe expected("a", 0L until 5)
            }
            reopenClean(dir, "a", 5)
        }

        test("a CONTINUED run damaged in its second block with synced groups after it is corruption") {
            val dir = TestLogs.tempDir()
            val run = writeContinuedRun(dir, after = 3)
            val seg = LogFiles.segment(dir, 1)
            LogFiles.flipBit(seg, (run[1].end - 1).toLong(), 4)
            shouldThrow<WalCorruptedException> { Kwal.open(TestLogs.scanned(dir)).close() }.let {
                it.file shouldBe seg
                // the error names the bad block; the group is dropped from its first
                it.offset shouldBe run[1].at.toLong()
            }
            Kwal.open(TestLogs.scanned(dir, policy = CorruptionPolicy.TRUNCATE)).use { wal ->
                wal.recovery.corruption.shouldNotBeNull()
                payloads(wal) shouldBe expected("a", 0L until 5)
            }
            reopenClean(dir, "a", 5)
        }

        // ---- files in the directory ----

        test("stale .tmp segment files are deleted on open; unknown files are left alone") {
            val dir = TestLogs.tempDir()
            writeLog(dir, 3)
            val tmp2 = dir.resolve("seg-0000000002.kwal.tmp").also { it.writeBytes(ByteArray(5000) { 1 }) }
            val tmp9 = dir.resolve("seg-0000000009.kwal.tmp").also { it.writeBytes(ByteArray(0)) }
            val unknown = listOf(
                "notes.txt",
                "seg-1.kwal",
                "seg-0000000001.kwal.bak",
                "seg-00000000003.kwal",
                "tmp.kwal.tmp",
            ).map { dir.resolve(it).also { p -> p.writeBytes("keep ${p.name}".encodeToByteArray()) } }
            val sub = Files.createDirectory(dir.resolve("seg-0000000005.kwal.d"))
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                tmp2.exists() shouldBe false
                tmp9.exists() shouldBe false
                for (p in unknown) p.readBytes().decodeToString() shouldBe "keep ${p.name}"
                sub.exists() shouldBe true
                wal.recovery.truncatedBytes shouldBe 0
                payloads(wal) shouldBe expected("a", 0L until 3)
                withTimeout(20_000) { wal.append("a", TestLogs.payload("a", 3)) shouldBe 3 }
            }
            for (p in unknown) p.exists() shouldBe true
            reopenClean(dir, "a", 4)
        }

        test("a stale .tmp file in an otherwise empty directory: a fresh log, the .tmp deleted") {
            val dir = TestLogs.tempDir()
            val tmp = dir.resolve("seg-0000000001.kwal.tmp").also { it.writeBytes(ByteArray(100) { 7 }) }
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                tmp.exists() shouldBe false
                wal.recovery.records shouldBe 0
                withTimeout(20_000) { wal.append("a", TestLogs.payload("a", 0)) shouldBe 0 }
            }
            reopenClean(dir, "a", 1)
        }

        // ---- the report ----

        test("recovery.records grows with the records of a topic (registry records aside)") {
            val dir = TestLogs.tempDir()
            writeLog(dir, 9)
            val first = Kwal.open(TestLogs.scanned(dir)).use { it.recovery.records }
            first shouldBe 9L
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                withTimeout(20_000) {
                    wal.appendBatch("a", (9L until 14).map { TestLogs.payload("a", it) }) shouldBe 9L..13L
                }
            }
            Kwal.open(TestLogs.scanned(dir)).use { it.recovery.records shouldBe first + 5 }
        }

        test("recovery.records counts the records recovered") {
            val dir = TestLogs.tempDir()
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                withTimeout(20_000) {
                    for (i in 0L until 7) wal.append("a", TestLogs.payload("a", i))
                    wal.appendBatch("b", (0L until 5).map { TestLogs.payload("b", it) })
                    for (i in 0L until 3) wal.append("c", TestLogs.payload("c", i), Durability.None)
                }
            }
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                wal.recovery.records shouldBe 15
                wal.recovery.segments shouldBe 1
                wal.topics() shouldBe setOf("a", "b", "c")
            }
        }

        test("recovery.records counts only the records that survive a torn tail") {
            val dir = TestLogs.tempDir()
            writeLog(dir, 12, batch = 4)
            val block = LogFiles.blocks(dir, 1).last()
            LogFiles.zero(LogFiles.segment(dir, 1), block.end - 10, block.end)
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                wal.recovery.records shouldBe 12
                wal.recovery.droppedRecords shouldBe 4
            }
        }

        // ---- fresh logs ----

        test("an empty directory opens as a fresh log") {
            val dir = TestLogs.tempDir()
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                wal.recovery.segments shouldBe 1
                wal.recovery.records shouldBe 0
                wal.recovery.truncatedBytes shouldBe 0
                wal.recovery.droppedRecords shouldBe 0
                wal.recovery.corruption.shouldBeNull()
                wal.topics().shouldBeEmpty()
                wal.nextSequence("a") shouldBe 0
                payloads(wal).shouldBeEmpty()
                LogFiles.segment(dir, 1).fileSize() shouldBe (64L shl 10)
                withTimeout(20_000) { wal.append("a", TestLogs.payload("a", 0)) shouldBe 0 }
            }
            reopenClean(dir, "a", 1)
        }

        test("a directory that does not exist yet is created and opens as a fresh log") {
            val dir = TestLogs.tempDir().resolve("nested/wal")
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                wal.recovery.records shouldBe 0
                wal.recovery.truncated shouldBe false
                withTimeout(20_000) { wal.append("a", TestLogs.payload("a", 0)) shouldBe 0 }
            }
            reopenClean(dir, "a", 1)
        }

        test("a directory holding only the lock file opens as a fresh log") {
            val dir = TestLogs.tempDir()
            Files.createFile(dir.resolve(LogFiles.LOCK_FILE))
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                wal.recovery.segments shouldBe 1
                wal.recovery.records shouldBe 0
                wal.recovery.truncatedBytes shouldBe 0
                wal.recovery.corruption.shouldBeNull()
                wal.topics().shouldBeEmpty()
                withTimeout(20_000) { wal.append("a", TestLogs.payload("a", 0)) shouldBe 0 }
            }
            LogFiles.segmentIds(dir) shouldContainExactly listOf(1)
            reopenClean(dir, "a", 1)
        }

        test("a fresh log closed without appends reopens empty") {
            val dir = TestLogs.tempDir()
            Kwal.open(TestLogs.scanned(dir)).close()
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                wal.recovery.records shouldBe 0
                wal.recovery.truncatedBytes shouldBe 0
                wal.recovery.corruption.shouldBeNull()
                wal.topics().shouldBeEmpty()
            }
        }
    })
