package dev.kwal

import dev.kwal.engine.Kwal
import dev.kwal.engine.KwalEngine
import dev.kwal.engine.format.SegmentSummary
import dev.kwal.engine.io.FaultyFileIo
import dev.kwal.engine.storage.SummaryStore
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.ints.shouldBeGreaterThan
import io.kotest.matchers.ints.shouldBeLessThanOrEqual
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.withTimeout
import java.nio.ByteBuffer
import java.nio.channels.FileChannel
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.StandardOpenOption
import kotlin.io.path.name

/**
 * Fast reopen: segment summaries (`seg-N.sum`) stand for sealed segments at open, so an open reads the summaries and
 * scans only the tail; what that leaves unchecked at open is checked at read, and `verifyOnOpen` checks it all.
 */
class FastReopenSpec :
    FunSpec({
        val newDir = Contract.dirs(this)
        val topics = listOf("a", "b", "c")
        val n = 3000L

        fun options(dir: Path) = TestLogs.small(dir, Durability.None).toBuilder().retentionIntervalMillis(0).build()

        /** Records 0 until [n] of each topic, interleaved, about 40 segments of 64 KiB. */
        suspend fun fill(wal: Wal, from: Long = 0, until: Long = n) {
            for (s in from until until) for (t in topics) wal.append(t, TestLogs.payload(t, s, 200)) shouldBe s
        }

        suspend fun Wal.holds(until: Long = n) {
            for (t in topics) {
                val got = replay(t).toList()
                got.map { it.sequence } shouldBe (0L until until).toList()
                got.forEach { it.payload.toList() shouldBe TestLogs.payload(t, it.sequence, 200).toList() }
            }
            read("b", until / 2)!!.payload.toList() shouldBe TestLogs.payload("b", until / 2, 200).toList()
        }

        fun segments(dir: Path): List<Path> =
            Files.list(dir).use { s -> s.filter { it.name.matches(Regex("seg-\\d+\\.kwal")) }.toList().sorted() }

        /**
         * Copies the log's files as a killed process leaves them (the page cache's content); a file that goes while the
         * directory is listed (a spare's temporary file, renamed) is left out, as a crash a moment later would.
         */
        fun crashCopy(dir: Path, copy: Path) {
            for (f in Files.list(dir).use { s -> s.toList() }.filter { !it.name.endsWith(".lock") }) {
                try {
                    Files.copy(f, copy.resolve(f.name))
                } catch (e: java.nio.file.NoSuchFileException) {
                    // renamed or deleted meanwhile
                }
            }
        }

        fun flip(file: Path, at: Long) = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE).use {
            val b = ByteBuffer.allocate(1)
            it.read(b, at)
            b.put(0, (b.get(0).toInt() xor 0x10).toByte()).rewind()
            it.write(b, at)
        }

        test("after a clean close an open scans only the last segment; appends go on and the next open does the same") {
            val dir = newDir()
            Kwal.open(options(dir)).use { fill(it) }
            val total = segments(dir).size
            total shouldBeGreaterThan 20
            Kwal.open(options(dir)).use { wal ->
                withClue(wal.recovery) {
                    // The last segment, from where its summary ends, and the spare after it (a pre-built empty one).
                    wal.recovery.segmentsScanned shouldBeLessThanOrEqual 2
                    wal.recovery.records shouldBe 3 * n // from the summaries, and the last segment's scan
                }
                wal.holds()
                fill(wal, n, n + 500)
            }
            Kwal.open(options(dir)).use { wal ->
                wal.recovery.segmentsScanned shouldBeLessThanOrEqual 2
                wal.holds(n + 500)
            }
            // A full check of the same log agrees.
            Kwal.open(options(dir).toBuilder().verifyOnOpen(true).build()).use { wal ->
                wal.recovery.segmentsScanned shouldBe segments(dir).size
                wal.recovery.records shouldBe 3 * (n + 500)
                wal.holds(n + 500)
            }
        }

        test("an open opens, maps and lists no more for a long log than for a short one: one read per summary") {
            /** The seam calls of an open (and close) of a log of [until] records of each topic, closed cleanly. */
            suspend fun openCalls(until: Long): Pair<Map<FaultyFileIo.Op, Int>, Int> {
                val dir = newDir()
                Kwal.open(options(dir)).use { fill(it, until = until) }
                val io = FaultyFileIo()
                return KwalEngine.open(options(dir), io).use { wal ->
                    wal.recovery.segmentsScanned shouldBeLessThanOrEqual 2 // the active segment, and a spare if any
                    io.counts() to wal.recovery.segments - 1
                }
            }
            val (short, shortSealed) = openCalls(150)
            val (long, longSealed) = openCalls(n)
            shortSealed shouldBeGreaterThan 0
            longSealed shouldBeGreaterThan shortSealed + 20
            // The same files: the active segment, and spares (one log may have a spare the other lacks, or be building
            // one in the background). Opening the sealed segments, or mapping the summaries, would take dozens more.
            for (op in listOf(FaultyFileIo.Op.OPEN, FaultyFileIo.Op.MAP, FaultyFileIo.Op.FORCE)) {
                withClue("$op: $short vs $long") { long.getValue(op) shouldBeLessThanOrEqual short.getValue(op) + 4 }
            }
            long.getValue(FaultyFileIo.Op.LIST) shouldBe 1
            // The manifest (if any) and one summary per segment summarized, each read once.
            (long.getValue(FaultyFileIo.Op.READ) - short.getValue(FaultyFileIo.Op.READ)) shouldBe
                longSealed - shortSealed
        }

        test("after a crash (the files as a killed process leaves them) an open scans only what was not summarized") {
            val dir = newDir()
            val copy = newDir()
            Kwal.open(options(dir)).use { wal ->
                fill(wal)
                val summaries = (wal as KwalEngine).summaries!!
                withTimeout(30_000) { while (summaries.written < segments(dir).size - 2) delay(10) }
                // What a SIGKILL leaves: every write the process made (in the page cache), no close.
                crashCopy(dir, copy)
            }
            val total = segments(copy).size
            Kwal.open(options(copy)).use { wal ->
                withClue(wal.recovery) { wal.recovery.segmentsScanned shouldBeLessThanOrEqual 4 }
                wal.holds()
            }
            total shouldBeGreaterThan 20
        }

        test(
            "a damaged record in a summarized segment: the open goes on, the read refuses it; verifyOnOpen refuses the open",
        ) {
            val dir = newDir()
            Kwal.open(options(dir)).use { wal ->
                fill(wal)
                // Synced, and a later block says so: damage before it is corruption, not a torn tail.
                wal.sync()
                fill(wal, n, n + 1)
            }
            // A payload byte of a record in segment 2, well inside its data.
            val file = segments(dir)[1]
            flip(file, 20_000)
            Kwal.open(options(dir)).use { wal ->
                wal.recovery.segmentsScanned shouldBeLessThanOrEqual 2
                wal.recovery.corruption shouldBe null
                shouldThrow<WalCorruptedException> { for (t in topics) wal.replay(t).toList() }
            }
            val e = shouldThrow<WalCorruptedException> {
                Kwal.open(options(dir).toBuilder().verifyOnOpen(true).build()).close()
            }
            e.file shouldBe file
        }

        test("a torn, missing or foreign summary is no summary: the open scans from the last sound one") {
            val dir = newDir()
            Kwal.open(options(dir)).use { fill(it) }
            val total = segments(dir).size
            // A crash between writing a summary and renaming it into place: only the temporary file is there (KillSpec
            // found an open that took it for a summary).
            Files.move(dir.resolve(SummaryStore.nameOf(4)), dir.resolve(SummaryStore.nameOf(4) + ".tmp"))
            Kwal.open(options(dir)).use { wal ->
                withClue(wal.recovery) { wal.recovery.segmentsScanned shouldBe total - 2 } // from where 3's ends
                wal.holds()
            }
            Files.exists(dir.resolve(SummaryStore.nameOf(4) + ".tmp")) shouldBe false
            val store = SummaryStore.nameOf(6)
            // Torn: cut short, as a crash in the middle of writing it (were it not written to a temporary file first).
            val torn = dir.resolve(store)
            Files.write(torn, Files.readAllBytes(torn).copyOf(40))
            Files.write(dir.resolve(SummaryStore.nameOf(9) + ".tmp"), ByteArray(10)) // a write a crash cut short
            Kwal.open(options(dir)).use { wal ->
                withClue(wal.recovery) { wal.recovery.segmentsScanned shouldBe total - 4 } // from where 5's ends
                wal.holds()
            }
            Files.exists(dir.resolve(SummaryStore.nameOf(9) + ".tmp")) shouldBe false
            // The next open finds them written again (the close summarizes what was behind).
            Kwal.open(options(dir)).use { wal ->
                wal.recovery.segmentsScanned shouldBeLessThanOrEqual 2
                wal.holds()
            }
            // Another log's summary in place of segment 3's: not chained, so no summary from there on.
            val other = newDir()
            Kwal.open(options(other)).use { fill(it) }
            Files.copy(
                other.resolve(SummaryStore.nameOf(3)),
                dir.resolve(SummaryStore.nameOf(3)),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING,
            )
            Kwal.open(options(dir)).use { wal ->
                wal.recovery.segmentsScanned shouldBe total - 1 // from where 2's ends
                wal.holds()
            }
        }

        test("a manifest that names topics registered after a summarized segment: the registry goes on from the log") {
            // The summaries' registry count was taken as at least the manifest's, as if every name the manifest holds
            // came before the tail; a name registered in the tail then read as a repeat ("topic 0 continues at
            // sequence 2, expected 3"), and a TRUNCATE open cut the log there (the power-cut torture found it).
            val dir = newDir()
            val copy = newDir()
            val opts = options(dir).toBuilder().topicRetention(mapOf("a" to Retention.records(10)))
                .compactionThreshold(0.0).build()
            Kwal.open(opts).use { wal ->
                for (s in 0L until 600) wal.append("a", TestLogs.payload("a", s, 200)) // segments 1 and 2, and on
                wal.append("b", TestLogs.payload("b", 0, 200)) // registered in segment 3
                for (s in 600L until 1400) wal.append("a", TestLogs.payload("a", s, 200)) // segments 3 to 6
                wal.append("c", TestLogs.payload("c", 0, 200)) // registered in the active segment
                wal.applyRetention().segmentsDeleted shouldBe 2 // the manifest: a, b and c; the log from segment 3
                val summaries = (wal as KwalEngine).summaries!!
                withTimeout(30_000) { while (summaries.written < 3) delay(10) }
                // What a SIGKILL leaves: no summary of the active segment, whose registry block names "c".
                crashCopy(dir, copy)
            }
            Kwal.open(options(copy).toBuilder().corruptionPolicy(CorruptionPolicy.FAIL).build()).use { wal ->
                withClue(wal.recovery) {
                    wal.recovery.corruption shouldBe null
                    (wal.recovery.segmentsScanned < segments(copy).size) shouldBe true // summaries were used
                }
                wal.topics() shouldBe setOf("a", "b", "c")
                wal.replay("c").toList().map { it.sequence } shouldBe listOf(0L)
                wal.replay("b").toList().map { it.sequence } shouldBe listOf(0L)
                wal.nextSequence("a") shouldBe 1400
            }
        }

        test("summaries that disagree with the log make the open read every segment") {
            val dir = newDir()
            Kwal.open(options(dir)).use { fill(it) }
            val total = segments(dir).size
            // Segment 4's summary, sound and chained, but saying its first run holds one record more than it does.
            val path = dir.resolve(SummaryStore.nameOf(4))
            val s = SegmentSummary.decode(Files.readAllBytes(path))!!
            val r = s.runs[0]
            val wrong = SegmentSummary(
                s.segmentId, s.segmentSize, s.logId, s.from, s.to, s.records, s.newestTimestamp, s.firstName,
                s.namesAt, s.names,
                listOf(SegmentSummary.Run(r.topicId, r.firstSeq, r.position, r.blocks, r.bytes, r.records + 1)) +
                    s.runs.drop(1),
                s.relocated,
            )
            Files.write(path, wrong.encode().let { b -> ByteArray(b.remaining()).also { b.get(it) } })
            Kwal.open(options(dir)).use { wal ->
                withClue(wal.recovery) { wal.recovery.segmentsScanned shouldBe total }
                wal.holds()
            }
        }
    })
