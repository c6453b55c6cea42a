package dev.kwal

import java.nio.file.Files
import java.nio.file.Path

/** Helpers shared by the specs: fresh directories and small-segment options that make rolls frequent. */
object TestLogs {
    fun tempDir(prefix: String = "kwal-test"): Path = Files.createTempDirectory(prefix)

    fun small(dir: Path, durability: Durability = Durability.Sync, policy: CorruptionPolicy = CorruptionPolicy.FAIL) =
        WalOptions(
            directory = dir,
            segmentSize = 64 shl 10,
            blockSize = 8 shl 10,
            maxRecordSize = 4 shl 10,
            maxGroupBytes = 16 shl 10,
            durability = durability,
            corruptionPolicy = policy,
        )

    /**
     * [small], but every open reads every segment ([WalOptions.verifyOnOpen]): for specs of recovery's scan that damage
     * segments an open would otherwise know from their summaries.
     */
    fun scanned(dir: Path, durability: Durability = Durability.Sync, policy: CorruptionPolicy = CorruptionPolicy.FAIL) =
        small(dir, durability, policy).toBuilder().verifyOnOpen(true).build()

    fun payload(topic: String, seq: Long, size: Int = 16 + (seq % 50).toInt()): ByteArray {
        val base = "$topic:$seq:".encodeToByteArray()
        return ByteArray(maxOf(size, base.size)) { i -> if (i < base.size) base[i] else (i * 31 + seq).toByte() }
    }
}
