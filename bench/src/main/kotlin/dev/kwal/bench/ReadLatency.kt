package dev.kwal.bench

import dev.kwal.Durability
import dev.kwal.Wal
import dev.kwal.WalOptions
import dev.kwal.engine.Kwal
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.locks.LockSupport
import kotlin.random.Random

/**
 * Latency of the point-read path, page cache hot: [Wal.read] of one record, [Wal.read] of a 100-record page and
 * [Wal.seek], each timed call by call over a log of `records` records of 100 B (batches of 100: one block each, so
 * the topic has `records / 100` blocks over several segments); then follow delivery: the time from an append's
 * acknowledgement (its call returning) to a follower receiving the record, appends paced so the follower keeps up.
 *
 * `java -cp bench/target/benchmarks.jar dev.kwal.bench.ReadLatencyKt [dir] [records]` (default: a temporary
 * directory, deleted after; 1,000,000 records). Prints one line per measurement, p50/p99/p999/max in µs.
 */
fun main(args: Array<String>) {
    val dir = args.getOrNull(0)?.let { Path.of(it) } ?: Files.createTempDirectory("kwal-read-latency")
    val records = args.getOrNull(1)?.toInt() ?: 1_000_000
    val options = WalOptions(directory = dir, segmentSize = 16 shl 20, durability = Durability.None)
    try {
        Kwal.open(options).use { wal -> runBlocking { measure(wal, records) } }
    } finally {
        if (args.getOrNull(0) == null) dir.toFile().deleteRecursively()
    }
}

private suspend fun measure(wal: Wal, records: Int) {
    val batch = 100
    val payload = ByteArray(100) { it.toByte() }
    val started = System.nanoTime()
    for (i in 0 until records / batch) wal.appendBatch("r", List(batch) { payload })
    wal.sync()
    val n = wal.nextSequence("r")
    println("filled: $n records of 100 B in ${(System.nanoTime() - started) / 1_000_000} ms, ${n / batch} blocks")
    var checksum = 0L
    wal.replay("r").collect { checksum += it.payload.size } // the page cache hot, the reader compiled
    val first = wal.read("r", 0)!!.timestampMillis
    val last = wal.read("r", n - 1)!!.timestampMillis
    println("timestamps span ${last - first} ms")
    val rnd = Random(42)
    val samples = 200_000
    repeat(2) { round ->
        val point = LongArray(samples)
        for (i in 0 until samples) {
            val s = rnd.nextLong(n)
            val t0 = System.nanoTime()
            val r = wal.read("r", s)
            point[i] = System.nanoTime() - t0
            checksum += r!!.sequence
        }
        val page = LongArray(samples / 10)
        for (i in page.indices) {
            val s = rnd.nextLong(n)
            val t0 = System.nanoTime()
            val list = wal.read("r", s, 100)
            page[i] = System.nanoTime() - t0
            checksum += list.size
        }
        val seek = LongArray(samples)
        for (i in 0 until samples) {
            val t = first + rnd.nextLong(last - first + 1)
            val t0 = System.nanoTime()
            val s = wal.seek("r", t)
            seek[i] = System.nanoTime() - t0
            checksum += s
        }
        if (round == 1) { // round 0 warms up
            report("read(topic, seq)", point)
            report("read(topic, from, 100)", page)
            report("seek(topic, ms)", seek)
        }
    }
    for (durability in listOf(Durability.None, Durability.Sync)) {
        val count = if (durability == Durability.None) 20_000 else 2_000
        followLatency(wal, "live-$durability", count, durability)
    }
    println("(checksum $checksum)")
}

/**
 * Appends [count] records to [topic] under [durability], one at a time, paced (200 µs apart) so the follower is
 * idle when each arrives; the follower notes when it receives each. Reports receive − acknowledgement (the append
 * call returning; negative when the follower, woken first, gets it before the appender resumes) and receive − the
 * append's start.
 */
private suspend fun followLatency(wal: Wal, topic: String, count: Int, durability: Durability) {
    val received = LongArray(count)
    val start = LongArray(count)
    val acked = LongArray(count)
    val payload = ByteArray(100)
    wal.append(topic, payload) // the topic exists, so the follower waits on it
    kotlinx.coroutines.coroutineScope {
        val follower = launch(Dispatchers.Default, start = CoroutineStart.UNDISPATCHED) {
            wal.follow(topic, 1).take(count).collect { r -> received[(r.sequence - 1).toInt()] = System.nanoTime() }
        }
        for (i in 0 until count) {
            start[i] = System.nanoTime()
            wal.append(topic, payload, durability)
            acked[i] = System.nanoTime()
            val until = acked[i] + 200_000
            while (System.nanoTime() < until) LockSupport.parkNanos(50_000)
        }
        follower.join()
    }
    val skip = count / 10 // warm-up
    report("follow, ack -> received ($durability)", LongArray(count - skip) { received[it + skip] - acked[it + skip] })
    report(
        "follow, append start -> received ($durability)",
        LongArray(count - skip) {
            received[it + skip] - start[it + skip]
        },
    )
}

private fun report(what: String, nanos: LongArray) {
    nanos.sort()
    fun at(q: Double) = nanos[((nanos.size - 1) * q).toInt()] / 1000.0
    println(
        "LATENCY %-42s n=%-7d p50=%8.2f µs p99=%8.2f µs p999=%8.2f µs max=%9.1f µs".format(
            what,
            nanos.size,
            at(0.5),
            at(0.99),
            at(0.999),
            nanos.last() / 1000.0,
        ),
    )
}
