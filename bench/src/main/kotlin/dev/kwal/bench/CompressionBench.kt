package dev.kwal.bench

import dev.kwal.Compression
import dev.kwal.Durability
import dev.kwal.WalOptions
import dev.kwal.engine.Kwal
import kotlinx.coroutines.runBlocking
import java.lang.management.ManagementFactory
import java.nio.channels.FileChannel
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.StandardOpenOption
import kotlin.io.path.listDirectoryEntries
import kotlin.random.Random

/**
 * What compression buys and costs on realistic payloads: JSON order events of about 200-500 bytes, appended in
 * batches to one topic, for each of no compression, LZ4 and zstd (levels 1 and 3). For each it reports the payload
 * and log bytes (ratio = payload / log), append throughput (payload MB/s, `Durability.None`: the CPU path, not the
 * disk's sync), recovery time on reopen (which decompresses and checks every block) and replay throughput.
 *
 * ```
 * mvn -B -ntp -q -pl bench -am -DskipTests -Pbench package
 * java -cp bench/target/benchmarks.jar dev.kwal.bench.CompressionBenchKt [events=200000] [batch=100] [rounds=3] [dir]
 * ```
 *
 * Each codec runs [rounds] times on a fresh log; the best round is reported (throughput on a shared machine only
 * gets worse by noise). One line per codec, starting `COMPRESSION`.
 */
fun main(args: Array<String>) {
    val events = args.getOrNull(0)?.toInt() ?: 200_000
    val batch = args.getOrNull(1)?.toInt() ?: 100
    val rounds = args.getOrNull(2)?.toInt() ?: 3
    val base = args.getOrNull(3)?.let { Path.of(it) } ?: Files.createTempDirectory("kwal-compression-bench")
    val payloads = JsonEvents(Random(20261130)).take(events)
    val payloadBytes = payloads.sumOf { it.size.toLong() }
    println(
        "CompressionBench: $events JSON events, ${"%.1f".format(payloadBytes / 1e6)} MB " +
            "(avg ${payloadBytes / events} B), batches of $batch, rounds=$rounds, dir=$base, " +
            "load=${"%.2f".format(ManagementFactory.getOperatingSystemMXBean().systemLoadAverage)}, " +
            "cpus=${Runtime.getRuntime().availableProcessors()}",
    )
    println("sample: ${payloads[0].decodeToString()}")
    val codecs = listOf(Compression.None, Compression.Lz4, Compression.Zstd(1), Compression.Zstd(3))
    // Warm up each codec's path once on a small log, so the first measured round is not the JIT's.
    for (c in codecs) runOnce(base.resolve("warm"), c, payloads.subList(0, minOf(20_000, events)), batch)
    for (c in codecs) {
        val results = List(rounds) { runOnce(base.resolve("run"), c, payloads, batch) }
        val r = Result(
            results.first().logBytes,
            results.maxOf { it.appendMBs },
            results.minOf { it.recoveryMs },
            results.maxOf { it.replayMBs },
        )
        println(
            "COMPRESSION codec=${name(c)} payload_mb=${"%.1f".format(payloadBytes / 1e6)} " +
                "log_mb=${"%.1f".format(r.logBytes / 1e6)} " +
                "ratio=${"%.2f".format(payloadBytes.toDouble() / r.logBytes)} " +
                "append_mb_s=${"%.0f".format(r.appendMBs)} reopen_ms=${r.recoveryMs} " +
                "replay_mb_s=${"%.0f".format(r.replayMBs)} " +
                "rounds_append=${results.joinToString("/") { "%.0f".format(it.appendMBs) }} " +
                "rounds_replay=${results.joinToString("/") { "%.0f".format(it.replayMBs) }}",
        )
    }
    println("load after: ${"%.2f".format(ManagementFactory.getOperatingSystemMXBean().systemLoadAverage)}")
    base.toFile().deleteRecursively()
}

private class Result(val logBytes: Long, val appendMBs: Double, val recoveryMs: Long, val replayMBs: Double)

private fun name(c: Compression) = when (c) {
    Compression.None -> "none"
    Compression.Lz4 -> "lz4"
    is Compression.Zstd -> "zstd${c.level}"
}

private fun runOnce(dir: Path, c: Compression, payloads: List<ByteArray>, batch: Int): Result = runBlocking {
    dir.toFile().deleteRecursively()
    val options = WalOptions(dir, durability = Durability.None, compression = c)
    val payloadBytes = payloads.sumOf { it.size.toLong() }
    val t0 = System.nanoTime()
    Kwal.open(options).use { wal ->
        var i = 0
        while (i < payloads.size) {
            val end = minOf(i + batch, payloads.size)
            wal.appendBatch("orders", payloads.subList(i, end))
            i = end
        }
        wal.sync()
    }
    val appendNs = System.nanoTime() - t0
    val logBytes = logBytes(dir)
    val t1 = System.nanoTime()
    var replayed = 0L
    var replayNs: Long
    val recoveryMs: Long
    Kwal.open(options).use { wal ->
        recoveryMs = (System.nanoTime() - t1) / 1_000_000
        val t2 = System.nanoTime()
        wal.replay("orders").collect { replayed += it.payload.size }
        replayNs = System.nanoTime() - t2
    }
    check(replayed == payloadBytes) { "replayed $replayed bytes of $payloadBytes" }
    dir.toFile().deleteRecursively()
    Result(logBytes, payloadBytes / 1e6 / (appendNs / 1e9), recoveryMs, payloadBytes / 1e6 / (replayNs / 1e9))
}

/** The bytes of data in the log's segments: in each, up to its last nonzero byte (segments are pre-zeroed). */
private fun logBytes(dir: Path): Long = dir.listDirectoryEntries("seg-*.kwal").sumOf { p ->
    FileChannel.open(p, StandardOpenOption.READ).use { ch ->
        val map = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size())
        var i = map.limit()
        while (i >= 8 && map.getLong(i - 8) == 0L) i -= 8
        while (i > 0 && map.get(i - 1).toInt() == 0) i--
        i.toLong()
    }
}

/**
 * Realistic-looking JSON order events, 200-500 bytes each: ids, timestamps, a customer, an address, 1-4 order lines
 * with SKUs from a catalogue of 2,000, prices, a status from a small set. Seeded, so every run writes the same bytes.
 */
class JsonEvents(private val r: Random) {
    private val statuses = listOf("created", "paid", "packed", "shipped", "delivered", "cancelled", "refunded")
    private val countries = listOf("DE", "FR", "NL", "US", "GB", "ES", "IT", "PL", "SE", "AT")
    private val cities = listOf("Berlin", "Paris", "Amsterdam", "Austin", "Leeds", "Madrid", "Turin", "Gdansk")
    private val channels = listOf("web", "ios", "android", "pos", "partner-api")
    private val currencies = listOf("EUR", "USD", "GBP", "SEK", "PLN")
    private val names = listOf("Ada", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances", "Edsger")
    private val skus = List(2000) { "SKU-%06d".format(r.nextInt(1_000_000)) }
    private var ts = 1_764_460_800_000L
    private var seq = 0L

    fun take(n: Int): List<ByteArray> = List(n) { next() }

    fun next(): ByteArray {
        ts += r.nextInt(0, 50)
        val id = 10_000_000L + seq++
        val status = statuses[r.nextInt(statuses.size)]
        val sb = StringBuilder(512)
        sb.append("{\"event_id\":\"").append(uuid()).append("\",\"type\":\"order.").append(status).append('"')
        sb.append(",\"ts\":").append(ts).append(",\"order_id\":").append(id)
        sb.append(",\"customer\":{\"id\":").append(r.nextInt(1, 500_000))
            .append(",\"name\":\"").append(names[r.nextInt(names.size)]).append('"')
            .append(",\"country\":\"").append(countries[r.nextInt(countries.size)]).append('"')
        if (r.nextInt(3) == 0) {
            sb.append(",\"city\":\"").append(cities[r.nextInt(cities.size)]).append("\",\"zip\":\"")
                .append(r.nextInt(10_000, 99_999)).append('"')
        }
        sb.append("},\"channel\":\"").append(channels[r.nextInt(channels.size)]).append('"')
        sb.append(",\"currency\":\"").append(currencies[r.nextInt(currencies.size)]).append("\",\"lines\":[")
        var total = 0L
        repeat(1 + r.nextInt(4)) { k ->
            if (k > 0) sb.append(',')
            val qty = 1 + r.nextInt(3)
            val cents = r.nextInt(199, 25_000)
            total += qty.toLong() * cents
            sb.append("{\"sku\":\"").append(skus[r.nextInt(skus.size)]).append("\",\"qty\":").append(qty)
                .append(",\"unit_price\":").append(cents / 100).append('.').append("%02d".format(cents % 100))
                .append('}')
        }
        sb.append("],\"total\":").append(total / 100).append('.').append("%02d".format(total % 100))
        if (status == "shipped") sb.append(",\"carrier\":\"DHL\",\"tracking\":\"").append(uuid().take(18)).append('"')
        sb.append('}')
        return sb.toString().encodeToByteArray()
    }

    private fun uuid(): String {
        val a = r.nextLong()
        val b = r.nextLong()
        return "%08x-%04x-4%03x-%04x-%012x".format(
            (a ushr 32),
            (a ushr 16) and 0xffff,
            a and 0xfff,
            (b ushr 48) and 0x3fff or 0x8000,
            b and 0xffffffffffffL,
        )
    }
}
