package dev.kwal.samples

import dev.kwal.Durability
import dev.kwal.WalOptions
import dev.kwal.engine.Kwal
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import java.nio.ByteBuffer
import java.nio.channels.FileChannel
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.StandardOpenOption.CREATE
import java.nio.file.StandardOpenOption.READ
import java.nio.file.StandardOpenOption.WRITE
import kotlin.random.Random

/**
 * How fast is kwal on this machine's disk? A quick probe, not a benchmark (see the `bench` module for those):
 * it measures kwal and a plain `FileChannel` doing the same work in the same run, and prints both and their
 * ratio, median of [ROUNDS] rounds.
 *
 * Usage: `Throughput [directory] [seconds-per-case]`.
 */
fun main(args: Array<String>) = runBlocking {
    val root = args.getOrNull(0)?.let(Path::of) ?: Files.createTempDirectory("kwal-throughput")
    val seconds = args.getOrNull(1)?.toDouble() ?: 2.0
    val payload = Random(42).nextBytes(RECORD)
    println("record size $RECORD B, ${seconds}s per case, median of $ROUNDS rounds, directory $root")

    fun median(xs: List<Double>) = xs.sorted()[xs.size / 2]
    suspend fun case(name: String, ceilingName: String, ceiling: () -> Double, kwal: suspend () -> Double) {
        val c = median(List(ROUNDS) { ceiling() })
        val k = median(List(ROUNDS) { kwal() })
        println("%-36s kwal %,12.0f rec/s   %-30s %,12.0f rec/s   ratio %.2f".format(name, k, ceilingName, c, k / c))
    }

    var n = 0
    fun dir() = root.resolve("run-${n++}")

    case("Sync, 1 appender", "FileChannel force/record", { rawFileChannel(dir(), seconds, 1) }) {
        kwalAppends(dir(), seconds, 1, Durability.Sync, payload)
    }
    case("Sync, 256 appenders", "FileChannel force/256 recs", { rawFileChannel(dir(), seconds, 256) }) {
        kwalAppends(dir(), seconds, 256, Durability.Sync, payload)
    }
    case("None, 1 appender", "FileChannel no force", { rawFileChannel(dir(), seconds, 0) }) {
        kwalAppends(dir(), seconds, 1, Durability.None, payload)
    }
    case("None, 256 appenders", "FileChannel no force", { rawFileChannel(dir(), seconds, 0) }) {
        kwalAppends(dir(), seconds, 256, Durability.None, payload)
    }
}

private const val RECORD = 100
private const val ROUNDS = 3

/** Appends [RECORD]-byte records from [appenders] coroutines for [seconds]; returns acknowledged records/s. */
private suspend fun kwalAppends(
    dir: Path,
    seconds: Double,
    appenders: Int,
    durability: Durability,
    payload: ByteArray,
): Double {
    val wal = withContext(Dispatchers.IO) { Kwal.open(WalOptions(dir, durability = durability)) }
    val deadline = System.nanoTime() + (seconds * 1e9).toLong()
    val counts = LongArray(appenders)
    val start = System.nanoTime()
    withContext(Dispatchers.Default) {
        coroutineScope {
            repeat(appenders) { a ->
                launch {
                    var c = 0L
                    while (System.nanoTime() < deadline) {
                        wal.append("t", payload)
                        c++
                    }
                    counts[a] = c
                }
            }
        }
    }
    val elapsed = (System.nanoTime() - start) / 1e9
    withContext(Dispatchers.IO) { wal.close() }
    dir.toFile().deleteRecursively()
    return counts.sum() / elapsed
}

/**
 * The ceiling: [RECORD]-byte records written to a pre-written file with one `force(false)` every [perForce] records
 * (0 = never), from one thread, in one go per group. This is the least work a log can do for the same durability.
 */
private fun rawFileChannel(dir: Path, seconds: Double, perForce: Int): Double {
    Files.createDirectories(dir)
    val size = 256L shl 20
    val file = dir.resolve("raw")
    FileChannel.open(file, READ, WRITE, CREATE).use { ch ->
        val zeros = ByteBuffer.allocateDirect(1 shl 20)
        var at = 0L
        while (at < size) {
            zeros.clear()
            at += ch.write(zeros, at)
        }
        ch.force(true)
        val group = maxOf(perForce, 256)
        val buf = ByteBuffer.allocateDirect(RECORD * group)
        val deadline = System.nanoTime() + (seconds * 1e9).toLong()
        val start = System.nanoTime()
        var pos = 0L
        var records = 0L
        while (System.nanoTime() < deadline) {
            val batch = if (perForce == 0) group else perForce
            buf.clear().limit(RECORD * batch)
            if (pos + RECORD * batch > size) pos = 0
            while (buf.hasRemaining()) pos += ch.write(buf, pos)
            if (perForce > 0) ch.force(false)
            records += batch
        }
        val elapsed = (System.nanoTime() - start) / 1e9
        dir.toFile().deleteRecursively()
        return records / elapsed
    }
}
