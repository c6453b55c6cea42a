package dev.kwal.bench.jmh

import dev.kwal.Durability
import dev.kwal.RecordChecks
import dev.kwal.Wal
import dev.kwal.WalOptions
import dev.kwal.engine.Kwal
import kotlinx.coroutines.runBlocking
import org.openjdk.jmh.annotations.Benchmark
import org.openjdk.jmh.annotations.BenchmarkMode
import org.openjdk.jmh.annotations.Fork
import org.openjdk.jmh.annotations.Level
import org.openjdk.jmh.annotations.Measurement
import org.openjdk.jmh.annotations.Mode
import org.openjdk.jmh.annotations.OperationsPerInvocation
import org.openjdk.jmh.annotations.OutputTimeUnit
import org.openjdk.jmh.annotations.Param
import org.openjdk.jmh.annotations.Scope
import org.openjdk.jmh.annotations.Setup
import org.openjdk.jmh.annotations.State
import org.openjdk.jmh.annotations.TearDown
import org.openjdk.jmh.annotations.Warmup
import org.openjdk.jmh.infra.Blackhole
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.TimeUnit
import java.util.zip.CRC32C
import kotlin.random.Random

/*
 * JMH benchmarks of kwal's hot paths, through the public API only (the frame codec and block header are
 * internal to wal-impl). Throughput in operations (records) per second. Run them from the shaded jar:
 *   java -jar bench/target/benchmarks.jar            (all; add -h for JMH's options, e.g. -f 3 -wi 5 -i 10)
 *   java -jar bench/target/benchmarks.jar Append -p size=100
 */

private const val APPENDS_PER_OP = 1_000

/** A fresh log per iteration, in a temp directory deleted afterwards. */
@State(Scope.Benchmark)
open class FreshLog {
    @Param("100", "1024")
    @JvmField
    var size: Int = 100

    lateinit var dir: Path
    lateinit var wal: Wal
    lateinit var payload: ByteArray
    lateinit var batch: List<ByteArray>

    @Setup(Level.Iteration)
    fun open() {
        payload = Random(size).nextBytes(size)
        batch = List(BATCH) { payload }
        dir = Files.createTempDirectory("kwal-jmh")
        wal = Kwal.open(WalOptions(dir, durability = Durability.None))
    }

    @TearDown(Level.Iteration)
    fun close() {
        wal.close()
        dir.toFile().deleteRecursively()
    }

    companion object {
        const val BATCH = 64
    }
}

@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(1)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
open class AppendBench {
    /**
     * One appender, [Durability.None], awaiting each append: validation, queueing, group assembly, frame
     * encoding with CRC32C and the write to the OS (no sync). Ops = records.
     */
    @Benchmark
    @OperationsPerInvocation(APPENDS_PER_OP)
    fun appendNone(log: FreshLog) = runBlocking {
        var last = 0L
        repeat(APPENDS_PER_OP) { last = log.wal.append("t", log.payload, Durability.None) }
        last
    }

    /** [Wal.appendBatch] of 64 records with [Durability.None]. Ops = records. */
    @Benchmark
    @OperationsPerInvocation(APPENDS_PER_OP / FreshLog.BATCH * FreshLog.BATCH)
    fun appendBatchNone(log: FreshLog) = runBlocking {
        var last = 0L..0L
        repeat(APPENDS_PER_OP / FreshLog.BATCH) { last = log.wal.appendBatch("t", log.batch, Durability.None) }
        last
    }
}

/** A log holding [RECORDS] records of one topic, written once per trial; replay reads them from the page cache. */
@State(Scope.Benchmark)
open class FilledLog {
    @Param("100", "1024")
    @JvmField
    var size: Int = 100

    lateinit var dir: Path
    lateinit var wal: Wal

    @Setup(Level.Trial)
    fun fill() {
        val payload = Random(size).nextBytes(size)
        dir = Files.createTempDirectory("kwal-jmh-replay")
        wal = Kwal.open(WalOptions(dir, durability = Durability.None))
        runBlocking {
            val batch = List(1000) { payload }
            repeat(RECORDS / 1000) { wal.appendBatch("t", batch) }
            wal.sync()
        }
    }

    @TearDown(Level.Trial)
    fun close() {
        wal.close()
        dir.toFile().deleteRecursively()
    }

    companion object {
        const val RECORDS = 100_000
    }
}

@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(1)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
open class ReplayBench {
    /**
     * [Wal.replay] of 100,000 records: block reads, frame decoding and CRC32C checks, one [dev.kwal.Record] each.
     * Ops = records.
     */
    @Benchmark
    @OperationsPerInvocation(FilledLog.RECORDS)
    fun replay(log: FilledLog, bh: Blackhole) = runBlocking {
        var n = 0
        log.wal.replay("t").collect {
            bh.consume(it)
            n++
        }
        check(n == FilledLog.RECORDS)
    }
}

/**
 * A log of [FilledLog.RECORDS] records of one topic in about 16 segments (1 or 4 MiB), so that most of it lies in
 * sealed segments (where [RecordChecks.SKIP_SEALED] applies) and every segment stays mapped between invocations.
 */
@State(Scope.Benchmark)
open class SealedLog {
    @Param("100", "1024")
    @JvmField
    var size: Int = 100

    @Param("ALL", "SKIP_SEALED")
    @JvmField
    var checks: String = "ALL"

    lateinit var dir: Path
    lateinit var wal: Wal

    /** Where each payload is copied. */
    val scratch = ByteArray(64 shl 10)

    @Setup(Level.Trial)
    fun fill() {
        val payload = Random(size).nextBytes(size)
        dir = Files.createTempDirectory("kwal-jmh-views")
        val segment = java.lang.Long.highestOneBit(maxOf(1L shl 20, FilledLog.RECORDS.toLong() * (size + 12) / 16))
        wal = Kwal.open(
            WalOptions(dir, segmentSize = segment.toInt(), maxRecordSize = 64 shl 10, durability = Durability.None),
        )
        runBlocking {
            val batch = List(1000) { payload }
            repeat(FilledLog.RECORDS / 1000) { wal.appendBatch("t", batch) }
            wal.sync()
        }
    }

    @TearDown(Level.Trial)
    fun close() {
        wal.close()
        dir.toFile().deleteRecursively()
    }
}

/** [Wal.replayViews] over [SealedLog]: each payload copied into one reused array. Ops = records. */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(1)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
open class ViewReplayBench {
    @Benchmark
    @OperationsPerInvocation(FilledLog.RECORDS)
    fun views(log: SealedLog, bh: Blackhole) = runBlocking {
        var n = 0
        val scratch = log.scratch
        log.wal.replayViews("t", 0, RecordChecks.valueOf(log.checks)) { v ->
            v.copyPayloadTo(scratch, 0)
            n++
        }
        bh.consume(scratch)
        check(n == FilledLog.RECORDS)
    }
}

@State(Scope.Thread)
open class CrcInput {
    @Param("100", "1024")
    @JvmField
    var size: Int = 100
    lateinit var bytes: ByteArray
    val crc = CRC32C()

    @Setup
    fun setup() {
        bytes = Random(size).nextBytes(size)
    }
}

/** For reference: the JDK's CRC32C over one payload, the checksum kwal computes per record. Ops = payloads. */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(1)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
open class CrcBench {
    @Benchmark
    fun crc32c(input: CrcInput): Long {
        input.crc.reset()
        input.crc.update(input.bytes)
        return input.crc.value
    }
}
