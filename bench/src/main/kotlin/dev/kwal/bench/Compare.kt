package dev.kwal.bench

import dev.kwal.WalOptions
import dev.kwal.engine.Kwal
import kotlinx.coroutines.runBlocking
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueueBuilder
import org.knowm.xchart.BitmapEncoder
import org.knowm.xchart.XYChart
import org.knowm.xchart.XYChartBuilder
import org.knowm.xchart.style.markers.SeriesMarkers
import org.rocksdb.Options
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
 * Chronicle Queue, Square Tape) in one run. Prints one `RESULT` line per workload and writes
 * `bench/results/<date>-<mode>.md` and a PNG chart. See bench/README.md.
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

/** One workload's outcome: medians per system, the ceiling, and what each figure means. */
class Row(
    val workload: String,
    val unit: String,
    val higherIsBetter: Boolean,
    val kwal: Double,
    val ceiling: Double,
    val peers: Map<String, Double>,
    val notes: List<String>,
    val extra: Map<String, String> = emptyMap(),
) {
    val bestPeer: Pair<String, Double>? =
        peers.entries.filter { !it.value.isNaN() }
            .let { e -> if (higherIsBetter) e.maxByOrNull { it.value } else e.minByOrNull { it.value } }
            ?.let { it.key to it.value }

    fun resultLine(): String {
        val bp = bestPeer
        return "RESULT $workload kwal=${fmt(kwal)}$unit best_peer=${bp?.first ?: "none"}:" +
            "${bp?.second?.let(::fmt) ?: "n/a"} ceiling=${fmt(ceiling)} " +
            "vs_peer=${bp?.let { ratio(kwal, it.second) } ?: "n/a"} vs_ceiling=${ratio(kwal, ceiling)}"
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

class Compare(private val opt: Opts) {
    private val mode = opt.mode
    private val rows = mutableListOf<Row>()
    private var dirSeq = 0
    private val started = LocalDateTime.now()
    private val loadStart = loadAverage()

    /** Median durable throughput per (size, concurrency, system) for the chart. */
    private val chart = mutableMapOf<Pair<Int, String>, MutableMap<Int, Double>>()

    private fun freshDir(tag: String): Path = opt.dir.resolve("${dirSeq++}-$tag")

    private fun wanted(w: String) = opt.only?.containsMatchIn(w) ?: true

    private fun log(s: String) {
        System.err.println("[%6.1fs] %s".format((System.nanoTime() - t0) / 1e9, s))
    }
    private val t0 = System.nanoTime()

    fun run() {
        val fs = Files.getFileStore(Files.createDirectories(opt.dir)).type()
        log("mode ${mode.name}: ${mode.seconds}s per run, median of ${mode.rounds}; data in ${opt.dir} ($fs)")
        if (fs == "tmpfs") log("WARNING: ${opt.dir} is tmpfs: syncs are free there; pass --dir on a real disk")
        val ceiling = Ceiling(opt.dir.resolve("ceiling"), mode.ceilingFile)
        try {
            warmup(ceiling)
            durable(ceiling)
            nonDurable(ceiling)
            batches(ceiling)
            topics(ceiling)
            replay()
            reopen()
        } finally {
            ceiling.close()
        }
        println()
        rows.forEach { println(it.resultLine()) }
        write()
        opt.dir.toFile().deleteRecursively()
        log("done")
    }

    /** A fresh subject in a fresh directory, opened, [block] run, closed and deleted. */
    private fun <T> with(s: Subject, block: (Subject) -> T): T {
        val dir = freshDir(s.name)
        s.open(dir)
        try {
            return block(s)
        } finally {
            s.close()
            dir.toFile().deleteRecursively()
        }
    }

    private fun warmup(ceiling: Ceiling) {
        if (!wanted("durable|nondurable|batch|topics|latency")) return
        log("warmup")
        val p = Random(0).nextBytes(100)
        val subjects = listOf(
            KwalSubject(true),
            KwalSubject(false),
            RocksSubject(true),
            RocksSubject(false),
            ChronicleSubject(false),
        )
        for (s in subjects) {
            with(s) { it.run(Load(if (s.durable) 16 else 1, p, mode.warmup)) }
        }
        ceiling.groups(100, 16, true, mode.warmup)
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

    private fun sizeName(size: Int) = if (size == 1024) "1KiB" else "${size}B"

    private val durablePeers: List<() -> Subject> =
        listOf({ RocksSubject(true) }, { ChronicleSubject(true) }, { TapeSubject() })

    private fun durable(ceiling: Ceiling) {
        for (size in listOf(100, 1024)) {
            for (n in listOf(1, 16, 256, 1024)) {
                val w = "durable_${sizeName(size)}_c$n"
                val latency = size == 100 && n == 256
                if (!wanted(w) && !(latency && wanted("latency"))) continue
                log(w)
                val payload = Random(size + n).nextBytes(size)
                val makers = listOf<() -> Subject>({ KwalSubject(true) }) + durablePeers
                val names = makers.map { it().name } + "ceiling"
                val res = rounds(names) { name ->
                    if (name == "ceiling") {
                        ceiling.groups(size, n, true, mode.seconds, latency)
                    } else {
                        with(makers[names.indexOf(name)]()) {
                            it.run(Load(n, payload, mode.seconds, latencies = latency))
                        }
                    }
                }
                val med = res.mapValues { (_, rs) -> median(rs.map { it.perSecond }) }
                for ((s, v) in med) chart.getOrPut(size to s) { sortedMapOf() }[n] = v
                rows += Row(
                    w,
                    "rec/s",
                    true,
                    med.getValue("kwal"),
                    med.getValue("ceiling"),
                    med.filterKeys { it != "kwal" && it != "ceiling" },
                    listOf(
                        "ack after fdatasync; $n concurrent appender(s): " +
                            "kwal = $n coroutines on Dispatchers.Default, each awaiting its append; " +
                            "peers = $n platform threads (rocksdb: put with sync=true; " +
                            "chronicle: writeBytes then msync; tape: synchronized QueueFile.add, which syncs)",
                        "ceiling = one thread writing groups of $n records ($size B each, no framing) " +
                            "to a pre-written file, one force(false) per group",
                    ),
                )
                if (size == 100 && n == 1024) {
                    val r16 = rows.find { it.workload == "durable_100B_c16" }?.peers?.get("rocksdb-sync") ?: Double.NaN
                    val last = rows.removeAt(rows.size - 1)
                    val vsRocks16 = ratio(last.kwal, r16)
                    rows += Row(
                        last.workload,
                        last.unit,
                        true,
                        last.kwal,
                        last.ceiling,
                        last.peers,
                        last.notes + "kwal / rocksdb-sync with 16 threads (durable_100B_c16, same run) = $vsRocks16",
                    )
                }
                if (latency) {
                    for ((p, label) in listOf(0.5 to "p50", 0.99 to "p99", 0.999 to "p999")) {
                        val lat = res.mapValues { (_, rs) ->
                            median(rs.map { r -> percentile(r.latencies!!.also { it.sort() }, p) })
                        }
                        rows += Row(
                            "latency_${label}_durable_100B_c256",
                            "ms",
                            false,
                            lat.getValue("kwal"),
                            lat.getValue("ceiling"),
                            lat.filterKeys { it != "kwal" && it != "ceiling" },
                            listOf(
                                "$label of the time one durable append of 100 B takes with 256 concurrent appenders " +
                                    "(median over rounds)",
                                "ceiling = $label of one write of 256 x 100 B plus fdatasync on a pre-written file " +
                                    "(the bare sync of that size)",
                            ),
                        )
                    }
                }
            }
        }
    }

    private fun nonDurable(ceiling: Ceiling) {
        for (size in listOf(100, 1024)) {
            for (n in listOf(1, 16)) {
                val w = "nondurable_${sizeName(size)}_c$n"
                if (!wanted(w)) continue
                log(w)
                val payload = Random(size + n).nextBytes(size)
                val makers =
                    listOf<() -> Subject>({ KwalSubject(false) }, { RocksSubject(false) }, { ChronicleSubject(false) })
                val names = makers.map { it().name } + "ceiling"
                val chunk = maxOf(1, (64 shl 10) / size)
                val res = rounds(names) { name ->
                    if (name == "ceiling") {
                        Ceiling.appendFresh(freshDir("ceiling"), size, chunk, mode.seconds)
                    } else {
                        with(makers[names.indexOf(name)]()) { it.run(Load(n, payload, mode.seconds)) }
                    }
                }
                val med = res.mapValues { (_, rs) -> median(rs.map { it.perSecond }) }
                rows += Row(
                    w,
                    "rec/s",
                    true,
                    med.getValue("kwal"),
                    med.getValue("ceiling"),
                    med.filterKeys { it != "kwal" && it != "ceiling" },
                    listOf(
                        "ack once written to the OS, no sync; $n appenders each awaiting each append " +
                            "(kwal: Durability.None; rocksdb: sync=false, WAL on; chronicle: writeBytes)",
                        "tape: n/a (every QueueFile.add syncs)",
                        "ceiling = one thread appending the same bytes in 64 KiB chunks ($chunk records) " +
                            "to a new, growing file, no force",
                    ),
                )
            }
        }
    }

    private fun batches(ceiling: Ceiling) {
        val b = 256
        for (size in listOf(100, 1024)) {
            val w = "batch_${sizeName(size)}_b$b"
            if (!wanted(w)) continue
            log(w)
            val payload = Random(size).nextBytes(size)
            val makers =
                listOf<() -> Subject>({ KwalSubject(false) }, { RocksSubject(false) }, { ChronicleSubject(false) })
            val names = makers.map { it().name } + "ceiling"
            val res = rounds(names) { name ->
                if (name == "ceiling") {
                    Ceiling.appendFresh(freshDir("ceiling"), size, b, mode.seconds)
                } else {
                    with(makers[names.indexOf(name)]()) { it.run(Load(1, payload, mode.seconds, batch = b)) }
                }
            }
            val med = res.mapValues { (_, rs) -> median(rs.map { it.perSecond * size / 1e6 }) }
            rows += Row(
                w,
                "MB/s",
                true,
                med.getValue("kwal"),
                med.getValue("ceiling"),
                med.filterKeys { it != "kwal" && it != "ceiling" },
                listOf(
                    "one appender, batches of $b records of $size B, not synced; MB/s of payload",
                    "kwal: appendBatch(Durability.None); rocksdb: one WriteBatch per batch, sync=false; " +
                        "chronicle: no batch API, $b writeBytes in a row; tape: n/a (syncs every add)",
                    "ceiling = one write of the batch's bytes per batch, appended to a new, growing file, no force",
                ),
            )
        }
    }

    private fun topics(ceiling: Ceiling) {
        val w = "topics10k_durable_100B_c1024"
        if (!wanted(w)) return
        log(w)
        val n = 1024
        val names = Array(10_000) { "topic-%05d".format(it) }
        val payload = Random(7).nextBytes(100)
        val load = Load(n, payload, mode.seconds, topic = { a, k -> names[((a + k * n) % names.size).toInt()] })
        val fds = mutableMapOf<String, Int>()
        val makers = listOf<() -> Subject>({ KwalSubject(true) }, { RocksSubject(true) })
        val sys = makers.map { it().name } + "ceiling"
        val res = rounds(sys) { name ->
            if (name == "ceiling") {
                ceiling.groups(100, n, true, mode.seconds)
            } else {
                val before = openFiles()
                with(makers[sys.indexOf(name)]()) { s ->
                    s.run(load).also { fds[name] = maxOf(fds[name] ?: 0, openFiles() - before) }
                }
            }
        }
        val med = res.mapValues { (_, rs) -> median(rs.map { it.perSecond }) }
        val single = rows.find { it.workload == "durable_100B_c1024" }?.kwal ?: Double.NaN
        rows += Row(
            w,
            "rec/s",
            true,
            med.getValue("kwal"),
            med.getValue("ceiling"),
            med.filterKeys { it != "kwal" && it != "ceiling" },
            listOf(
                "10,000 topics, durable, 1,024 appenders; the k-th append of appender a goes to topic " +
                    "(a + 1024 k) mod 10,000",
                "kwal / kwal single-topic (durable_100B_c1024, same run) = ${ratio(med.getValue("kwal"), single)}",
                "open files added while loaded: " + fds.entries.joinToString { "${it.key} ${it.value}" },
                "rocksdb: 1,024 threads, key = topic + sequence, sync=true; chronicle and tape: n/a " +
                    "(one queue/file per topic would be 10,000 queues)",
                "ceiling = the single-file FileChannel ceiling with groups of 1,024 records (it has no topics)",
            ),
        )
    }

    private fun replay() {
        for ((size, count) in listOf(100 to mode.replay100, 1024 to mode.replay1k)) {
            val w = "replay_${sizeName(size)}"
            if (!wanted(w)) continue
            log("$w: filling $count records")
            val payload = Random(size).nextBytes(size)
            val subjects = listOf(KwalSubject(false), RocksSubject(false), ChronicleSubject(false))
            val dirs = subjects.map { freshDir(it.name) }
            val ceilingFile = opt.dir.resolve("replay-ceiling.dat")
            Ceiling.fill(ceilingFile, count.toLong() * size)
            try {
                subjects.forEachIndexed { i, s ->
                    s.open(dirs[i])
                    var done = 0
                    while (done < count) {
                        val k = minOf(1000, count - done)
                        s.appendBatch("t", List(k) { payload })
                        done += k
                    }
                }
                if (subjects[0] is KwalSubject) runBlocking { (subjects[0] as KwalSubject).wal.sync() }
                log("$w: replaying")
                val res = rounds(subjects.map { it.name } + "ceiling") { name ->
                    if (name == "ceiling") {
                        Ceiling.readAndCrc(ceilingFile) / size
                    } else {
                        val s = subjects.first { it.name == name }
                        val start = System.nanoTime()
                        val (n, bytes) = s.replay("t")
                        val el = System.nanoTime() - start
                        check(n == count.toLong() && bytes == n * size) {
                            "$name replayed $n records, $bytes bytes; expected $count"
                        }
                        n * 1e9 / el
                    }
                }
                val med = res.mapValues { (_, v) -> median(v) }
                rows += Row(
                    w,
                    "rec/s",
                    true,
                    med.getValue("kwal"),
                    med.getValue("ceiling"),
                    med.filterKeys { it != "kwal" && it != "ceiling" },
                    listOf(
                        "read back all $count records of $size B of one topic, page cache hot (the first round " +
                            "warms it), every record's checksum checked where the system has one",
                        "MB/s: " + med.entries.joinToString { "${it.key} %.0f".format(it.value * size / 1e6) },
                        "kwal: Wal.replay(topic).collect; rocksdb: iterator over the topic's key prefix; " +
                            "chronicle: one tailer, readBytes; tape: n/a (filling it costs one sync per record)",
                        "ceiling = FileChannel reading the same bytes in 64 KiB chunks with CRC32C over them",
                    ),
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

    private fun reopen() {
        val bytes = mode.reopenBytes
        val label = if (bytes >= 1L shl 30) "${bytes shr 30}GiB" else "${bytes shr 20}MiB"
        val w = "reopen_$label"
        if (!wanted(w)) return
        log(w)
        val ceilingFile = opt.dir.resolve("reopen-ceiling.dat")
        Ceiling.fill(ceilingFile, bytes)
        val res = rounds(listOf("kwal", "rocksdb", "chronicle", "ceiling")) { name ->
            if (name == "ceiling") return@rounds bytes / Ceiling.readAndCrc(ceilingFile) * 1e3
            val dir = freshDir("reopen-$name")
            try {
                writeAndKill(name, dir, bytes, 1024)
                val start = System.nanoTime()
                when (name) {
                    "kwal" -> Kwal.open(WalOptions(dir)).use { wal ->
                        val ms = (System.nanoTime() - start) / 1e6
                        check(wal.nextSequence("t") == bytes / 1024) {
                            "kwal recovered ${wal.nextSequence("t")} records of ${bytes / 1024}"
                        }
                        ms
                    }

                    "rocksdb" -> Options().use { o ->
                        RocksDB.open(o, dir.toString()).use { (System.nanoTime() - start) / 1e6 }
                    }

                    else -> SingleChronicleQueueBuilder.single(dir.toFile()).build().use { q ->
                        q.createTailer().use { t ->
                            t.toEnd()
                            t.index()
                        }
                        (System.nanoTime() - start) / 1e6
                    }
                }
            } finally {
                dir.toFile().deleteRecursively()
            }
        }
        Files.deleteIfExists(ceilingFile)
        val med = res.mapValues { (_, v) -> median(v) }
        rows += Row(
            w,
            "ms",
            false,
            med.getValue("kwal"),
            med.getValue("ceiling"),
            med.filterKeys { it != "kwal" && it != "ceiling" },
            listOf(
                "a child JVM writes $label of 1 KiB records (not synced per record; kwal syncs at the end), " +
                    "prints READY and is killed with SIGKILL; then the time to open the log ready for appends " +
                    "(page cache hot). Lower is better; ratios are kwal / other",
                "kwal: Kwal.open (recovery); rocksdb: RocksDB.open (WAL replay); chronicle: open the queue and " +
                    "move a tailer to the end; tape: n/a (filling it costs one sync per record)",
                "ceiling = reading $label from the page cache with CRC32C over every byte " +
                    "(a full-scan recovery's least work)",
            ),
        )
    }

    private fun write() {
        Files.createDirectories(opt.out)
        val base = "${LocalDate.now()}-${mode.name}"
        val png = opt.out.resolve("$base.png")
        writeChart(png)
        val loadEnd = loadAverage()
        val rt = ManagementFactory.getRuntimeMXBean()
        val md = buildString {
            appendLine(
                "# kwal comparison, ${mode.name} mode, " +
                    started.format(DateTimeFormatter.ISO_LOCAL_DATE_TIME).take(19),
            )
            appendLine()
            opt.note?.let {
                appendLine("**Note: $it**")
                appendLine()
            }
            appendLine(
                "- machine: ${Runtime.getRuntime().availableProcessors()} CPUs, " +
                    "${System.getProperty("os.name")} ${System.getProperty("os.version")}, " +
                    "${rt.vmName} ${System.getProperty("java.version")}; " +
                    "load average at start $loadStart, at end $loadEnd",
            )
            appendLine(
                "- each figure is the median of ${mode.rounds} rounds of ${mode.seconds} s " +
                    "(replay and reopen: ${mode.rounds} rounds); " +
                    "systems run round-robin in each round; ratios are kwal / other, measured in the same run",
            )
            appendLine(
                "- data directory on ${Files.getFileStore(opt.dir).type()}; " +
                    "JVM flags: ${rt.inputArguments.joinToString(" ")}",
            )
            appendLine()
            appendLine("## RESULT lines")
            appendLine()
            appendLine("```")
            rows.forEach { appendLine(it.resultLine()) }
            appendLine("```")
            appendLine()
            appendLine("![throughput against concurrency](${png.fileName})")
            appendLine()
            appendLine("## Workloads")
            for (r in rows) {
                appendLine()
                appendLine("### ${r.workload} (${r.unit}, ${if (r.higherIsBetter) "higher" else "lower"} is better)")
                appendLine()
                appendLine("| system | ${r.unit} | kwal / system |")
                appendLine("|---|---:|---:|")
                appendLine("| **kwal** | ${fmt(r.kwal)} | 1.00 |")
                appendLine("| ceiling (FileChannel) | ${fmt(r.ceiling)} | ${ratio(r.kwal, r.ceiling)} |")
                for ((p, v) in r.peers) appendLine("| $p | ${fmt(v)} | ${ratio(r.kwal, v)} |")
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
