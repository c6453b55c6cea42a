package dev.kwal.bench

import java.nio.file.Files
import java.nio.file.Path

/**
 * How kwal's open scales with the log: a child JVM ([CrashWriter]) writes a log of each size with non-durable
 * appends, then is killed with SIGKILL — after closing its log cleanly (`kwal-clean`) or not (`kwal`) — and this
 * times `Kwal.open` of what it left (page cache hot), with the segments recovery had to read.
 *
 * Usage: `ReopenScaleKt [--dir DIR] [--record BYTES] GiB...` (default: 1 4 10 GiB of 1 KiB records, under
 * `java.io.tmpdir`). After a kill the figure depends on how far the child's summary builder had got: it is killed
 * as soon as its last append returns.
 */
fun main(args: Array<String>) {
    var dir = Path.of(System.getProperty("java.io.tmpdir"))
    var record = 1024
    val sizes = ArrayList<Double>()
    var i = 0
    while (i < args.size) {
        when (args[i]) {
            "--dir" -> dir = Path.of(args[++i])
            "--record" -> record = args[++i].toInt()
            else -> sizes.add(args[i].toDouble())
        }
        i++
    }
    if (sizes.isEmpty()) sizes.addAll(listOf(1.0, 4.0, 10.0))
    println("REOPEN_SCALE record=$record load=${reopenLoad()}")
    for (gib in sizes) {
        val bytes = (gib * (1L shl 30)).toLong()
        for (mode in listOf("kwal-clean", "kwal")) {
            val log = Files.createTempDirectory(dir, "reopen-scale-")
            try {
                writeAndKill(mode, log, bytes, record)
                val times = ArrayList<Double>()
                var scanned = 0
                var segments = 0
                // After a kill only the first open is one; later ones follow a clean close (of that open).
                repeat(if (mode == "kwal") 1 else 3) {
                    val (ms, recovery) = timedKwalOpen(log, bytes / record)
                    times.add(ms)
                    scanned = recovery.segmentsScanned
                    segments = recovery.segments
                }
                val after = if (mode == "kwal") "kill" else "clean close"
                println(
                    "REOPEN_SCALE size=${gib}GiB after=$after open_ms=${"%.1f".format(
                        times.sorted()[times.size / 2],
                    )} " +
                        "all_ms=${times.joinToString(",") { "%.1f".format(it) }} segments=$segments " +
                        "scanned=$scanned load=${reopenLoad()}",
                )
            } finally {
                log.toFile().deleteRecursively()
            }
        }
    }
}

private fun reopenLoad(): String =
    runCatching { Files.readString(Path.of("/proc/loadavg")).split(" ").take(3).joinToString(" ") }.getOrDefault("?")
