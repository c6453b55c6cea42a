package dev.kwal

import dev.kwal.engine.Kwal
import dev.kwal.engine.format.SegmentHeader
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.flow.toList

/**
 * An engine bug found by the power-cut torture (PowerCutTorture, seed 773728513363593578, cut 3175; options of the
 * disk's opens changing from 266 KiB to 946 KiB segments, maxGroupBytes larger than a segment), reduced here; fixed
 * by checking every byte of a segment that follows an empty one.
 *
 * The state: segment k is empty (the groups written to it were never synced, and a power loss lost them all), and
 * segment k+1 — which the writer had rolled into, also unsynced — kept some of its later sectors but lost its first
 * one, so the 48 bytes at its offset 64 are zero while bytes after them are not. This is what a power loss leaves
 * when a group larger than a segment, or several groups under Durability.None, fill segment k and go on into k+1.
 *
 * FORMAT.md (Recovery, step 4) says an empty segment followed by a segment with data is a stop at offset 64 of the
 * empty one: here a torn tail (no block vouches for it), so recovery should delete segment k+1 and continue in
 * segment k. Recovery checks for data after an empty segment only in the 48-byte window at offset 64 of the next
 * segment (`BlockHeader.isZero(maps[index], SegmentHeader.SIZE)` in `Recovery.scan`), so it misses it; the scan of
 * segment k+1 then stops on the nonzero bytes after its zero window, at (k+1, 64), and the truncation zeroes segment
 * k+1 from there and makes it the active segment — leaving the empty segment k in the middle of the log. New
 * appends go to segment k+1 and are acknowledged; the next open finds "segment k is empty but a later one has data
 * (later blocks show it had been synced)": under CorruptionPolicy.FAIL the open fails (WalCorruptedException), under
 * TRUNCATE every record after it — acknowledged under Durability.Sync — is dropped.
 */
class EmptySegmentGapSpec :
    FunSpec({
        test(
            "an empty segment followed by one whose first sector was lost: records appended after recovery survive " +
                "a reopen",
        ) {
            val dir = TestLogs.tempDir()
            // 64 KiB segments, single appends (a unit never spans segments; each append is its own group): segment 1
            // fills (21 records), the writer rolls into segment 2 and prepares segment 3. The last appends, those
            // in segment 2, are made under Durability.None.
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                repeat(25) { i ->
                    wal.append("t", ByteArray(3000) { 1 }, if (i < 15) Durability.Sync else Durability.None)
                }
            }
            LogFiles.segmentIds(dir) shouldBe listOf(1, 2, 3)
            LogFiles.dataSegments(dir) shouldBe listOf(1, 2)
            // topic 0 is the registry
            val inFirst = LogFiles.blocks(dir, 1).filter { it.topicId != 0 }.sumOf { it.count }
            // The power loss (as if it came before close() synced them): segment 2's unsynced groups are gone, and
            // segment 3 holds bytes of a torn write whose first sector (offset 64..511) was lost.
            val seg2 = LogFiles.segment(dir, 2)
            LogFiles.zero(seg2, SegmentHeader.SIZE, seg2.toFile().length().toInt())
            LogFiles.write(LogFiles.segment(dir, 3), 512, ByteArray(700) { 0x5A })

            val acked = Kwal.open(TestLogs.scanned(dir)).use { wal ->
                wal.recovery.corruption.shouldBeNull() // a torn tail: no block says the bytes of segment 3 were synced
                wal.nextSequence("t") shouldBe inFirst.toLong()
                List(10) { wal.append("t", ByteArray(3000) { 2 }) } // acknowledged under Durability.Sync
            }
            // Fails: WalCorruptedException "corruption at segment 2 offset 64: segment 2 is empty but a later one has
            // data (later blocks show it had been synced)". Segment 2 was left empty, and the appends went to
            // segment 3.
            Kwal.open(TestLogs.scanned(dir)).use { wal ->
                wal.recovery.corruption.shouldBeNull()
                wal.replay("t").toList().map { it.sequence }.takeLast(10) shouldBe acked
            }
            // Under TRUNCATE the same log opens (checked with this test enabled: it drops the 10 acknowledged records,
            // "truncatedBytes=30600, droppedRecords=10, corruption=corruption at segment 2 offset 64").
            Kwal.open(TestLogs.scanned(dir, policy = CorruptionPolicy.TRUNCATE)).use { wal ->
                wal.replay("t").toList().size shouldBe inFirst + 10
            }
        }
    })
