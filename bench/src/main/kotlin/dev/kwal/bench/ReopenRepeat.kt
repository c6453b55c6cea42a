package dev.kwal.bench

import java.nio.file.Files
import java.nio.file.Path

/**
 * Times `Kwal.open` of one existing log again and again in one JVM (the first open is the cold-JIT one a fresh
 * process pays; the later ones show the warm cost). If `DIR` holds no log, a child JVM ([CrashWriter]) first writes
 * `GiB` of 1 KiB records into it and closes it cleanly. The log is left in place (delete it yourself).
 *
 * Usage: `ReopenRepeatKt DIR GiB [OPENS]` (default 20 opens).
 */
fun main(args: Array<String>) {
    val dir = Path.of(args[0])
    val gib = args[1].toDouble()
    val opens = args.getOrNull(2)?.toInt() ?: 20
    val record = 1024
    val bytes = (gib * (1L shl 30)).toLong()
    Files.createDirectories(dir)
    if (Files.list(dir).use { s -> s.noneMatch { it.fileName.toString().endsWith(".kwal") } }) {
        writeAndKill("kwal-clean", dir, bytes, record)
    }
    val times = ArrayList<Double>()
    repeat(opens) { i ->
        val (ms, recovery) = timedKwalOpen(dir, bytes / record)
        times.add(ms)
        println(
            "REOPEN_REPEAT open=$i open_ms=${"%.1f".format(ms)} segments=${recovery.segments} " +
                "scanned=${recovery.segmentsScanned}",
        )
    }
    val warm = times.drop(1).sorted()
    println(
        "REOPEN_REPEAT first_ms=${"%.1f".format(times[0])} warm_median_ms=${
            if (warm.isEmpty()) "-" else "%.1f".format(warm[warm.size / 2])
        } warm_min_ms=${warm.minOrNull()?.let { "%.1f".format(it) } ?: "-"}",
    )
}
