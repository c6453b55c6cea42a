package dev.kwal.bench

import dev.kwal.RecordChecks
import kotlinx.coroutines.runBlocking
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueueBuilder
import org.knowm.xchart.BitmapEncoder
import org.knowm.xchart.XYChart
import org.knowm.xchart.XYChartBuilder
import org.knowm.xchart.style.markers.SeriesMarkers
import org.rocksdb.RocksDB
import java.io.File
import java.lang.management.ManagementFactory
import java.nio.file.Files
import java.nio.file.Path
import java.time.LocalDate
import java.time.LocalDateTime
import java.time.format.DateTimeFormatter
import kotlin.random.Random

/**
 * The comparison runner: the same workloads against kwal, a plain FileChannel ceiling and the peers (RocksDB,
 * Chronicle Queue, Square Tape) in one run. Prints one `RESULT` line per workload, then the issue-13 target table
 * with this run's figures, and writes `bench/results/<date>-<mode>.md` and a PNG chart. See bench/README.md.
 *
 * Usage: `CompareKt [--quick | --smoke | --full] [--dir DATA_DIR] [--out RESULTS_DIR] [--only REGEX] [--note TEXT]`.
 */
fun main(args: Array<String>) {
    System.setProperty("java.awt.headless", "true")
    System.setProperty("chronicle.analytics.disable", "true")
    // Chronicle and RocksDB log at INFO through slf4j-simple; keep the output to our own lines.
    if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn")
    }
    val opt = Opts.parse(args)
    Compare(opt).run()
}

class Mode(
    val name: String,
    /** Length of one timed load run. */
    val seconds: Double,
    /** Rounds per measurement; the median is reported. */
    val rounds: Int,
    val replay100: Int,
    val replay1k: Int,
    val reopenBytes: Long,
    val ceilingFile: Long,
    val warmup: Double,
)

val MODES = mapOf(
    "smoke" to Mode("smoke", 0.15, 1, 20_000, 5_000, 8L shl 20, 16L shl 20, 0.2),
    "quick" to Mode("quick", 0.4, 3, 300_000, 60_000, 64L shl 20, 64L shl 20, 0.5),
    "full" to Mode("full", 3.0, 5, 5_000_000, 1_000_000, 1L shl 30, 512L shl 20, 3.0),
)

class Opts(val mode: Mode, val dir: Path, val out: Path, val only: Regex?, val note: String?) {
    companion object {
        fun parse(args: Array<String>): Opts {
            var mode = MODES.getValue("full")
            var dir: Path? = null
            var out = Path.of("bench/results")
            var only: Regex? = null
            var note: String? = null
            var i = 0
            while (i < args.size) {
                when (val a = args[i++]) {
                    "--quick", "--smoke", "--full" -> mode = MODES.getValue(a.removePrefix("--"))

                    "--dir" -> dir = Path.of(args[i++])

                    "--out" -> out = Path.of(args[i++])

                    "--only" -> only = Regex(args[i++])

                    "--note" -> note = args[i++]

                    else -> error(
                        "unknown argument $a; usage: [--quick|--smoke|--full] [--dir D] [--out D] [--only REGEX] " +
                            "[--note TEXT]",
                    )
                }
            }
            return Opts(mode, dir ?: Files.createTempDirectory("kwal-bench"), out, only, note)
        }
    }
}

/**
 * One workload's outcome: medians per system, the ceiling, and what each figure means. [variants] are labelled
 * extra figures that take no part in the headline ratios (kwal with small segments, the growing-file ceiling,
 * kwal's reopen after a clean close); [cpu] is process CPU ns per record per system (throughput rows);
 * [bestLevel] is, for each peer, its best figure at any concurrency of the same workload family, and where.
 */
class Row(
    val workload: String,
    val unit: String,
    val higherIsBetter: Boolean,
    val kwal: Double,
    val ceiling: Double,
    val peers: Map<String, Double>,
    val notes: List<String>,
    val extra: Map<String, String> = emptyMap(),
    val variants: Map<String, Double> = emptyMap(),
    val cpu: Map<String, Double> = emptyMap(),
    val env: String = "",
) {
    var bestLevel: Map<String, Pair<Int, Double>> = emptyMap()

    val bestPeer: Pair<String, Double>? =
        peers.entries.filter { !it.value.isNaN() }
            .let { e -> if (higherIsBetter) e.maxByOrNull { it.value } else e.minByOrNull { it.value } }
            ?.let { it.key to it.value }

    fun resultLine(runId: String): String {
        val bp = bestPeer
        val sb = StringBuilder(
            "RESULT $workload kwal=${fmt(kwal)}$unit best_peer=${bp?.first ?: "none"}:" +
                "${bp?.second?.let(::fmt) ?: "n/a"} ceiling=${fmt(ceiling)} " +
                "vs_peer=${bp?.let { ratio(kwal, it.second) } ?: "n/a"} vs_ceiling=${ratio(kwal, ceiling)}",
        )
        val levels = bestLevel.entries.filter { !it.value.second.isNaN() }
        (if (higherIsBetter) levels.maxByOrNull { it.value.second } else levels.minByOrNull { it.value.second })
            ?.let { (p, lv) ->
                sb.append(
                    " peer_best_level=$p@c${lv.first}:${fmt(lv.second)} vs_peer_best_level=${ratio(kwal, lv.second)}",
                )
            }
        for ((v, x) in variants) sb.append(" $v=${fmt(x)}")
        if (cpu.isNotEmpty()) {
            sb.append(" cpu_ns_per_rec:")
            sb.append(cpu.entries.joinToString(",") { "${it.key}=${fmt(it.value)}" })
        }
        sb.append(" run=$runId")
        return sb.toString()
    }
}

fun fmt(v: Double): String = when {
    v.isNaN() -> "n/a"
    v >= 1000 -> "%.0f".format(v)
    v >= 10 -> "%.1f".format(v)
    else -> "%.3f".format(v)
}

fun ratio(a: Double, b: Double): String = if (a.isNaN() || b.isNaN() || b == 0.0) "n/a" else "%.2f".format(a / b)

fun median(xs: List<Double>): Double = xs.sorted().let { if (it.isEmpty()) Double.NaN else it[it.size / 2] }

fun percentile(sorted: LongArray, p: Double): Double =
    if (sorted.isEmpty()) Double.NaN else sorted[minOf(sorted.size - 1, (p * sorted.size).toInt())] / 1e6

/**
 * How busy the machine was between two samples: the load average, and the CPUs that other processes used on
 * average (all CPUs' busy time from /proc/stat, less this process's CPU time, over the wall time).
 */
class MachineSample(
    val wall: Long = System.nanoTime(),
    val busy: Long = busyNanos(),
    val own: Long = processCpuNanos(),
) {
    val loadavg: String = loadAverage()

    /** CPUs used by other processes since [before], on average; NaN where /proc/stat is unreadable. */
    fun othersSince(before: MachineSample): Double = if (busy < 0 ||
        before.busy < 0
    ) {
        Double.NaN
    } else {
        ((busy - before.busy) - (own - before.own)).toDouble() /
            (wall - before.wall)
    }

    companion object {
        /** Busy time of all CPUs since boot (user, nice, system, irq, softirq, steal) in ns; -1 if unknown. */
        fun busyNanos(): Long = runCatching {
            val f = File("/proc/stat").readLines().first().trim().split(Regex("\\s+")).drop(1).map { it.toLong() }
            // user nice system idle iowait irq softirq steal ...; USER_HZ is 100 on Linux
            (f[0] + f[1] + f[2] + f[5] + f[6] + f.getOrElse(7) { 0 }) * 10_000_000L
        }.getOrDefault(-1)
    }
}

/** The labelled kwal variant with small segments, so that segment rolls happen inside short windows. */
private const val SEG_VARIANT = "kwal-seg1MiB"
private const val SMALL_SEGMENT = 1 shl 20

/** The log size of the reopen-scale workload ([Compare.reopenScale]): 10 GiB (`-Dcompare.scaleGiB=N` to try it). */
private val SCALE_BYTES = (System.getProperty("compare.scaleGiB")?.toLong() ?: 10L) shl 30

/** What each later round's child appends to the reopen-scale log before it is killed. */
private const val SCALE_KILL_TOP_UP = 16L shl 20

/**
 * Replay variants through `Wal.replayViews`: on the log the `kwal` row replays (one or a few 64 MiB segments), and on
 * a second log of about 16 smaller segments (all but the last sealed; few enough to stay mapped between rounds), with
 * and without the records' CRC32C in sealed segments.
 */
private const val VIEWS = "kwal-views"
private const val VIEWS_SMALL = "kwal-views-smallseg"
private const val VIEWS_NOCRC = "kwal-views-smallseg-skipsealed"

/** The segment size of the second log: a power of two near 1/16 of [bytes] of records, 4 MiB at least. */
private fun viewsSegment(bytes: Long): Int = java.lang.Long.highestOneBit(maxOf(4L shl 20, bytes / 16)).toInt()

/** Others' average CPU use under which a run counts as idle. */
private const val IDLE_OTHERS = 0.10

class Compare(private val opt: Opts) {
    private val mode = opt.mode
    private val rows = mutableListOf<Row>()
    private var dirSeq = 0
    private val started = LocalDateTime.now()
    private val runId = started.format(DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss")) + "-" +
        ProcessHandle.current().pid()
    private val machineStart = MachineSample()
    private var workloadStart = machineStart
    private val heapPerRecord = mutableMapOf<String, Double>()

    /** Median durable throughput per (size, concurrency, system) for the chart. */
    private val chart = mutableMapOf<Pair<Int, String>, MutableMap<Int, Double>>()

    private fun freshDir(tag: String): Path = opt.dir.resolve("${dirSeq++}-$tag")

    private fun wanted(w: String) = opt.only?.containsMatchIn(w) ?: true

    private fun log(s: String) {
        System.err.println("[%6.1fs] %s".format((System.nanoTime() - t0) / 1e9, s))
    }
    private val t0 = System.nanoTime()

    /** Logs the start of workload [w] and samples the machine for its row's [env]. */
    private fun begin(w: String) {
        log(w)
        workloadStart = MachineSample()
    }

    /** The machine's load over the current workload, for its row. */
    private fun env(): String {
        val now = MachineSample()
        return "run $runId; load average ${workloadStart.loadavg} at start, ${now.loadavg} at end; other " +
            "processes used %.2f CPUs on average".format(now.othersSince(workloadStart))
    }

    fun run() {
        val fs = Files.getFileStore(Files.createDirectories(opt.dir)).type()
        log(
            "run $runId, mode ${mode.name}: ${mode.seconds}s per run, median of ${mode.rounds}; " +
                "data in ${opt.dir} ($fs)",
        )
        log("load average at start ${machineStart.loadavg}")
        if (fs == "tmpfs") log("WARNING: ${opt.dir} is tmpfs: syncs are free there; pass --dir on a real disk")
        val ceiling = Ceiling(opt.dir.resolve("ceiling"), mode.ceilingFile)
        try {
            warmup(ceiling)
            durable(ceiling)
            durableShort(ceiling)
            nonDurable(ceiling)
            batches(ceiling)
            topics(ceiling)
            replay()
            reopen()
            // Last and longest (two logs of 10 GiB): a failure here must not lose the run's other rows.
            runCatching { reopenScale() }.onFailure { log("reopen scale failed: $it") }
        } finally {
            ceiling.close()
        }
        val machineEnd = MachineSample()
        println()
        rows.forEach { println(it.resultLine(runId)) }
        val targets = targets()
        println()
        targetTable(targets, machineEnd).forEach(::println)
        write(machineEnd, targets)
        opt.dir.toFile().deleteRecursively()
        log("done")
    }

    /** Opens a fresh subject from [make] in a fresh directory, runs [load] (open timed), closes and deletes it. */
    private fun measure(make: () -> Subject, load: Load): LoadResult {
        val s = make()
        val dir = freshDir(s.name)
        try {
            return s.run(load, dir)
        } finally {
            runCatching { s.close() }
            dir.toFile().deleteRecursively()
        }
    }

    /**
     * Every system that a workload measures gets the same warm-up, with the load shape of its workloads (16
     * appenders when durable, 1 when not), for [Mode.warmup] seconds; the ceilings too.
     */
    private fun warmup(ceiling: Ceiling) {
        if (!wanted("durable|nondurable|batch|topics|latency")) return
        log("warmup: every system, ${mode.warmup}s each")
        val p = Random(0).nextBytes(100)
        val subjects = listOf<() -> Subject>(
            { KwalSubject(true) },
            { KwalSubject(false) },
            { KwalSubject(true, SMALL_SEGMENT, SEG_VARIANT) },
            { KwalSubject(false, SMALL_SEGMENT, SEG_VARIANT) },
            { RocksSubject(true) },
            { RocksSubject(false) },
            { ChronicleSubject(true) },
            { ChronicleSubject(false) },
            { TapeSubject() },
        )
        for (make in subjects) {
            val durable = make().durable
            measure(make, Load(if (durable) 16 else 1, p, mode.warmup))
        }
        ceiling.groups(100, 16, true, mode.warmup)
        ceiling.groups(100, 655, false, mode.warmup)
        Ceiling.appendFresh(freshDir("ceiling"), 100, 655, mode.warmup)
    }

    /**
     * Round-robin over [systems] for [Mode.rounds] rounds, so drift on a shared machine hits every system alike;
     * returns each system's per-round results.
     */
    private fun <R> rounds(systems: List<String>, measure: (system: String) -> R): Map<String, List<R>> {
        val out = systems.associateWith { mutableListOf<R>() }
        repeat(mode.rounds) { for (s in systems) out.getValue(s) += measure(s) }
        return out
    }

    /** Runs every system of [systems] round-robin; returns each one's per-round results. */
    private fun roundRobin(systems: Map<String, () -> LoadResult>): Map<String, List<LoadResult>> =
        rounds(systems.keys.toList()) { systems.getValue(it)() }

    private fun medRate(res: Map<String, List<LoadResult>>, scale: Double = 1.0) =
        res.mapValues { (_, rs) -> median(rs.map { it.perSecond * scale }) }

    private fun medCpu(res: Map<String, List<LoadResult>>) = res.mapValues { (_, rs) ->
        median(rs.map { it.cpuPerRecord })
    }

    /** Notes common to every throughput row: open times, kwal's segment files, how CPU is measured. */
    private fun timingNotes(res: Map<String, List<LoadResult>>): List<String> {
        val open = res.filterKeys { !it.startsWith("ceiling") }
            .mapValues { (_, rs) -> median(rs.map { it.openNanos / 1e6 }) }
        val segs = res.mapValues { (_, rs) -> rs.map { it.segments } }.filterValues { it.all { n -> n >= 0 } }
        return listOf(
            "each system's clock starts before its open (kwal's first segment, created and synced, and the peers' " +
                "first files are inside the window); then ${mode.seconds} s of load. Median open, ms: " +
                open.entries.joinToString { "${it.key} %.1f".format(it.value) },
            "kwal segment files at the end of each round (1 = no roll in the window; after k rolls, k + 1, or k + 2 " +
                "when the next one has been built ahead): " + segs.entries.joinToString { "${it.key} ${it.value}" },
            "CPU ns/record = process CPU time (every thread, the peers' native threads included) over the window " +
                "/ records acknowledged, median over rounds",
        )
    }

    private fun sizeName(size: Int) = if (size == 1024) "1KiB" else "${size}B"

    private val durablePeers: List<Pair<String, () -> Subject>> =
        listOf(
            "rocksdb-sync" to { RocksSubject(true) },
            "chronicle-msync" to { ChronicleSubject(true) },
            "tape" to { TapeSubject() },
        )

    private val variantNames = setOf(SEG_VARIANT, "ceiling-growing", "kwal-clean", VIEWS, VIEWS_SMALL, VIEWS_NOCRC)

    private fun row(
        w: String,
        unit: String,
        med: Map<String, Double>,
        notes: List<String>,
        cpu: Map<String, Double> = emptyMap(),
        higherIsBetter: Boolean = true,
        extra: Map<String, String> = emptyMap(),
    ) = Row(
        w,
        unit,
        higherIsBetter,
        med.getValue("kwal"),
        med.getValue("ceiling"),
        med.filterKeys { it != "kwal" && it != "ceiling" && it !in variantNames },
        notes,
        extra,
        med.filterKeys { it in variantNames },
        cpu,
        env(),
    )

    private fun durable(ceiling: Ceiling) {
        val levels = listOf(1, 16, 256, 1024)
        for (size in listOf(100, 1024)) {
            val family = mutableListOf<Pair<Int, Row>>()
            for (n in levels) {
                val w = "durable_${sizeName(size)}_c$n"
                val latency = size == 100 && n == 256
                if (!wanted(w) && !(latency && wanted("latency"))) continue
                begin(w)
                val payload = Random(size + n).nextBytes(size)
                val load = Load(n, payload, mode.seconds, latencies = latency)
                val systems = linkedMapOf<String, () -> LoadResult>(
                    "kwal" to { measure({ KwalSubject(true) }, load) },
                    SEG_VARIANT to { measure({ KwalSubject(true, SMALL_SEGMENT, SEG_VARIANT) }, load) },
                )
                for ((name, make) in durablePeers) systems[name] = { measure(make, load) }
                systems["ceiling"] = { ceiling.groups(size, n, true, mode.seconds, latency) }
                val res = roundRobin(systems)
                val med = medRate(res)
                for ((s, v) in med) chart.getOrPut(size to s) { sortedMapOf() }[n] = v
                val r = row(
                    w,
                    "rec/s",
                    med,
                    listOf(
                        "ack after fdatasync; $n concurrent appender(s): " +
                            "kwal = $n coroutines on Dispatchers.Default, each awaiting its append; " +
                            "peers = $n platform threads (rocksdb: put with sync=true; " +
                            "chronicle: writeBytes then msync; tape: synchronized QueueFile.add, which syncs)",
                        "headline ratios: kwal and each peer at the same concurrency ($n); " +
                            "'best level' = the peer's best figure at any of ${levels.joinToString()} " +
                            "appenders, labelled",
                        "$SEG_VARIANT = kwal with 1 MiB segments (a variant, not in the ratios): " +
                            "rolls inside the window",
                        "ceiling = one thread writing groups of $n records ($size B each, no framing) " +
                            "to a pre-written file, one force(false) per group (no open cost)",
                    ) + timingNotes(res),
                    medCpu(res),
                )
                rows += r
                family += n to r
                if (latency) {
                    for ((p, label) in listOf(0.5 to "p50", 0.99 to "p99", 0.999 to "p999")) {
                        val lat = res.mapValues { (_, rs) ->
                            median(rs.map { x -> percentile(x.latencies!!.also { it.sort() }, p) })
                        }
                        rows += row(
                            "latency_${label}_durable_100B_c256",
                            "ms",
                            lat,
                            listOf(
                                "$label of the time one durable append of 100 B takes with 256 concurrent appenders " +
                                    "(median over rounds)",
                                "ceiling = $label of one write of 256 x 100 B plus fdatasync on a pre-written file " +
                                    "(the bare sync of that size)",
                            ),
                            higherIsBetter = false,
                        )
                    }
                }
            }
            // each peer's best level over this size's concurrencies, shown beside the same-concurrency figures
            val best = durablePeers.map { it.first }.associateWith { p ->
                family.map { (n, r) -> n to (r.peers[p] ?: Double.NaN) }.filter { !it.second.isNaN() }
                    .maxByOrNull { it.second } ?: (0 to Double.NaN)
            }
            family.forEach { it.second.bestLevel = best }
        }
    }

    /**
     * Full mode: durable 100 B appends of one appender in the quick mode's short windows, each right after the
     * system's open (where a background segment build would compete with the appender's syncs), so that one run
     * answers for short windows and long ones.
     */
    private fun durableShort(ceiling: Ceiling) {
        val w = "durable_100B_c1_short"
        val short = MODES.getValue("quick").seconds
        if (mode.seconds <= short || !wanted(w)) return
        begin(w)
        val load = Load(1, Random(101).nextBytes(100), short)
        val systems = linkedMapOf<String, () -> LoadResult>("kwal" to { measure({ KwalSubject(true) }, load) })
        for ((name, make) in durablePeers) systems[name] = { measure(make, load) }
        systems["ceiling"] = { ceiling.groups(100, 1, true, short, false) }
        val res = roundRobin(systems)
        rows += row(
            w,
            "rec/s",
            medRate(res),
            listOf(
                "as durable_100B_c1, in windows of $short s (the quick mode's) right after each open, " +
                    "${mode.rounds} rounds",
            ) + timingNotes(res),
            medCpu(res),
        )
    }

    private fun nonDurable(ceiling: Ceiling) {
        for (size in listOf(100, 1024)) {
            for (n in listOf(1, 16)) {
                val w = "nondurable_${sizeName(size)}_c$n"
                if (!wanted(w)) continue
                begin(w)
                val payload = Random(size + n).nextBytes(size)
                val load = Load(n, payload, mode.seconds)
                val chunk = maxOf(1, (64 shl 10) / size)
                val systems = linkedMapOf<String, () -> LoadResult>(
                    "kwal" to { measure({ KwalSubject(false) }, load) },
                    SEG_VARIANT to { measure({ KwalSubject(false, SMALL_SEGMENT, SEG_VARIANT) }, load) },
                    "rocksdb-nosync" to { measure({ RocksSubject(false) }, load) },
                    "chronicle" to { measure({ ChronicleSubject(false) }, load) },
                    "ceiling" to { ceiling.groups(size, chunk, false, mode.seconds) },
                    "ceiling-growing" to { Ceiling.appendFresh(freshDir("ceiling"), size, chunk, mode.seconds) },
                )
                val res = roundRobin(systems)
                rows += row(
                    w,
                    "rec/s",
                    medRate(res),
                    listOf(
                        "ack once written to the OS, no sync; $n appenders each awaiting each append " +
                            "(kwal: Durability.None; rocksdb: sync=false, WAL on; chronicle: writeBytes)",
                        "tape: n/a (every QueueFile.add syncs)",
                        "ceiling = one thread writing the same bytes in 64 KiB chunks ($chunk records) into a " +
                            "pre-written file, no force, as kwal writes into pre-written segments; ceiling-growing " +
                            "(labelled, not in the ratios) = the same appended to a new, growing file",
                        "$SEG_VARIANT = kwal with 1 MiB segments (a variant, not in the ratios)",
                    ) + timingNotes(res),
                    medCpu(res),
                )
            }
        }
    }

    private fun batches(ceiling: Ceiling) {
        val b = 256
        for (size in listOf(100, 1024)) {
            val w = "batch_${sizeName(size)}_b$b"
            if (!wanted(w)) continue
            begin(w)
            val payload = Random(size).nextBytes(size)
            val load = Load(1, payload, mode.seconds, batch = b)
            val systems = linkedMapOf<String, () -> LoadResult>(
                "kwal" to { measure({ KwalSubject(false) }, load) },
                "rocksdb-nosync" to { measure({ RocksSubject(false) }, load) },
                "chronicle" to { measure({ ChronicleSubject(false) }, load) },
                "ceiling" to { ceiling.groups(size, b, false, mode.seconds) },
                "ceiling-growing" to { Ceiling.appendFresh(freshDir("ceiling"), size, b, mode.seconds) },
            )
            val res = roundRobin(systems)
            rows += row(
                w,
                "MB/s",
                medRate(res, size / 1e6),
                listOf(
                    "one appender, batches of $b records of $size B, not synced; MB/s of payload",
                    "kwal: appendBatch(Durability.None); rocksdb: one WriteBatch per batch, sync=false; " +
                        "chronicle: no batch API, $b writeBytes in a row; tape: n/a (syncs every add)",
                    "ceiling = one write of the batch's bytes per batch into a pre-written file, no force; " +
                        "ceiling-growing (labelled, not in the ratios) = the same appended to a new, growing file",
                ) + timingNotes(res),
                medCpu(res),
            )
        }
    }

    private fun topics(ceiling: Ceiling) {
        val w = "topics10k_durable_100B_c1024"
        if (!wanted(w)) return
        begin(w)
        val n = 1024
        val names = Array(10_000) { "topic-%05d".format(it) }
        val payload = Random(7).nextBytes(100)
        val load = Load(n, payload, mode.seconds, topic = { a, k -> names[((a + k * n) % names.size).toInt()] })
        val fds = mutableMapOf<String, Int>()
        fun counted(name: String, make: () -> Subject): () -> LoadResult = {
            val before = openFiles()
            val s = make()
            val dir = freshDir(name)
            try {
                s.run(load, dir).also { fds[name] = maxOf(fds[name] ?: 0, openFiles() - before) }
            } finally {
                runCatching { s.close() }
                dir.toFile().deleteRecursively()
            }
        }
        val systems = linkedMapOf(
            "kwal" to counted("kwal") { KwalSubject(true) },
            "rocksdb-sync" to counted("rocksdb-sync") { RocksSubject(true) },
            "ceiling" to { ceiling.groups(100, n, true, mode.seconds) },
        )
        val res = roundRobin(systems)
        val med = medRate(res)
        val single = rows.find { it.workload == "durable_100B_c1024" }?.kwal ?: Double.NaN
        rows += row(
            w,
            "rec/s",
            med,
            listOf(
                "10,000 topics, durable, 1,024 appenders; the k-th append of appender a goes to topic " +
                    "(a + 1024 k) mod 10,000",
                "kwal / kwal single-topic (durable_100B_c1024, same run) = ${ratio(med.getValue("kwal"), single)}",
                "open files added while loaded: " + fds.entries.joinToString { "${it.key} ${it.value}" },
                "rocksdb: 1,024 threads, key = topic + sequence, sync=true; chronicle and tape: n/a " +
                    "(one queue/file per topic would be 10,000 queues)",
                "ceiling = the single-file FileChannel ceiling with groups of 1,024 records (it has no topics)",
            ) + timingNotes(res),
            medCpu(res),
        )
    }

    /** Heap in use after a full GC (best effort: three System.gc() calls), in bytes. */
    private fun heapAfterGc(): Long {
        repeat(3) {
            System.gc()
            Thread.sleep(50)
        }
        return ManagementFactory.getMemoryMXBean().heapMemoryUsage.used
    }

    private fun replay() {
        for ((size, count) in listOf(100 to mode.replay100, 1024 to mode.replay1k)) {
            val w = "replay_${sizeName(size)}"
            if (!wanted(w)) continue
            begin("$w: filling $count records")
            val payload = Random(size).nextBytes(size)
            val small = KwalSubject(false, viewsSegment(count.toLong() * (size + 12)), "kwal-smallseg")
            val subjects = listOf(KwalSubject(false), small, RocksSubject(false), ChronicleSubject(false))
            val dirs = subjects.map { freshDir(it.name) }
            val ceilingFile = opt.dir.resolve("replay-ceiling.dat")
            Ceiling.fill(ceilingFile, count.toLong() * size)
            try {
                val heap = mutableMapOf<String, Double>()
                subjects.forEachIndexed { i, s ->
                    s.open(dirs[i])
                    val before = heapAfterGc()
                    var done = 0
                    while (done < count) {
                        val k = minOf(1000, count - done)
                        s.appendBatch("t", List(k) { payload })
                        done += k
                    }
                    if (s is KwalSubject) runBlocking { s.wal.sync() }
                    heap[s.name] = (heapAfterGc() - before).toDouble() / count
                }
                heapPerRecord[w] = heap.getValue("kwal")
                heap.remove(small.name) // a second kwal log, for the view variants only
                log("$w: replaying")
                val cpu = mutableMapOf<String, MutableList<Double>>()
                val kwal = subjects[0] as KwalSubject
                val systems = listOf("kwal", VIEWS, VIEWS_SMALL, VIEWS_NOCRC) +
                    subjects.drop(2).map { it.name } + "ceiling"
                fun replayOnce(name: String) = when (name) {
                    VIEWS -> kwal.replayViews("t")
                    VIEWS_SMALL -> small.replayViews("t")
                    VIEWS_NOCRC -> small.replayViews("t", RecordChecks.SKIP_SEALED)
                    else -> subjects.first { it.name == name }.replay("t")
                }
                // The same warm-up for every reader: replays of the whole log for the mode's warm-up time (at least
                // one), so that each is measured JIT-compiled, and the page cache is hot for all.
                for (name in systems) {
                    if (name == "ceiling") continue
                    val until = System.nanoTime() + (mode.warmup * 1e9).toLong()
                    do replayOnce(name) while (System.nanoTime() < until)
                }
                val res = rounds(systems) { name ->
                    val c0 = processCpuNanos()
                    val rate = if (name == "ceiling") {
                        Ceiling.readAndCrc(ceilingFile) / size
                    } else {
                        val start = System.nanoTime()
                        val (n, bytes) = replayOnce(name)
                        val el = System.nanoTime() - start
                        check(n == count.toLong() && bytes == n * size) {
                            "$name replayed $n records, $bytes bytes; expected $count"
                        }
                        n * 1e9 / el
                    }
                    cpu.getOrPut(name) { mutableListOf() } += (processCpuNanos() - c0).toDouble() / count
                    rate
                }
                val med = res.mapValues { (_, v) -> median(v) }
                rows += row(
                    w,
                    "rec/s",
                    med,
                    listOf(
                        "read back all $count records of $size B of one topic, page cache hot, every record's " +
                            "checksum checked where the system has one; before the rounds, each reader replays the " +
                            "whole log for ${mode.warmup} s (at least once) to warm up",
                        "MB/s: " + med.entries.joinToString { "${it.key} %.0f".format(it.value * size / 1e6) },
                        "kwal: Wal.replay(topic).collect; rocksdb: iterator over the topic's key prefix; " +
                            "chronicle: one tailer, readBytes; tape: n/a (filling it costs one sync per record)",
                        "$VIEWS (variant): the same log through Wal.replayViews, each payload copied into one reused " +
                            "array (RecordView.copyPayloadTo), every record's CRC32C checked; $VIEWS_SMALL: the same " +
                            "on a second log of ${viewsSegment(count.toLong() * (size + 12)) shr 20} MiB segments " +
                            "(about 16: all but the last sealed, all mapped between rounds); $VIEWS_NOCRC: " +
                            "that log with RecordChecks.SKIP_SEALED (no per-record CRC32C in sealed segments)",
                        "ceiling = FileChannel reading the same bytes in 64 KiB chunks with CRC32C over them",
                        "CPU ns/record = process CPU over all rounds / records replayed in all rounds (the clock " +
                            "ticks at 10 ms, so short replays are coarse)",
                        "heap per stored record (heap used after GC with the $count records stored, minus before " +
                            "the fill, / $count; the peers keep their data off-heap): " +
                            heap.entries.joinToString { "${it.key} %.2f B".format(it.value) },
                    ),
                    cpu.mapValues { it.value.average() },
                    extra = mapOf(
                        "MB/s" to med.entries.joinToString { "${it.key}=%.0f".format(it.value * size / 1e6) },
                    ),
                )
            } finally {
                subjects.forEach { runCatching { it.close() } }
                dirs.forEach { it.toFile().deleteRecursively() }
                Files.deleteIfExists(ceilingFile)
            }
        }
    }

    private fun reopenLabel(): String {
        val bytes = mode.reopenBytes
        return if (bytes >= 1L shl 30) "${bytes shr 30}GiB" else "${bytes shr 20}MiB"
    }

    private fun reopen() {
        val bytes = mode.reopenBytes
        val label = reopenLabel()
        val w = "reopen_$label"
        if (!wanted(w)) return
        begin(w)
        val ceilingFile = opt.dir.resolve("reopen-ceiling.dat")
        Ceiling.fill(ceilingFile, bytes)
        val res = rounds(listOf("kwal", "kwal-clean", "rocksdb", "chronicle", "ceiling")) { name ->
            if (name == "ceiling") return@rounds bytes / Ceiling.readAndCrc(ceilingFile) * 1e3
            val dir = freshDir("reopen-$name")
            try {
                writeAndKill(name, dir, bytes, 1024)
                val start = System.nanoTime()
                when (name) {
                    "kwal", "kwal-clean" -> timedKwalOpen(dir, bytes / 1024).first

                    "rocksdb" -> rocksOptions().use { o ->
                        RocksDB.open(o, dir.toString()).use { (System.nanoTime() - start) / 1e6 }
                    }

                    else -> SingleChronicleQueueBuilder.single(dir.toFile()).build().use { q ->
                        q.createTailer().use { t ->
                            t.toEnd()
                            t.index()
                        }
                        q.createAppender().close()
                        (System.nanoTime() - start) / 1e6
                    }
                }
            } finally {
                dir.toFile().deleteRecursively()
            }
        }
        Files.deleteIfExists(ceilingFile)
        rows += row(
            w,
            "ms",
            res.mapValues { (_, v) -> median(v) },
            listOf(
                "a child JVM writes $label of 1 KiB records with each system's non-durable append, prints READY " +
                    "and is killed with SIGKILL, with no final sync or close (kwal-clean: kwal's log closed " +
                    "cleanly before READY, shown separately, not in the ratios); then the time to open the log " +
                    "ready for appends (page cache hot). Lower is better; ratios are kwal / other",
                "kwal: Kwal.open (recovery); rocksdb: RocksDB.open (WAL replay); chronicle: open the queue, " +
                    "move a tailer to the end and create an appender; tape: n/a (filling it costs one sync per record)",
                "ceiling = reading $label from the page cache with CRC32C over every byte " +
                    "(a full-scan recovery's least work)",
            ),
            higherIsBetter = false,
        )
    }

    /**
     * kwal only: the open of a [SCALE_BYTES] log, against the mode's reopen size measured just before ([reopen]), so
     * that the table shows whether open grows with the log. Full mode, or asked for by `--only`. After a clean close:
     * the median of the mode's rounds of opens. After a kill: the first open after the child wrote the whole log, then
     * each round a child opens it again, appends [SCALE_KILL_TOP_UP] more without closing and is killed.
     */
    private fun reopenScale() {
        val w = "reopen_${SCALE_BYTES shr 30}GiB"
        val asked = opt.only?.containsMatchIn(w) == true
        if (!asked && !(mode.name == "full" && wanted(w))) return
        begin("$w: writing two logs of ${SCALE_BYTES shr 30} GiB")
        val times = linkedMapOf<String, List<Double>>()
        val segments = linkedMapOf<String, String>()
        for (name in listOf("kwal", "kwal-clean")) {
            val dir = freshDir("reopen-scale-$name")
            try {
                writeAndKill(name, dir, SCALE_BYTES, 1024)
                var records = SCALE_BYTES / 1024
                times[name] = (1..mode.rounds).map { round ->
                    if (name == "kwal" && round > 1) {
                        writeAndKill(name, dir, SCALE_KILL_TOP_UP, 1024)
                        records += SCALE_KILL_TOP_UP / 1024
                    }
                    val (ms, recovery) = timedKwalOpen(dir, records)
                    segments[name] = "${recovery.segmentsScanned} of ${recovery.segments} segments scanned"
                    ms
                }
            } finally {
                dir.toFile().deleteRecursively()
            }
        }
        val small = rows.firstOrNull { it.workload == "reopen_${reopenLabel()}" }
        val med = mapOf(
            "kwal" to median(times.getValue("kwal")),
            "kwal-clean" to median(times.getValue("kwal-clean")),
            "ceiling" to Double.NaN,
        )
        scaleSmallClean = small?.variants?.get("kwal-clean") ?: Double.NaN
        rows += row(
            w,
            "ms",
            med,
            listOf(
                "kwal only: a child JVM writes ${SCALE_BYTES shr 30} GiB of 1 KiB records with non-durable appends " +
                    "and is killed with SIGKILL (kwal-clean: after closing its log), then Kwal.open is timed " +
                    "(page cache hot). After a kill, each later round's child first reopens the log, appends " +
                    "${SCALE_KILL_TOP_UP shr 20} MiB more and is killed without a close",
                "all opens: " + times.entries.joinToString("; ") { (k, v) ->
                    "$k " + v.joinToString(", ") { "%.1f".format(it) } + " ms (${segments[k]})"
                },
                "the same opens of a ${reopenLabel()} log in this run (row reopen_${reopenLabel()}): " +
                    "%.1f ms after a kill, %.1f ms after a clean close".format(
                        small?.kwal ?: Double.NaN,
                        small?.variants?.get("kwal-clean") ?: Double.NaN,
                    ),
                "no ceiling: targets are absolute (under 100 ms after a clean close, under 1 s after a kill)",
            ),
            higherIsBetter = false,
        )
    }

    /** The kwal-clean open time of the mode's reopen size, for the scale target. */
    private var scaleSmallClean = Double.NaN

    /** One row of the issue-13 target table. */
    class Target(val name: String, val target: String, val value: String, val met: Boolean?)

    /** The issue-13 targets, each with its figure from this run only. */
    private fun targets(): List<Target> {
        val by = rows.associateBy { it.workload }
        fun r(w: String) = by[w]

        fun t(
            name: String,
            target: String,
            w: String,
            atLeast: Boolean,
            limit: Double,
            v: (Row) -> Pair<Double, String>,
        ) = r(w)?.let { row ->
            val (x, shown) = v(row)
            Target(
                name,
                target,
                shown,
                if (x.isNaN()) {
                    null
                } else if (atLeast) {
                    x >= limit
                } else {
                    x <= limit
                },
            )
        } ?: Target(name, target, "not run", null)

        fun vsCeiling(row: Row) = (row.kwal / row.ceiling).let {
            it to
                "%.2f (%s vs %s %s)".format(it, fmt(row.kwal), fmt(row.ceiling), row.unit)
        }
        fun vsPeer(p: String) = { row: Row ->
            val pv = row.peers[p] ?: Double.NaN
            (row.kwal / pv).let { it to "%.2fx (%s vs %s %s)".format(it, fmt(row.kwal), fmt(pv), row.unit) }
        }
        fun viewsVs(p: String) = { row: Row ->
            val k = row.variants[VIEWS] ?: Double.NaN
            val pv = row.peers[p] ?: Double.NaN
            (k / pv).let { it to "%.2fx (%s vs %s %s)".format(it, fmt(k), fmt(pv), row.unit) }
        }
        fun cpuVs(p: String) = { row: Row ->
            val k = row.cpu["kwal"] ?: Double.NaN
            val pv = row.cpu[p] ?: Double.NaN
            (k / pv).let { it to "%.2fx (%s vs %s ns)".format(it, fmt(k), fmt(pv)) }
        }
        val reopenMs = 1000.0 * mode.reopenBytes / (1L shl 30)
        val reopenTarget = if (mode.reopenBytes ==
            1L shl 30
        ) {
            "< 1,000 ms"
        } else {
            "< %.0f ms (1 s per GiB, scaled)".format(reopenMs)
        }
        val w = "reopen_${reopenLabel()}"
        val single = r("durable_100B_c1024")?.kwal ?: Double.NaN
        return listOf(
            t(
                "durable 100 B, 1 appender vs ceiling (${mode.name})",
                ">= 0.9",
                "durable_100B_c1",
                true,
                0.9,
                ::vsCeiling,
            ),
            t(
                "durable 100 B, 1 appender vs ceiling (${MODES.getValue("quick").seconds} s windows after open)",
                ">= 0.9",
                "durable_100B_c1_short",
                true,
                0.9,
                ::vsCeiling,
            ),
            t(
                "durable 100 B, 16 appenders vs RocksDB sync=true at 16",
                ">= 1x",
                "durable_100B_c16",
                true,
                1.0,
                vsPeer("rocksdb-sync"),
            ),
            t("durable 100 B, 1,024 appenders vs ceiling", ">= 0.5", "durable_100B_c1024", true, 0.5, ::vsCeiling),
            t(
                "durable 100 B, 1,024 appenders, records/s",
                "about 1 M (idle machine)",
                "durable_100B_c1024",
                true,
                1e6,
            ) { row -> row.kwal to "%s rec/s".format(fmt(row.kwal)) },
            t(
                "durable p99, 256 appenders vs bare fdatasync",
                "<= 2x",
                "latency_p99_durable_100B_c256",
                false,
                2.0,
                ::vsCeiling,
            ),
            t(
                "durable p99.9, 256 appenders vs bare fdatasync",
                "<= 4x",
                "latency_p999_durable_100B_c256",
                false,
                4.0,
                ::vsCeiling,
            ),
            t(
                "non-durable 100 B, 1 appender vs Chronicle",
                "> 1x",
                "nondurable_100B_c1",
                true,
                1.0 + 1e-9,
                vsPeer("chronicle"),
            ),
            t(
                "non-durable 100 B, 16 appenders vs Chronicle",
                "> 1x",
                "nondurable_100B_c16",
                true,
                1.0 + 1e-9,
                vsPeer("chronicle"),
            ),
            t(
                "non-durable 100 B, 16 appenders vs 1 appender (kwal)",
                ">= 1x",
                "nondurable_100B_c16",
                true,
                1.0,
            ) { row ->
                val one = r("nondurable_100B_c1")?.kwal ?: Double.NaN
                (row.kwal / one).let { it to "%.2fx (%s vs %s rec/s)".format(it, fmt(row.kwal), fmt(one)) }
            },
            t(
                "(earlier target) non-durable batches 1 KiB vs pre-written ceiling",
                ">= 0.8",
                "batch_1KiB_b256",
                true,
                0.8,
                ::vsCeiling,
            ),
            t("replay 100 B vs Chronicle's tailer", "> 1x", "replay_100B", true, 1.0 + 1e-9, vsPeer("chronicle")),
            t("replay 1 KiB vs Chronicle's tailer", "> 1x", "replay_1KiB", true, 1.0 + 1e-9, vsPeer("chronicle")),
            t(
                "replay 100 B, views, vs Chronicle's tailer",
                "> 1x",
                "replay_100B",
                true,
                1.0 + 1e-9,
                viewsVs("chronicle"),
            ),
            t(
                "replay 1 KiB, views, vs Chronicle's tailer",
                "> 1x",
                "replay_1KiB",
                true,
                1.0 + 1e-9,
                viewsVs("chronicle"),
            ),
            t(
                "10,000 topics vs single topic, durable c1024",
                ">= 0.8",
                "topics10k_durable_100B_c1024",
                true,
                0.8,
            ) { row ->
                (row.kwal / single).let { it to "%.2f (%s vs %s rec/s)".format(it, fmt(row.kwal), fmt(single)) }
            },
            t("reopen ${reopenLabel()} after kill", reopenTarget, w, false, reopenMs) { row ->
                row.kwal to
                    "%.1f ms".format(row.kwal)
            },
            t("reopen ${reopenLabel()} after clean close", reopenTarget, w, false, reopenMs) { row ->
                (row.variants["kwal-clean"] ?: Double.NaN).let { it to "%.1f ms".format(it) }
            },
            t(
                "reopen ${SCALE_BYTES shr 30} GiB after clean close",
                "< 100 ms",
                "reopen_${SCALE_BYTES shr 30}GiB",
                false,
                100.0,
            ) { row ->
                (row.variants["kwal-clean"] ?: Double.NaN).let {
                    it to "%.1f ms (%.1f ms at ${reopenLabel()})".format(it, scaleSmallClean)
                }
            },
            t(
                "reopen ${SCALE_BYTES shr 30} GiB after kill",
                "< 1,000 ms",
                "reopen_${SCALE_BYTES shr 30}GiB",
                false,
                1000.0,
            ) { row ->
                row.kwal to "%.1f ms".format(row.kwal)
            },
            heapPerRecord["replay_100B"].let { h ->
                if (h == null) {
                    Target("heap per stored record (100 B)", "<= ~1 B", "not run", null)
                } else {
                    Target("heap per stored record (100 B)", "<= ~1 B", "%.2f B".format(h), h <= 1.0)
                }
            },
            t(
                "CPU ns/record, non-durable 100 B c1 vs Chronicle",
                "reported (no target; <= 1x shown)",
                "nondurable_100B_c1",
                false,
                1.0,
                cpuVs("chronicle"),
            ),
            t(
                "CPU ns/record, durable 100 B c1024 vs RocksDB sync at 1024",
                "reported (no target; <= 1x shown)",
                "durable_100B_c1024",
                false,
                1.0,
                cpuVs("rocksdb-sync"),
            ),
        )
    }

    private fun idleVerdict(end: MachineSample): String {
        val others = end.othersSince(machineStart)
        val idle = !others.isNaN() && others < IDLE_OTHERS
        return "${if (idle) "IDLE" else "NOT IDLE"}: other processes used %.2f CPUs on average during the run "
            .format(others) + "(idle = under $IDLE_OTHERS); load average ${machineStart.loadavg} at start, " +
            "${end.loadavg} at end"
    }

    private fun targetTable(targets: List<Target>, end: MachineSample): List<String> = buildList {
        add(
            "Issue-13 targets, all figures from run $runId (${mode.name} mode, ${started.toString().take(19)}); " +
                idleVerdict(end),
        )
        add("| target | wanted | this run | |")
        add("|---|---|---|---|")
        for (t in targets) {
            add(
                "| ${t.name} | ${t.target} | ${t.value} | ${when (t.met) {
                    true -> "met"
                    false -> "missed"
                    null -> "n/a"
                }} |",
            )
        }
    }

    private fun write(end: MachineSample, targets: List<Target>) {
        Files.createDirectories(opt.out)
        val base = "${LocalDate.now()}-${mode.name}"
        val png = opt.out.resolve("$base.png")
        writeChart(png)
        val rt = ManagementFactory.getRuntimeMXBean()
        val md = buildString {
            appendLine(
                "# kwal comparison, ${mode.name} mode, " +
                    started.format(DateTimeFormatter.ISO_LOCAL_DATE_TIME).take(19) + ", run $runId",
            )
            appendLine()
            opt.note?.let {
                appendLine("**Note: $it**")
                appendLine()
            }
            appendLine("- **${idleVerdict(end)}**")
            appendLine(
                "- machine: ${Runtime.getRuntime().availableProcessors()} CPUs, " +
                    "${System.getProperty("os.name")} ${System.getProperty("os.version")}, " +
                    "${rt.vmName} ${System.getProperty("java.version")}",
            )
            appendLine(
                "- each figure is the median of ${mode.rounds} rounds of ${mode.seconds} s of load after the " +
                    "system's open (the open is inside the timed window; replay and reopen: ${mode.rounds} rounds); " +
                    "systems run round-robin in each round; ratios are kwal / other, measured in this run; every " +
                    "system had the same warm-up (${mode.warmup} s)",
            )
            appendLine(
                "- data directory on ${Files.getFileStore(opt.dir).type()}; " +
                    "JVM flags: ${rt.inputArguments.joinToString(" ")}",
            )
            appendLine()
            appendLine("## Targets (issue 13), from this run")
            appendLine()
            targetTable(targets, end).drop(1).forEach { appendLine(it) }
            appendLine()
            appendLine("## RESULT lines")
            appendLine()
            appendLine("```")
            rows.forEach { appendLine(it.resultLine(runId)) }
            appendLine("```")
            appendLine()
            appendLine("![throughput against concurrency](${png.fileName})")
            appendLine()
            appendLine("## Workloads")
            for (r in rows) {
                appendLine()
                appendLine("### ${r.workload} (${r.unit}, ${if (r.higherIsBetter) "higher" else "lower"} is better)")
                appendLine()
                appendLine("${r.env}.")
                appendLine()
                appendLine("| system | ${r.unit} | kwal / system | CPU ns/record |")
                appendLine("|---|---:|---:|---:|")
                fun cpu(s: String) = r.cpu[s]?.let(::fmt) ?: ""
                appendLine("| **kwal** | ${fmt(r.kwal)} | 1.00 | ${cpu("kwal")} |")
                appendLine(
                    "| ceiling (FileChannel) | ${fmt(r.ceiling)} | ${ratio(r.kwal, r.ceiling)} | ${cpu("ceiling")} |",
                )
                for ((p, v) in r.peers) appendLine("| $p | ${fmt(v)} | ${ratio(r.kwal, v)} | ${cpu(p)} |")
                for ((p, lv) in r.bestLevel) {
                    if (!lv.second.isNaN()) {
                        appendLine(
                            "| $p at its best level (c${lv.first}) | ${fmt(
                                lv.second,
                            )} | ${ratio(r.kwal, lv.second)} | |",
                        )
                    }
                }
                for ((v, x) in r.variants) appendLine("| $v (variant) | ${fmt(x)} | ${ratio(r.kwal, x)} | ${cpu(v)} |")
                appendLine()
                r.notes.forEach { appendLine("- $it") }
            }
        }
        val mdFile = opt.out.resolve("$base.md")
        Files.writeString(mdFile, md)
        log("wrote $mdFile and $png")
    }

    private fun writeChart(png: Path) {
        val charts = listOf(100, 1024).mapNotNull { size ->
            val series = chart.filterKeys { it.first == size }
            if (series.isEmpty()) return@mapNotNull null
            val c: XYChart = XYChartBuilder().width(800).height(560)
                .title("Durable appends, ${sizeName(size)} records (${mode.name} mode)")
                .xAxisTitle("concurrent appenders").yAxisTitle("records/s").build()
            c.styler.isXAxisLogarithmic = true
            c.styler.isYAxisLogarithmic = true
            for ((key, pts) in series) {
                val xs = pts.keys.map { it.toDouble() }.toDoubleArray()
                val ys = pts.values.map { maxOf(it, 1.0) }.toDoubleArray()
                c.addSeries(key.second, xs, ys).marker = SeriesMarkers.CIRCLE
            }
            c
        }
        if (charts.isNotEmpty()) {
            BitmapEncoder.saveBitmap(charts, 1, charts.size, png.toString(), BitmapEncoder.BitmapFormat.PNG)
        }
    }
}

fun openFiles(): Int = File("/proc/self/fd").list()?.size ?: -1

fun loadAverage(): String =
    runCatching { File("/proc/loadavg").readText().split(" ").take(3).joinToString(" ") }.getOrDefault("?")
