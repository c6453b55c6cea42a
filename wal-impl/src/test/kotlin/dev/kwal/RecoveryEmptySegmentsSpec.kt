package dev.kwal

import dev.kwal.engine.Kwal
import dev.kwal.engine.KwalEngine
import dev.kwal.engine.format.SegmentHeader
import dev.kwal.engine.io.FaultyFileIo
import dev.kwal.engine.io.FaultyFileIo.Op
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.flow.toList
import java.nio.ByteBuffer
import java.nio.file.Files
import java.nio.file.Path

/**
 * Two recovery bugs found in review while restructuring `Recovery.kt` (issue 11), each reduced to a test that failed
 * before its fix: both left a log that the next open refused under CorruptionPolicy.FAIL, although only empty
 * segments were involved.
 */
class RecoveryEmptySegmentsSpec :
    FunSpec({

        /** A 64 KiB-segment log with [records] synced records of "t" in segment 1; returns its log id. */
        suspend fun written(dir: Path, records: Int): Long {
            Kwal.open(TestLogs.small(dir)).use { wal ->
                repeat(records) { wal.append("t", TestLogs.payload("t", it.toLong())) }
            }
            LogFiles.segmentIds(dir) shouldBe listOf(1)
            val header = ByteBuffer.wrap(Files.readAllBytes(LogFiles.segment(dir, 1)), 0, SegmentHeader.SIZE)
            return (SegmentHeader.decode(header) as SegmentHeader.Result.Ok).header.logId
        }

        /** Writes segment [id] of log [logId] as the writer pre-builds one: a header, then zeros to [size]. */
        fun emptySegment(dir: Path, id: Int, size: Int, logId: Long) {
            val bytes = ByteArray(size)
            SegmentHeader(id, size, logId, System.currentTimeMillis()).encode().get(bytes, 0, SegmentHeader.SIZE)
            Files.write(LogFiles.segment(dir, id), bytes)
        }

    /*
     * Spares of another size are deleted oldest first, with one directory sync after the last deletion
     * (Handover.spares; before issue 11, Recovery.scan's "no stop" branch) — not newest first with each deletion
     * made durable before the next, the rule truncation follows so that "a cut at any moment leaves an unbroken run
     * of segments, never a gap that would read as corruption" (FORMAT.md, Recovery step 7). A process killed between
     * two of those deletions — or a power cut before the sync that keeps the first deletion and loses a later one
     * (PowerLossFileIo models both) — leaves a gap: the next open fails with "segment file seg-…2.kwal is missing"
     * under FAIL, although nothing but empty segments was ever lost.
     *
     * The state needs two or more empty segments after the last one holding data, and segmentSize changed between
     * opens: the writer had rolled into segment k+1 and built k+2 in the background, a crash lost every unsynced
     * group of k+1 (Durability.None or Interval), and the log is then opened with another segmentSize.
     */
        test("a kill between two deletions of spares of another size leaves no gap")
            .config {
                val dir = TestLogs.tempDir()
                val logId = written(dir, 10)
                emptySegment(dir, 2, 64 shl 10, logId)
                emptySegment(dir, 3, 64 shl 10, logId)
                val bigger = WalOptions(dir, segmentSize = 128 shl 10, blockSize = 8 shl 10, maxRecordSize = 4 shl 10)
                // The open dies at the second deletion: the first one (of segment 2, the older) is done.
                val io = FaultyFileIo().apply { failNth(Op.DELETE, 2) }
                runCatching { KwalEngine.open(bigger, io).close() }.isFailure shouldBe true
                io.allFired() shouldBe true
                Kwal.open(bigger).use { wal ->
                    wal.recovery.corruption.shouldBeNull()
                    wal.replay("t").toList().size shouldBe 10
                }
            }

    /*
     * After a structural stop at the header of segment k (P = offset 0: a bad header, a missing segment, another
     * log's segment — corruption, truncated under TRUNCATE), recovery keeps segments 1..k-1 and makes k-1 the active
     * one, even when it and the ones before it are empty (Truncation.truncate keeps `p.segmentId - 1` segments;
     * Recovery.truncateAndContinue takes the tail `dataEnds[kept - 1]`; Handover.segments seals all but the last).
     * With two empty segments before k, the first of them is handed to the writer as a *sealed* segment: the log
     * now has an empty segment in its middle. The writer appends into segment k-1, and the next open reads "segment
     * k-2 is empty but a later one has data"; the new blocks' synced-through positions lie past it, so it is
     * corruption: the open fails under FAIL, and under TRUNCATE every record acknowledged since is dropped (checked:
     * droppedRecords=5 here). With one empty segment before k it is the active one, and all is well.
     */
        test("after a bad header past two empty segments, records appended under TRUNCATE survive a reopen")
            .config {
                val dir = TestLogs.tempDir()
                val logId = written(dir, 10)
                emptySegment(dir, 2, 64 shl 10, logId)
                emptySegment(dir, 3, 64 shl 10, logId)
                emptySegment(dir, 4, 64 shl 10, logId)
                LogFiles.flipBit(LogFiles.segment(dir, 4), 20) // segment 4's header is corrupt
                Kwal.open(TestLogs.small(dir, policy = CorruptionPolicy.TRUNCATE)).use { wal ->
                    wal.recovery.corruption shouldBe
                        "corruption at segment 4 offset 0: segment header checksum mismatch"
                    repeat(5) { wal.append("t", TestLogs.payload("t", 10L + it)) }
                }
                Kwal.open(TestLogs.small(dir)).use { wal ->
                    // FAIL: the log must be sound
                    wal.recovery.corruption.shouldBeNull()
                    wal.replay("t").toList().size shouldBe 15
                }
            }
    })
