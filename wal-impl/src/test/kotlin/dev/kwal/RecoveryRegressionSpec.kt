package dev.kwal

import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.RecordFrame
import dev.kwal.engine.format.SegmentHeader
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.nulls.shouldNotBeNull
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.flow.toList
import java.nio.ByteBuffer
import java.nio.channels.FileChannel
import java.nio.file.StandardOpenOption.READ
import java.nio.file.StandardOpenOption.WRITE

/** Recovery bugs found in review, each with the test that failed before its fix. */
class RecoveryRegressionSpec : FunSpec({

    test("an empty spare segment of an older, smaller size is not used when segmentSize grows") {
        val dir = TestLogs.tempDir()
        // 64 KiB segments: enough records to roll, so the writer pre-creates the next segment as a spare.
        Kwal.open(TestLogs.small(dir)).use { wal -> repeat(40) { wal.append("t", ByteArray(3000)) } }
        val bigger = WalOptions(dir, segmentSize = 1 shl 20, blockSize = 64 shl 10, maxRecordSize = 8 shl 10)
        Kwal.open(bigger).use { wal: Wal ->
            // ~120 KB: fits a 1 MiB segment, not a 64 KiB one. It used to roll into the old spare and fail.
            val range = wal.appendBatch("t", List(30) { ByteArray(4000) })
            range shouldBe (40L until 70L)
        }
        Kwal.open(bigger).use { it.replay("t").toList().size shouldBe 70 }
    }

    test("a registry record with an invalid name, whose checksums pass, is corruption that TRUNCATE can cut") {
        val dir = TestLogs.tempDir()
        Kwal.open(TestLogs.small(dir)).use { wal ->
            wal.append("a", byteArrayOf(1))
            repeat(5) { wal.append("b", byteArrayOf(2)) } // "b" is registered by the second group
        }
        // Rename topic "b" to "/" in its registry record, re-sealing the record's checksum.
        val seg = dir.resolve("seg-0000000001.kwal")
        FileChannel.open(seg, READ, WRITE).use { ch ->
            val map = ch.map(FileChannel.MapMode.READ_WRITE, 0, ch.size())
            var at = SegmentHeader.SIZE
            var found = false
            while (!found && map.getInt(at) == BlockHeader.MAGIC) {
                val body = map.getInt(at + BlockHeader.OFF_BODY_LENGTH)
                if (map.getInt(at + BlockHeader.OFF_TOPIC) == 0 && map.getLong(at + BlockHeader.OFF_FIRST_SEQ) == 1L) {
                    val frame = ByteBuffer.allocate(RecordFrame.HEADER_SIZE + 1)
                    RecordFrame.Codec().encode(frame, 0, 1L, "/".encodeToByteArray())
                    map.put(at + BlockHeader.SIZE, frame.array())
                    found = true
                }
                at += BlockHeader.SIZE + body
            }
            found shouldBe true
            map.force()
        }
        shouldThrow<WalCorruptedException> { Kwal.open(TestLogs.small(dir)).close() }
        Kwal.open(TestLogs.small(dir, policy = CorruptionPolicy.TRUNCATE)).use { wal ->
            wal.recovery.corruption.shouldNotBeNull()
            wal.replay("a").toList().size shouldBe 1
            wal.topics() shouldBe setOf("a")
            wal.append("b", byteArrayOf(3)) shouldBe 0L
        }
    }
})
