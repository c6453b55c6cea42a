package dev.kwal.crash

import dev.kwal.Durability
import dev.kwal.Kwal
import dev.kwal.WalOptions
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import java.io.BufferedOutputStream
import java.io.FileDescriptor
import java.io.FileOutputStream
import java.io.PrintStream
import java.nio.file.Path
import kotlin.random.Random
import kotlin.system.exitProcess

/** The options every crash child and the parent use: small segments and blocks, so blocks split and segments roll. */
object CrashOptions {
    val TOPICS = listOf("alpha", "beta", "gamma", "delta", "epsilon")

    fun of(dir: Path) = WalOptions(
        directory = dir,
        segmentSize = 64 shl 10,
        blockSize = 8 shl 10,
        maxRecordSize = 4 shl 10,
        maxGroupBytes = 16 shl 10,
        durability = Durability.Sync,
    )

    /** Mostly small records, some spanning half a block, a few near the maximum. */
    fun size(r: Random, topic: String): Int {
        val min = CrashPayloads.minSize(topic)
        return when (r.nextInt(10)) {
            in 0..5 -> r.nextInt(min, 200)
            in 6..8 -> r.nextInt(200, 3000)
            else -> r.nextInt(3000, (4 shl 10) + 1)
        }
    }

    /** The child exits when its stdin closes, so a dead parent leaves no orphan behind. */
    fun exitWhenParentGoes() {
        Thread({
            try { while (System.`in`.read() != -1) continue } catch (_: Throwable) {}
            Runtime.getRuntime().halt(3)
        }, "parent-watch").apply { isDaemon = true }.start()
    }

    /** Stdout, one write per line: every println is flushed as a whole. */
    fun out(): PrintStream = PrintStream(BufferedOutputStream(FileOutputStream(FileDescriptor.out), 1 shl 16), true, Charsets.UTF_8)
}

/**
 * Child-process main for [dev.kwal.KillSpec]: `AppenderProcess <dir> <seed> [writers] [sync|none]`.
 *
 * Opens the log in `dir`, prints `READY`, then runs `writers` coroutines that append forever, mixing
 * [dev.kwal.Wal.append] and [dev.kwal.Wal.appendBatch] over [CrashOptions.TOPICS] with mixed sizes.
 * Every acknowledged record is reported as soon as its call returns, one line each:
 * `ACK <topic> <seq> <crc32 hex>` (the CRC32 of the whole payload). It runs until killed. A batch's payloads
 * carry their batch (see [CrashPayloads.batchWriter]), so the parent can check batches are all-or-nothing.
 */
object AppenderProcess {
    @JvmStatic
    fun main(args: Array<String>) {
        val dir = Path.of(args[0])
        val seed = args[1].toLong()
        val writers = args.getOrNull(2)?.toInt() ?: 32
        // Under "none" every append is acknowledged once in the page cache (a lone writer: the inline path).
        val durability = if (args.getOrNull(3) == "none") Durability.None else Durability.Sync
        val out = CrashOptions.out()
        CrashOptions.exitWhenParentGoes()
        try {
            val wal = Kwal.open(CrashOptions.of(dir))
            out.println("READY ${wal.recovery}")
            runBlocking(Dispatchers.Default) {
                repeat(writers) { w ->
                    launch {
                        val r = Random(seed * 31 + w)
                        var n = 0L
                        while (true) {
                            val topic = CrashOptions.TOPICS[r.nextInt(CrashOptions.TOPICS.size)]
                            if (r.nextInt(4) == 0) {
                                val k = r.nextInt(1, 9)
                                val payloads = List(k) { CrashPayloads.make(topic, seed, CrashPayloads.batchWriter(w, it, k), n++, CrashOptions.size(r, topic)) }
                                val range = wal.appendBatch(topic, payloads, durability)
                                check(range.last - range.first + 1 == payloads.size.toLong()) { "range $range for ${payloads.size} payloads" }
                                payloads.forEachIndexed { i, p -> ack(out, topic, range.first + i, p) }
                            } else {
                                val p = CrashPayloads.make(topic, seed, w, n++, CrashOptions.size(r, topic))
                                ack(out, topic, wal.append(topic, p, durability), p)
                            }
                        }
                    }
                }
            }
        } catch (e: Throwable) {
            out.println("ERROR $e")
            e.printStackTrace()
            System.err.flush()
            exitProcess(2)
        }
    }

    private fun ack(out: PrintStream, topic: String, seq: Long, payload: ByteArray) {
        out.println("ACK $topic $seq %08x".format(CrashPayloads.crc(payload)))
    }
}

/**
 * Child-process main for [dev.kwal.CrossProcessLockSpec]: `LockHolderProcess <dir>`. Opens the log,
 * appends one record to topic `held` (and prints `ACK held <seq> <crc>`), prints `READY`, and sleeps
 * holding the directory until killed.
 */
object LockHolderProcess {
    @JvmStatic
    fun main(args: Array<String>) {
        val out = CrashOptions.out()
        CrashOptions.exitWhenParentGoes()
        try {
            val wal = Kwal.open(CrashOptions.of(Path.of(args[0])))
            val p = CrashPayloads.make("held", 0, 0, System.nanoTime(), 100)
            val seq = runBlocking { wal.append("held", p) }
            out.println("ACK held $seq %08x".format(CrashPayloads.crc(p)))
            out.println("READY")
            while (true) Thread.sleep(60_000)
        } catch (e: Throwable) {
            out.println("ERROR $e")
            e.printStackTrace()
            System.err.flush()
            exitProcess(2)
        }
    }
}
