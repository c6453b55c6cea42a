package dev.kwal.bench

import dev.kwal.Durability
import dev.kwal.RecoveryReport
import dev.kwal.WalOptions
import dev.kwal.engine.Kwal
import kotlinx.coroutines.runBlocking
import net.openhft.chronicle.bytes.Bytes
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueueBuilder
import org.rocksdb.RocksDB
import org.rocksdb.WriteBatch
import org.rocksdb.WriteOptions
import java.lang.management.ManagementFactory
import java.nio.ByteBuffer
import java.nio.file.Path
import java.util.concurrent.TimeUnit
import kotlin.random.Random

/**
 * The child process of the reopen workload: writes `bytes` of `recordSize`-byte records into `dir` with
 * `system`, prints `READY` and waits to be killed (SIGKILL) by the parent, which then times the reopen.
 * No system syncs or closes before the kill (the data is in the page cache, written with each system's
 * non-durable append), except `kwal-clean`, which closes its log cleanly before READY: the same kill then
 * finds a cleanly closed log.
 *
 * Usage: `CrashWriter <kwal|kwal-clean|rocksdb|chronicle> <dir> <bytes> <recordSize>`.
 */
fun main(args: Array<String>) {
    val (system, dirArg, bytesArg, sizeArg) = args
    val dir = Path.of(dirArg)
    val size = sizeArg.toInt()
    val records = bytesArg.toLong() / size
    val payload = Random(3).nextBytes(size)
    when (system) {
        "kwal", "kwal-clean" -> {
            val wal = Kwal.open(WalOptions(dir, durability = Durability.None))
            runBlocking {
                val batch = List(1000) { payload }
                var n = 0L
                while (n < records) {
                    val k = minOf(1000L, records - n).toInt()
                    wal.appendBatch("t", batch.subList(0, k))
                    n += k
                }
            }
            if (system == "kwal-clean") wal.close()
        }

        "rocksdb" -> {
            RocksDB.loadLibrary()
            val db = RocksDB.open(rocksOptions().setCreateIfMissing(true), dir.toString())
            val wo = WriteOptions().setSync(false)
            var n = 0L
            while (n < records) {
                WriteBatch().use { b ->
                    repeat(1000) {
                        if (n < records) {
                            b.put(ByteBuffer.allocate(10).put('t'.code.toByte()).put(0).putLong(n++).array(), payload)
                        }
                    }
                    db.write(wo, b)
                }
            }
        }

        "chronicle" -> {
            val q = SingleChronicleQueueBuilder.single(dir.toFile()).build()
            val a = q.createAppender()
            val b = Bytes.wrapForRead(payload)
            repeat(records.toInt()) {
                b.readPosition(0)
                a.writeBytes(b)
            }
        }

        else -> error("unknown system $system")
    }
    println("READY")
    System.out.flush()
    Thread.sleep(Long.MAX_VALUE)
}

/** Runs [CrashWriter] in a child JVM, waits for READY, kills it with SIGKILL. */
fun writeAndKill(system: String, dir: Path, bytes: Long, recordSize: Int) {
    val java = ProcessHandle.current().info().command().orElse("java")
    val jvmArgs = ManagementFactory.getRuntimeMXBean().inputArguments.filter {
        !it.startsWith("-agentlib") &&
            !it.startsWith("-javaagent")
    }
    val cmd =
        listOf(java) + jvmArgs + listOf(
            "-cp",
            System.getProperty("java.class.path"),
            "dev.kwal.bench.CrashWriterKt",
            system,
            dir.toString(),
            bytes.toString(),
            recordSize.toString(),
        )
    val p = ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start()
    val out = p.inputStream.bufferedReader()
    var line: String?
    do {
        line = out.readLine()
    } while (line != null && line != "READY")
    check(line == "READY") { "crash writer for $system ended without READY (exit ${p.waitFor()})" }
    p.destroyForcibly()
    p.waitFor(30, TimeUnit.SECONDS)
}

/**
 * Times `Kwal.open` of the log a [CrashWriter] left in [dir] (page cache hot), checks that it recovered [records]
 * records of topic `t`, and closes it: the open's milliseconds and its recovery report.
 */
fun timedKwalOpen(dir: Path, records: Long): Pair<Double, RecoveryReport> {
    val start = System.nanoTime()
    Kwal.open(WalOptions(dir)).use { wal ->
        val ms = (System.nanoTime() - start) / 1e6
        check(wal.nextSequence("t") == records) { "kwal recovered ${wal.nextSequence("t")} records of $records" }
        return ms to wal.recovery
    }
}
