package dev.kwal.bench

import java.nio.file.Files
import java.nio.file.Path
import kotlin.random.Random

/**
 * kwal alone under one append load of the comparison runner, for profiling (JFR, async-profiler, strace): no peers, no
 * ceiling, so every sample and system call is kwal's (and the harness's coroutines').
 *
 * ```
 * java [-XX:StartFlightRecording=...] -cp bench/target/benchmarks.jar dev.kwal.bench.AppendProfileKt \
 *   [appenders=1024] [durable=true] [seconds=3] [rounds=5] [topics=1] [size=100] [dir]
 * ```
 *
 * Each round opens a fresh log (the open inside the window, as in the runner) and prints one line: records/s and
 * process CPU ns per record; then the medians.
 */
fun main(args: Array<String>) {
    val appenders = args.getOrNull(0)?.toInt() ?: 1024
    val durable = args.getOrNull(1)?.toBoolean() ?: true
    val seconds = args.getOrNull(2)?.toDouble() ?: 3.0
    val rounds = args.getOrNull(3)?.toInt() ?: 5
    val topics = args.getOrNull(4)?.toInt() ?: 1
    val size = args.getOrNull(5)?.toInt() ?: 100
    val base = args.getOrNull(6)?.let { Path.of(it) } ?: Files.createTempDirectory("kwal-prof")
    val payload = Random(7).nextBytes(size)
    val names = Array(topics) { "topic-%05d".format(it) }
    val load = Load(appenders, payload, seconds, topic = { a, k -> names[((a + k * appenders) % topics).toInt()] })
    val rates = DoubleArray(rounds)
    val cpus = DoubleArray(rounds)
    for (i in 0 until rounds) {
        val dir = base.resolve("round-$i")
        val s = KwalSubject(durable)
        val r = try {
            s.run(load, dir)
        } finally {
            runCatching { s.close() }
            dir.toFile().deleteRecursively()
        }
        rates[i] = r.perSecond
        cpus[i] = r.cpuPerRecord
        println(
            "PROFILE round=$i appenders=$appenders durable=$durable topics=$topics size=$size " +
                "rec_per_s=%.0f cpu_ns_per_rec=%.0f open_ms=%.1f".format(
                    r.perSecond,
                    r.cpuPerRecord,
                    r.openNanos / 1e6,
                ),
        )
    }
    base.toFile().deleteRecursively()
    rates.sort()
    cpus.sort()
    println("PROFILE median rec_per_s=%.0f cpu_ns_per_rec=%.0f".format(rates[rounds / 2], cpus[rounds / 2]))
}
