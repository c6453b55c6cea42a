package dev.kwal.bench

import dev.kwal.AsyncWal
import dev.kwal.Durability
import dev.kwal.Record
import dev.kwal.Wal
import dev.kwal.WalOptions
import dev.kwal.engine.Kwal
import dev.kwal.typed.AsyncTypedTopic
import dev.kwal.typed.TopicFormats
import dev.kwal.typed.Typed
import dev.kwal.typed.topic
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.serialization.Serializable
import java.lang.management.ManagementFactory
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.CompletableFuture
import java.util.concurrent.CountDownLatch
import java.util.concurrent.Flow
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicLong
import java.util.concurrent.atomic.LongAdder
import kotlin.io.path.ExperimentalPathApi
import kotlin.io.path.deleteRecursively

/** A small event, 100 bytes in ProtoBuf (checked at start). */
@Serializable
data class BenchEvent(val id: Long, val account: String, val amountCents: Long, val note: String)

/** The event appended: its note padded so that it encodes to 100 B in ProtoBuf. */
private val EVENT: BenchEvent = generateSequence(0) { it + 1 }
    .map { BenchEvent(1_000_001, "acct-000042", 12_345, "x".repeat(it)) }
    .first { TopicFormats.protoBuf.encodeToByteArray(BenchEvent.serializer(), it).size >= 100 }
private const val APPENDERS = 256

/** One measured run: records done, wall ns, process CPU ns. */
private class Run(val records: Long, val nanos: Long, val cpuNanos: Long) {
    val perSecond: Double get() = records * 1e9 / nanos
    val cpuPerRecord: Double get() = cpuNanos.toDouble() / records
}

/** A facade measured: appends for [seconds] through [APPENDERS] concurrent appenders on [wal], or a replay. */
private class Case(val name: String, val run: (wal: Wal, seconds: Double) -> Long) {
    val runs = mutableListOf<Run>()
}

/**
 * What the facades cost over the engine: durable appends of 100 B from 256 concurrent appenders through (a) the
 * Kotlin `Wal` (coroutines), (b) `AsyncWal` (CompletableFutures, 256 in flight), (c) a Kotlin typed topic (ProtoBuf,
 * a small `@Serializable` event of 100 B) and (d) `AsyncTypedTopic` (the Java path, same serializer); then the replay
 * of N such records through (a) `Wal.replay`, (b) `AsyncWal.replay` (a Flow.Publisher, one subscriber requesting
 * everything), (c) the typed `replay` flow and (d) `AsyncTypedTopic.replay` (typed publisher).
 *
 * ```
 * java $FLAGS -cp bench/target/benchmarks.jar dev.kwal.bench.FacadeBenchKt [rounds=5] [seconds=3] [replay=1000000] [dir]
 * ```
 *
 * The systems alternate within each round (a, b, c, d, then the next round); each append run opens a fresh log
 * (outside the window). Medians over the rounds, ratio to (a), process CPU ns per record, load average at start and
 * end. Lines start `FACADE`, then a Markdown table.
 */
@OptIn(ExperimentalPathApi::class)
fun main(args: Array<String>) {
    val rounds = args.getOrNull(0)?.toInt() ?: 5
    val seconds = args.getOrNull(1)?.toDouble() ?: 3.0
    val replayRecords = args.getOrNull(2)?.toInt() ?: 1_000_000
    val base = args.getOrNull(3)?.let { Path.of(it) } ?: Files.createTempDirectory("kwal-facade-bench")
    val os = ManagementFactory.getOperatingSystemMXBean()
    val payload = TopicFormats.protoBuf.encodeToByteArray(BenchEvent.serializer(), EVENT)
    val loadStart = os.systemLoadAverage
    println(
        "FacadeBench: $APPENDERS appenders, durable (Sync) appends of ${payload.size} B, rounds=$rounds x " +
            "${seconds}s, replay of $replayRecords records, dir=$base, cpus=${os.availableProcessors}, " +
            "load at start=${"%.2f".format(loadStart)}",
    )
    check(payload.size == 100) { "the event encodes to ${payload.size} B, not 100" }

    val appendCases = listOf(
        Case("a Wal (coroutines)") { wal, s -> coroutineAppenders(s) { wal.append("t", payload) } },
        Case("b AsyncWal (futures)") { wal, s ->
            val async = AsyncWal.of(wal)
            futureAppenders(s) { async.append("t", payload) }
        },
        Case("c typed topic (Kotlin)") { wal, s ->
            val topic = wal.topic<BenchEvent>("t")
            coroutineAppenders(s) { topic.append(EVENT) }
        },
        Case("d AsyncTypedTopic (Java)") { wal, s ->
            val topic = AsyncTypedTopic.of(AsyncWal.of(wal), "t", BenchEvent.serializer())
            futureAppenders(s) { topic.append(EVENT) }
        },
    )

    fun appendRun(case: Case, s: Double, i: String): Run {
        val dir = base.resolve("append-$i")
        val wal = Kwal.open(WalOptions(dir, durability = Durability.Sync))
        try {
            val cpu0 = processCpuNanos()
            val t0 = System.nanoTime()
            val n = case.run(wal, s)
            return Run(n, System.nanoTime() - t0, processCpuNanos() - cpu0)
        } finally {
            wal.close()
            dir.deleteRecursively()
        }
    }

    // Replay data: N encoded events in one topic, written in batches (not measured).
    val replayDir = base.resolve("replay")
    val replayWal = Kwal.open(WalOptions(replayDir, durability = Durability.None))
    runBlocking {
        var left = replayRecords
        while (left > 0) {
            val n = minOf(left, 1_000)
            replayWal.appendBatch("r", List(n) { payload })
            left -= n
        }
        replayWal.sync()
    }
    val replayAsync = AsyncWal.of(replayWal)
    val typedReplay = replayWal.topic<BenchEvent>("r")
    val asyncTyped = AsyncTypedTopic.of(replayAsync, "r", BenchEvent.serializer())
    val replays = listOf(
        Case("a Wal.replay (Flow)") { wal, _ ->
            runBlocking {
                var n = 0L
                wal.replay("r", 0).collect { n += if (it.payload.size == 100) 1 else 0 }
                n
            }
        },
        Case("b AsyncWal.replay (Publisher)") { _, _ -> drain(replayAsync.replay("r", 0)) { (it as Record).sequence } },
        Case("c typed replay (Flow)") { _, _ ->
            runBlocking {
                var n = 0L
                typedReplay.replay(0).collect { n += if (it.value.amountCents == EVENT.amountCents) 1 else 0 }
                n
            }
        },
        Case("d AsyncTypedTopic.replay (Publisher)") { _, _ ->
            drain(asyncTyped.replay(0)) {
                @Suppress("UNCHECKED_CAST")
                (it as Typed<BenchEvent>).value.id
            }
        },
    )

    fun replayRun(case: Case): Run {
        val cpu0 = processCpuNanos()
        val t0 = System.nanoTime()
        val n = case.run(replayWal, 0.0)
        check(n == replayRecords.toLong()) { "${case.name} replayed $n of $replayRecords" }
        return Run(n, System.nanoTime() - t0, processCpuNanos() - cpu0)
    }

    // Warm-up: every path once, short.
    for (c in appendCases) appendRun(c, minOf(1.0, seconds), "warm")
    for (c in replays) replayRun(c)
    for (r in 1..rounds) {
        for (c in appendCases) c.runs += appendRun(c, seconds, "$r")
        for (c in replays) c.runs += replayRun(c)
        println("round $r done, load ${"%.2f".format(os.systemLoadAverage)}")
    }
    replayWal.close()
    base.deleteRecursively()
    val loadEnd = os.systemLoadAverage

    val table = StringBuilder()
    table.appendLine("| workload | path | median rec/s | ratio to (a) | CPU ns/record | rounds (rec/s) |")
    table.appendLine("|---|---|---:|---:|---:|---|")
    for ((kind, cases) in listOf("append" to appendCases, "replay" to replays)) {
        val baseline = median(cases.first().runs.map { it.perSecond })
        for (c in cases) {
            val m = median(c.runs.map { it.perSecond })
            val cpu = median(c.runs.map { it.cpuPerRecord })
            println(
                "FACADE kind=$kind path=\"${c.name}\" median_rec_s=${"%.0f".format(m)} " +
                    "ratio=${"%.2f".format(m / baseline)} cpu_ns_per_rec=${"%.0f".format(cpu)} " +
                    "rounds=${c.runs.joinToString(",") { "%.0f".format(it.perSecond) }}",
            )
            table.appendLine(
                "| $kind | ${c.name} | ${"%,.0f".format(m)} | ${"%.2f".format(m / baseline)} | " +
                    "${"%,.0f".format(cpu)} | ${c.runs.joinToString(" ") { "%,.0f".format(it.perSecond) }} |",
            )
        }
    }
    println("load average: start ${"%.2f".format(loadStart)}, end ${"%.2f".format(loadEnd)}")
    print(table)
}

/** [APPENDERS] coroutines, each appending with [append] until [seconds] pass; the appends done. */
private fun coroutineAppenders(seconds: Double, append: suspend () -> Long): Long = runBlocking(Dispatchers.Default) {
    val done = LongAdder()
    val deadline = System.nanoTime() + (seconds * 1e9).toLong()
    coroutineScope {
        repeat(APPENDERS) {
            launch {
                var k = 0L
                while (System.nanoTime() < deadline) {
                    append()
                    k++
                }
                done.add(k)
            }
        }
    }
    done.sum()
}

/**
 * [APPENDERS] chains of futures, as a Java caller keeps 256 appends in flight: each chain starts its next append when
 * the previous one completes, until [seconds] pass; the appends done.
 */
private fun futureAppenders(seconds: Double, append: () -> CompletableFuture<Long>): Long {
    val done = LongAdder()
    val failed = AtomicLong()
    val deadline = System.nanoTime() + (seconds * 1e9).toLong()
    val chains = CountDownLatch(APPENDERS)

    fun next() {
        append().whenComplete { _, e ->
            if (e != null) failed.incrementAndGet() else done.increment()
            if (e == null && System.nanoTime() < deadline) next() else chains.countDown()
        }
    }
    repeat(APPENDERS) { next() }
    check(chains.await(seconds.toLong() + 60, TimeUnit.SECONDS)) { "appends did not finish" }
    check(failed.get() == 0L) { "${failed.get()} appends failed" }
    return done.sum()
}

/** Subscribes to [publisher], requests everything, and counts the items ([touch] reads each); blocks until done. */
private fun <T> drain(publisher: Flow.Publisher<T>, touch: (Any?) -> Long): Long {
    val result = CompletableFuture<Long>()
    publisher.subscribe(
        object : Flow.Subscriber<T> {
            var n = 0L
            var sink = 0L

            override fun onSubscribe(s: Flow.Subscription) = s.request(Long.MAX_VALUE)

            override fun onNext(item: T) {
                sink += touch(item)
                n++
            }

            override fun onError(t: Throwable) {
                result.completeExceptionally(t)
            }

            override fun onComplete() {
                result.complete(if (sink == Long.MIN_VALUE) -1 else n)
            }
        },
    )
    return result.get(600, TimeUnit.SECONDS)
}
