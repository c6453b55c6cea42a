package dev.kwal.soak

import dev.kwal.Durability
import dev.kwal.Record
import dev.kwal.Wal
import dev.kwal.WalClosedException
import dev.kwal.WalOptions
import dev.kwal.crash.CrashPayloads
import dev.kwal.engine.Kwal
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.joinAll
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import java.nio.file.Files
import java.nio.file.Path
import java.util.BitSet
import java.util.Locale
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.Executors
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicLong
import kotlin.random.Random

/**
 * The knobs of one soak run. [slice] is the short run of the default build; everything scales from [runMillis].
 */
data class SoakConfig(
    val minutes: Double,
    val slice: Boolean,
    val seed: Long,
    val runMillis: Long = (minutes * 60_000).toLong(),
    val appenders: Int = 256,
    val topics: Int = 16,
    val followers: Int = 4,
    val segmentSize: Int = 1 shl 20,
    val loadFactor: Double = 0.8,
    val measureWarmupMillis: Long = if (slice) 500 else 1_000,
    val measureMillis: Long = 3_000,
    /** Each open window lasts a random time in this range. */
    val reopenMillis: LongRange = if (slice) 4_000L..6_000L else 30_000L..60_000L,
    val replayEveryMillis: Long = if (slice) 2_000 else 5_000,
    /** How often the sampler forces a full collection to read the live heap. */
    val gcEveryMillis: Long = (runMillis / 30).coerceIn(2_000, 30_000),
    val reportEveryMillis: Long = if (slice) 4_000 else 30_000,
    /** Past this many bytes in the log directory, the soak verifies it, deletes it and starts a fresh log. */
    val diskLimitBytes: Long = 2L shl 30,
    /** Samples before this are left out of the growth checks. */
    val warmupMillis: Long = (runMillis / 10).coerceIn(2_000, 60_000),
    /** Windows shorter than this are too short for the within-window thirds comparison. */
    val minWindowMillis: Long = 20_000,
    /** Acknowledged sequences per topic verified by reading them back after each reopen. */
    val samplesPerTopic: Int = 32,
) {
    val growthLimits = listOf(
        GrowthLimit("fds", 2.0, 50.0),
        GrowthLimit("maps", 2.0, 200.0),
        GrowthLimit("heap_mb", 2.0, 64.0),
    )
    val perSegmentLimits = listOf(
        PerSegmentLimit("log_fds", 0.5, 32),
        PerSegmentLimit("log_maps", 0.5, 256),
    )
}

/** What a soak run found. [failures] holds the first 200 problems; [failureCount] counts them all. */
data class SoakResult(
    val config: SoakConfig,
    val measuredRate: Double,
    val targetRate: Double,
    val appended: Long,
    val acked: Long,
    val lost: Long,
    val heapMaxMb: Double,
    val fdsMax: Int,
    val mapsMax: Int,
    val p99Millis: Double,
    val resets: Int,
    val failures: List<String>,
    val failureCount: Long,
    val report: List<String>,
) {
    fun summary(): String {
        val m = java.math.BigDecimal.valueOf(config.minutes).stripTrailingZeros().toPlainString()
        return "SOAK minutes=$m appended=$appended acked=$acked lost=$lost heap_max_mb=${Math.round(heapMaxMb)} " +
            "fds_max=$fdsMax maps_max=$mapsMax p99_ms=${"%.2f".format(Locale.ROOT, p99Millis)}"
    }
}

/**
 * A long run of kwal under a steady, realistic load, checking that nothing acknowledged is lost and that the
 * process does not accumulate heap, file descriptors or memory mappings. See [SoakSpec] for the shape of it.
 */
class Soak(
    private val cfg: SoakConfig,
    private val out: (String) -> Unit = {
        println(it)
        System.out.flush()
    },
) {
    private val failures = ConcurrentLinkedQueue<String>()
    private val failureCount = AtomicLong()
    private val report = CopyOnWriteArrayList<String>()

    private val appended = AtomicLong()
    private val acked = AtomicLong()
    private val refused = AtomicLong() // WalClosedException: not written
    private val unknown = AtomicLong() // any other failure: outcome unknown
    private val followed = AtomicLong()
    private val replays = AtomicLong()
    private val replaysCut = AtomicLong()
    private val replayed = AtomicLong()
    private val readBack = AtomicLong()
    private val lost = AtomicLong()
    private val syncLatency = Reservoir(200_000, cfg.seed)
    private val noneLatency = Reservoir(50_000, cfg.seed + 1)

    /** Sync appends with the full collections the sampler forces: those are the harness's, not the log's. */
    private val syncLatencyAll = Reservoir(200_000, cfg.seed + 2)
    private val gcOverlapped = AtomicLong()

    /** Odd while the sampler's forced collection runs; bumped at its start and end. */
    private val forcedGc = AtomicLong()

    private val samples = CopyOnWriteArrayList<Sample>()
    private val heapSamples = CopyOnWriteArrayList<HeapSample>()
    private val windows = CopyOnWriteArrayList<WindowStat>()
    private val overDiskLimit = AtomicBoolean(false)
    private var resets = 0

    private val topicNames = List(cfg.topics) { "soak-%02d".format(it) }
    private lateinit var root: Path
    private var start = 0L

    private class Epoch(val id: Int, val dir: Path, names: List<String>) {
        val models = names.map { TopicModel(it) }
    }

    private inner class Window(val id: Int, val epoch: Epoch, wal: Wal) {
        /**
         * The open log; dropped (null) once the window is closed and nothing uses it any more, so that a full
         * collection can show whether the closed log still holds anything.
         */
        @Volatile private var log: Wal? = wal
        val wal: Wal get() = checkNotNull(log) { "window $id: its log was dropped while still in use" }
        fun drop(): Wal? = log.also { log = null }

        val openedAt = runNow()

        /**
         * One window in four (not in the slice) appends only under Durability.None: a log whose callers never ask for
         * a sync. The slice keeps to the mix: its few seconds are too short to tell growth from noise there.
         */
        val noneOnly = !cfg.slice && id % 4 == 1
        val segmentsAtOpen = ProcSelf.logSize(epoch.dir).first

        @Volatile var closing = false

        /** The window after this one, or null when the run is over. */
        val next = CompletableDeferred<Window?>()
        val followersDone = AtomicInteger()

        /** Where each follower stood when its flow ended with the log's close. */
        val followerEnds = LongArray(cfg.followers) { -1 }
    }

    data class WindowStat(
        val id: Int,
        val epoch: Int,
        val openedAt: Long,
        val closedAt: Long,
        val segmentsRolled: Int,
        val noneOnly: Boolean,
    )

    @Volatile private lateinit var window: Window
    private val inFlight = AtomicInteger()

    private fun now() = (System.nanoTime() - start) / 1_000_000

    /** When the soak proper started (after the measurement), on the [now] clock. */
    private var runStart = 0L

    /** Milliseconds since the soak proper started: the clock of samples and windows. */
    private fun runNow() = now() - runStart
    private fun fail(msg: String) {
        if (failureCount.incrementAndGet() <= 200) failures += msg
        if (failureCount.get() <= 20) out("SOAK problem: $msg")
    }
    private fun say(line: String) {
        report += line
        out(line)
    }

    private fun options(dir: Path) = WalOptions(
        directory = dir,
        segmentSize = cfg.segmentSize,
        maxRecordSize = 64 shl 10,
        durability = Durability.Sync,
    )

    private suspend fun open(dir: Path): Wal = withContext(Dispatchers.IO) { Kwal.open(options(dir)) }
    private suspend fun close(wal: Wal) = withContext(Dispatchers.IO) { wal.close() }

    suspend fun run(): SoakResult {
        start = System.nanoTime()
        root = Files.createTempDirectory("kwal-soak").toRealPath()
        val samplerThread = Executors.newSingleThreadExecutor { Thread(it, "soak-sampler").apply { isDaemon = true } }
        var measured = 0.0
        var target = 0.0
        try {
            say(
                "SOAK seed=${cfg.seed} minutes=${cfg.minutes} slice=${cfg.slice} dir=$root " +
                    "appenders=${cfg.appenders} topics=${cfg.topics} followers=${cfg.followers} " +
                    "segmentSize=${cfg.segmentSize} " +
                    "reopen=${cfg.reopenMillis.first / 1000}-${cfg.reopenMillis.last / 1000}s " +
                    "disk_limit_mb=${cfg.diskLimitBytes shr 20}",
            )
            measured = measureDurable()
            target = maxOf(100.0, measured * cfg.loadFactor)
            say(
                "SOAK durable throughput: %.0f records/s (%d appenders, Sync, 100-1000 B); running at %.0f records/s"
                    .format(Locale.ROOT, measured, cfg.appenders, target),
            )
            withContext(Dispatchers.Default) { soak(target, samplerThread.asCoroutineDispatcher()) }
        } catch (e: CancellationException) {
            throw e
        } catch (e: Throwable) {
            fail("the soak stopped: $e\n${e.stackTraceToString().lines().take(12).joinToString("\n")}")
        } finally {
            if (::window.isInitialized) runCatching { window.drop()?.close() }
            samplerThread.shutdownNow()
            deleteTree(root)
        }
        return result(measured, target)
    }

    /** Durable throughput: [SoakConfig.appenders] coroutines appending under Sync as fast as acknowledgements come. */
    private suspend fun measureDurable(): Double = withContext(Dispatchers.Default) {
        val dir = root.resolve("measure")
        val wal = open(dir)
        val count = AtomicLong()
        val stop = AtomicBoolean(false)
        try {
            coroutineScope {
                val jobs = List(cfg.appenders) { id ->
                    launch {
                        val random = Random(cfg.seed xor (id.toLong() shl 20))
                        var n = 0L
                        while (!stop.get()) {
                            val topic = topicNames[random.nextInt(cfg.topics)]
                            val p = CrashPayloads.make(topic, cfg.seed, 0x8000 + id, n++, 100 + random.nextInt(901))
                            try {
                                wal.append(topic, p, Durability.Sync)
                                count.incrementAndGet()
                            } catch (e: WalClosedException) {
                                break
                            }
                        }
                    }
                }
                delay(cfg.measureWarmupMillis)
                val c0 = count.get()
                val t0 = System.nanoTime()
                delay(cfg.measureMillis)
                val c1 = count.get()
                val t1 = System.nanoTime()
                stop.set(true)
                close(wal)
                jobs.joinAll()
                (c1 - c0) * 1e9 / (t1 - t0)
            }
        } finally {
            runCatching { wal.close() }
            deleteTree(dir)
        }
    }

    private suspend fun soak(rate: Double, samplerDispatcher: kotlinx.coroutines.CoroutineDispatcher) = coroutineScope {
        val epoch = Epoch(0, root.resolve("log-0"), topicNames)
        runStart = now()
        window = Window(0, epoch, open(epoch.dir))
        val pacer = Pacer(rate)
        val appenders = List(cfg.appenders) { id -> launch { appender(id, pacer) } }
        val followers = List(cfg.followers) { f -> launch { follower(f) } }
        val replayer = launch(Dispatchers.IO) { replayer() }
        val sampler = launch(samplerDispatcher) { sampler() }
        val random = Random(cfg.seed + 3)
        fun windowLength() =
            cfg.reopenMillis.first + random.nextLong(cfg.reopenMillis.last - cfg.reopenMillis.first + 1)
        var nextReopen = now() + windowLength()
        while (runNow() < cfg.runMillis) {
            val reset = overDiskLimit.get()
            if (now() >= nextReopen || reset) {
                cycle(reset)
                nextReopen = now() + windowLength()
            }
            delay(100)
        }
        finish()
        (appenders + followers + replayer).joinAll()
        sampler.cancel()
    }

    private suspend fun appender(id: Int, pacer: Pacer) {
        val random = Random(cfg.seed * 31 + id)
        var n = 0L
        var w = window
        while (true) {
            if (w.closing) {
                w = w.next.await() ?: return
                continue
            }
            inFlight.incrementAndGet()
            try {
                if (w.closing) continue
                val t = random.nextInt(cfg.topics)
                val topic = topicNames[t]
                val roll = random.nextInt(100)
                // 55% single Sync, 20% Sync batch of 2-16, 15% single None, 10% None batch of 2-8; all None in a
                // noneOnly window
                val batch = roll in 55 until 75 || roll >= 90
                val durability = if (roll >= 75 || w.noneOnly) Durability.None else Durability.Sync
                val size = if (!batch) {
                    1
                } else if (roll < 75) {
                    2 + random.nextInt(15)
                } else {
                    2 + random.nextInt(7)
                }
                pacer.acquire(size)
                val payloads = List(size) { i ->
                    val writer = if (batch) CrashPayloads.batchWriter(id, i, size) else id
                    CrashPayloads.make(topic, cfg.seed, writer, n++, 100 + random.nextInt(901))
                }
                appended.addAndGet(size.toLong())
                val g0 = forcedGc.get()
                val t0 = System.nanoTime()
                try {
                    val first = if (batch) {
                        val range = w.wal.appendBatch(topic, payloads, durability)
                        if (range.last - range.first + 1 != size.toLong()) {
                            fail("appendBatch of $size to $topic returned $range")
                        }
                        range.first
                    } else {
                        w.wal.append(topic, payloads[0], durability)
                    }
                    val nanos = System.nanoTime() - t0
                    if (durability == Durability.Sync) syncLatencyAll.add(nanos)
                    if (g0 % 2 == 0L && forcedGc.get() == g0) {
                        (if (durability == Durability.Sync) syncLatency else noneLatency).add(nanos)
                    } else {
                        gcOverlapped.incrementAndGet()
                    }
                    val model = w.epoch.models[t]
                    for (i in 0 until size) {
                        if (!model.ack(first + i, TopicModel.crcOf(payloads[i]))) {
                            fail("$topic: sequence ${first + i} acknowledged twice (window ${w.id})")
                        }
                    }
                    acked.addAndGet(size.toLong())
                } catch (e: WalClosedException) {
                    refused.addAndGet(size.toLong())
                } catch (e: CancellationException) {
                    throw e
                } catch (e: Throwable) {
                    unknown.addAndGet(size.toLong())
                    fail("append of $size to $topic ($durability) failed: $e")
                }
            } finally {
                inFlight.decrementAndGet()
            }
        }
    }

    /**
     * Checks a record read back: its payload is intact and, if its sequence was acknowledged, is the one acknowledged.
     */
    private fun check(who: String, model: TopicModel, r: Record): Boolean {
        CrashPayloads.problem(model.name, r.payload)?.let {
            fail("$who: ${model.name} sequence ${r.sequence}: payload corrupt: $it")
            return false
        }
        val expected = model.crcOf(r.sequence) ?: return true
        if (expected != TopicModel.crcOf(r.payload)) {
            fail("$who: ${model.name} sequence ${r.sequence} holds another payload than the one acknowledged at it")
            return false
        }
        return true
    }

    private suspend fun follower(f: Int) {
        val t = f * cfg.topics / cfg.followers
        val topic = topicNames[t]
        var w = window
        var epoch = w.epoch.id
        var expected = 0L
        while (true) {
            if (w.epoch.id != epoch) {
                epoch = w.epoch.id
                expected = 0
            }
            val model = w.epoch.models[t]
            try {
                w.wal.follow(topic, expected).collect { r ->
                    if (r.sequence != expected) {
                        fail("follower of $topic: expected sequence $expected, got ${r.sequence} (window ${w.id})")
                    }
                    check("follower", model, r)
                    expected = r.sequence + 1
                    followed.incrementAndGet()
                }
                if (!w.closing) fail("follow of $topic completed while the log was open (window ${w.id}, at $expected)")
            } catch (e: WalClosedException) {
                // started after the close: nothing to read in this window
            } catch (e: CancellationException) {
                throw e
            } catch (e: Throwable) {
                fail("follower of $topic failed in window ${w.id}: $e")
            }
            w.followerEnds[f] = expected
            w.followersDone.incrementAndGet()
            w = w.next.await() ?: return
        }
    }

    private suspend fun replayer() {
        val random = Random(cfg.seed + 7)
        while (true) {
            delay(cfg.replayEveryMillis)
            val w = window
            if (w.closing) {
                if (w.next.await() == null) return else continue
            }
            inFlight.incrementAndGet()
            try {
                if (w.closing) continue
                val model = w.epoch.models[random.nextInt(cfg.topics)]
                val before = model.snapshot()
                var expected = 0L
                w.wal.replay(model.name, 0).collect { r ->
                    if (r.sequence != expected) {
                        fail("replay of ${model.name}: expected sequence $expected, got ${r.sequence}")
                    }
                    check("replay", model, r)
                    expected = r.sequence + 1
                }
                if (expected <= before.max) {
                    fail(
                        "replay of ${model.name} ended at $expected, " +
                            "but ${before.max} was acknowledged before it started",
                    )
                }
                replays.incrementAndGet()
                replayed.addAndGet(expected)
            } catch (e: WalClosedException) {
                replaysCut.incrementAndGet()
            } catch (e: CancellationException) {
                throw e
            } catch (e: Throwable) {
                fail("replay failed in window ${w.id}: $e")
            } finally {
                inFlight.decrementAndGet()
            }
        }
    }

    private suspend fun sampler() {
        var nextGc = 1_000L
        var nextReport = cfg.reportEveryMillis
        var heapMb = Double.NaN
        var lastAcked = 0L
        var lastReportAt = 0L
        var tick = 0L
        while (true) {
            tick += 1_000
            delay(maxOf(0, tick - runNow()))
            val w = window
            val open = !w.closing
            if (runNow() >= nextGc) {
                forcedGc.incrementAndGet()
                val (used, gcMs) = try {
                    ProcSelf.heapAfterGcMb()
                } finally {
                    forcedGc.incrementAndGet()
                }
                heapMb = used
                heapSamples += HeapSample(runNow(), w.id, used, gcMs)
                nextGc += cfg.gcEveryMillis
            }
            val (fds, logFds) = ProcSelf.fds(w.epoch.dir)
            val (maps, logMaps) = ProcSelf.maps(w.epoch.dir)
            val (segments, bytes) = ProcSelf.logSize(w.epoch.dir)
            val t = runNow()
            val a = acked.get()
            samples += Sample(t, w.id, open && !w.closing, fds, logFds, maps, logMaps, heapMb, segments, bytes, a)
            if (bytes > cfg.diskLimitBytes) overDiskLimit.set(true)
            if (t >= nextReport) {
                val rate = (a - lastAcked) * 1000.0 / maxOf(1, t - lastReportAt)
                val template = "SOAK t=${t / 1000}s window=${w.id} epoch=${w.epoch.id} acked=$a rate=%.0f/s " +
                    "fds=$fds (log $logFds) maps=$maps (log $logMaps) heap_mb=%.0f segments=$segments " +
                    "log_mb=${bytes shr 20} followed=${followed.get()} replays=${replays.get()} " +
                    "refused=${refused.get()} problems=${failureCount.get()}"
                out(template.format(Locale.ROOT, rate, heapMb))
                lastAcked = a
                lastReportAt = t
                nextReport += cfg.reportEveryMillis
            }
        }
    }

    /** Closes the current window's log under load, checks it on reopening, and opens the next window. */
    private suspend fun cycle(reset: Boolean) {
        val old = window
        var next = closeAndReopen(old)
        if (reset) {
            // The reopened log was just verified: close it, check it lets go of everything, and start afresh.
            val epoch = next.epoch
            close(next.wal)
            val (segments, bytes) = ProcSelf.logSize(epoch.dir)
            val released = checkReleased(next, "the verified log of epoch ${epoch.id}")
            deleteTree(epoch.dir)
            val fresh = Epoch(epoch.id + 1, root.resolve("log-${epoch.id + 1}"), topicNames)
            next = Window(next.id, fresh, open(fresh.dir))
            resets++
            overDiskLimit.set(false)
            say(
                "SOAK reset: the log reached ${bytes shr 20} MiB ($segments segments) > " +
                    "${cfg.diskLimitBytes shr 20} MiB; verified, closed ($released), deleted, " +
                    "and started a fresh log (epoch ${fresh.id}) with a fresh model",
            )
        }
        window = next
        old.next.complete(next)
    }

    /**
     * Closes [old]'s log while appenders, followers and replays are still at it, waits until every one of them has
     * its answer, checks the closed log released everything, reopens it and checks it ([verifyReopened]). Returns
     * the next window, on the reopened log; the reopened log is referenced only from it.
     */
    private suspend fun closeAndReopen(old: Window): Window {
        old.closing = true
        val t0 = System.nanoTime()
        close(old.wal) // appenders, followers and replays still running: close must answer all of them
        val closeMs = (System.nanoTime() - t0) / 1e6
        val deadline = now() + 120_000
        while (inFlight.get() > 0 || old.followersDone.get() < cfg.followers) {
            if (now() > deadline) {
                throw IllegalStateException(
                    "120 s after closing window ${old.id}: ${inFlight.get()} operations in flight, " +
                        "${cfg.followers - old.followersDone.get()} followers not done",
                )
            }
            delay(5)
        }
        val closedAt = runNow()
        val segments = ProcSelf.logSize(old.epoch.dir).first
        windows += WindowStat(old.id, old.epoch.id, old.openedAt, closedAt, segments - old.segmentsAtOpen, old.noneOnly)
        val released = checkReleased(old, "window ${old.id}")
        val t1 = System.nanoTime()
        val next = Window(old.id + 1, old.epoch, open(old.epoch.dir))
        val openMs = (System.nanoTime() - t1) / 1e6
        verifyReopened(old, next.wal)
        val recovery = next.wal.recovery
        val template = "SOAK reopen: window ${old.id} closed in %.0f ms; %s; reopened in %.0f ms " +
            "(${recovery.records} records, ${recovery.segments} segments)"
        out(template.format(Locale.ROOT, closeMs, released, openMs))
        return next
    }

    /**
     * A closed log holds nothing: no descriptor of its directory at once, and, once nothing references it and a
     * full collection has run (mappings are unmapped by the collector's cleaners), no mapping either.
     */
    private suspend fun checkReleased(closed: Window, what: String): String {
        closed.drop()
        val dir = closed.epoch.dir
        val fdsNow = ProcSelf.fds(dir).second
        if (fdsNow > 0) fail("$what: $fdsNow descriptors of the log directory still open after close()")
        val mapsNow = ProcSelf.maps(dir).second
        forcedGc.incrementAndGet()
        val (heapMb, _) = try {
            ProcSelf.heapAfterGcMb()
        } finally {
            forcedGc.incrementAndGet()
        }
        var maps = ProcSelf.maps(dir).second
        val deadline = System.nanoTime() + 5_000_000_000L
        while (maps > 0 && System.nanoTime() < deadline) {
            delay(50)
            maps = ProcSelf.maps(dir).second
        }
        if (maps > 0) fail("$what: $maps mappings of the log directory left 5 s after close() and a full GC")
        return "after close: log fds $fdsNow, log maps $mapsNow, after a full GC $maps (heap %.0f MB with no log open)"
            .format(Locale.ROOT, heapMb)
    }

    /** After a clean close: nothing acknowledged is missing, nothing unacknowledged appeared, followers saw it all. */
    private suspend fun verifyReopened(old: Window, wal: Wal) {
        val rec = wal.recovery
        if (rec.truncated || rec.droppedRecords > 0 || rec.corruption != null) {
            fail("reopen after the clean close of window ${old.id}: recovery reports $rec")
        }
        val random = Random(cfg.seed + old.id)
        for ((t, model) in old.epoch.models.withIndex()) {
            val topic = topicNames[t]
            val snap = model.snapshot()
            val next = wal.nextSequence(topic)
            if (snap.max >= next) {
                val n = model.markLostFrom(next)
                lost.addAndGet(n.toLong())
                fail(
                    "$topic after reopening window ${old.id}: nextSequence=$next " +
                        "but sequence ${snap.max} was acknowledged ($n lost)",
                )
            }
            if (next > snap.count && unknown.get() == 0L) {
                fail(
                    "$topic after reopening window ${old.id}: $next records but only ${snap.count} acknowledged " +
                        "(records written whose callers were told otherwise)",
                )
            }
            for (s in model.sample(random, cfg.samplesPerTopic)) {
                if (s >= next) continue // already counted
                val r = wal.replay(topic, s).take(1).toList().firstOrNull()
                readBack.incrementAndGet()
                if (r == null || r.sequence != s || !check("read-back", model, r)) {
                    if (model.markLost(s)) lost.incrementAndGet()
                    if (r == null || r.sequence != s) {
                        fail(
                            "$topic sequence $s, acknowledged, reads back as ${r?.sequence} " +
                                "after reopening window ${old.id}",
                        )
                    }
                }
            }
        }
        for (f in 0 until cfg.followers) {
            val topic = topicNames[f * cfg.topics / cfg.followers]
            val end = old.followerEnds[f]
            val next = wal.nextSequence(topic)
            if (end != next) {
                fail(
                    "follower of $topic stopped at $end when window ${old.id} closed; " +
                        "the reopened log holds $next records",
                )
            }
        }
    }

    /** Every acknowledged record of every topic, read back in full. */
    private suspend fun verifyAll(epoch: Epoch, wal: Wal) = withContext(Dispatchers.IO) {
        for (model in epoch.models) {
            val seen = BitSet()
            var expected = 0L
            wal.replay(model.name, 0).collect { r ->
                if (r.sequence != expected) {
                    fail("final replay of ${model.name}: expected sequence $expected, got ${r.sequence}")
                }
                if (check("final replay", model, r)) seen.set(r.sequence.toInt())
                expected = r.sequence + 1
            }
            readBack.addAndGet(expected)
            val missing = model.markLostExcept(seen)
            if (missing > 0) {
                lost.addAndGet(missing.toLong())
                fail("final replay of ${model.name}: $missing acknowledged records missing or wrong")
            }
        }
    }

    private suspend fun finish() {
        val last = window
        val final = closeAndReopen(last)
        final.closing = true // nothing but the final check uses it
        window = final
        last.next.complete(null)
        final.next.complete(null)
        try {
            verifyAll(last.epoch, final.wal)
        } finally {
            close(final.wal)
        }
        out("SOAK final check: every acknowledged record read back; " + checkReleased(final, "the final log"))
    }

    private fun result(measured: Double, target: Double): SoakResult {
        analyse()
        val sync = syncLatency.quantile(0.99) / 1e6
        say(
            "SOAK ops: appended=${appended.get()} acked=${acked.get()} refused_at_close=${refused.get()} " +
                "failed=${unknown.get()} followed=${followed.get()} replays=${replays.get()} " +
                "(records ${replayed.get()}, cut by a close ${replaysCut.get()}) " +
                "read_back=${readBack.get()} windows=${windows.size} resets=$resets",
        )
        val latencyTemplate = "SOAK latency: Sync p50=%.2f p99=%.2f p999=%.2f max=%.2f ms (%d ops sampled of %d); " +
            "None p99=%.2f ms; "
        say(
            latencyTemplate.format(
                Locale.ROOT,
                syncLatency.quantile(0.5) / 1e6,
                sync,
                syncLatency.quantile(0.999) / 1e6,
                syncLatency.quantile(1.0) / 1e6,
                minOf(syncLatency.count(), 200_000),
                syncLatency.count(),
                noneLatency.quantile(0.99) / 1e6,
            ) +
                "%d appends overlapped a forced GC and are left out (Sync p99 with them: %.2f ms)".format(
                    Locale.ROOT,
                    gcOverlapped.get(),
                    syncLatencyAll.quantile(0.99) / 1e6,
                ),
        )
        if (heapSamples.isNotEmpty()) {
            say(
                "SOAK gc: %d forced collections, longest %.0f ms; heap MB after each (t in s): ".format(
                    Locale.ROOT,
                    heapSamples.size,
                    heapSamples.maxOf { it.gcMillis },
                ) +
                    heapSamples.joinToString(" ") { "${it.tMillis / 1000}:%.0f".format(Locale.ROOT, it.usedMb) },
            )
        }
        samples.maxByOrNull { it.fds }?.let {
            say(
                "SOAK fds_max ${it.fds} at t=${it.tMillis / 1000}s (window ${it.window}, " +
                    "${if (it.open) "open" else "closing/reopening"}, log ${it.logFds}, ${it.segments} segments)",
            )
        }
        samples.maxByOrNull { it.maps }?.let {
            say(
                "SOAK maps_max ${it.maps} at t=${it.tMillis / 1000}s (window ${it.window}, " +
                    "${if (it.open) "open" else "closing/reopening"}, log ${it.logMaps}, ${it.segments} segments)",
            )
        }
        return SoakResult(
            config = cfg,
            measuredRate = measured,
            targetRate = target,
            appended = appended.get(),
            acked = acked.get(),
            lost = lost.get(),
            heapMaxMb = heapSamples.maxOfOrNull { it.usedMb } ?: 0.0,
            fdsMax = samples.maxOfOrNull { it.fds } ?: 0,
            mapsMax = samples.maxOfOrNull { it.maps } ?: 0,
            p99Millis = sync,
            resets = resets,
            failures = failures.toList(),
            failureCount = failureCount.get(),
            report = report.toList(),
        )
    }

    /**
     * The growth checks. Across the run (after warm-up): the last third's maximum against the first third's, for
     * all descriptors and all mappings while a log is open, and the heap after a full collection; a reopen releases
     * what the log held, so this catches what survives a close ([checkReleased] checks the closed log directly).
     * Within each open window of a long run: the log-owned descriptors and mappings against the segments rolled
     * meanwhile, which catches what the log holds per sealed segment while it stays open, and, in windows long
     * enough to tell, the thirds comparison again.
     */
    private fun analyse() {
        val withinWindow = if (cfg.slice) {
            "not checked in the slice (windows too short)"
        } else {
            "per segment on every window, thirds on windows >= ${cfg.minWindowMillis / 1000}s"
        }
        say(
            "SOAK limits: " + (cfg.growthLimits + cfg.perSegmentLimits).joinToString("; ") +
                "; warm-up ${cfg.warmupMillis / 1000}s; within a window: " + withinWindow,
        )
        if (!ProcSelf.available) say("SOAK growth: /proc/self not available, descriptors and mappings not checked")
        val runEnd = samples.maxOfOrNull { it.tMillis } ?: return
        val from = cfg.warmupMillis
        val third = (runEnd - from) / 3.0
        fun values(what: String): List<Pair<Long, Double>> = when (what) {
            // while a log is open: recovery briefly opens and maps every segment, which is not a leak
            "fds" -> samples.filter { it.open }.map { it.tMillis to it.fds.toDouble() }

            "maps" -> samples.filter { it.open }.map { it.tMillis to it.maps.toDouble() }

            else -> heapSamples.map { it.tMillis to it.usedMb }
        }
        for (limit in cfg.growthLimits) {
            if (limit.what != "heap_mb" && !ProcSelf.available) continue
            val v = values(limit.what).filter { it.first >= from && it.second >= 0 }
            val first = v.filter { it.first < from + third }.maxOfOrNull { it.second }
            val last = v.filter { it.first >= from + 2 * third }.maxOfOrNull { it.second }
            if (first == null || last == null) {
                say("SOAK growth ${limit.what}: too few samples after warm-up to compare")
                continue
            }
            val bound = limit.bound(first)
            val ok = last <= bound
            say(
                "SOAK growth ${limit.what}: first third max ${fmt(first)}, last third max ${fmt(last)}, " +
                    "limit ${fmt(bound)}: ${if (ok) "ok" else "GREW"}",
            )
            if (!ok) {
                fail(
                    "${limit.what} grew across the run: last third max ${fmt(last)} > ${fmt(bound)} " +
                        "(first third max ${fmt(first)})",
                )
            }
        }
        for (ws in windows) {
            // from 2 s after the open (recovery's own mappings settle), while the log was open
            val inside = samples.filter { it.window == ws.id && it.open && it.tMillis >= ws.openedAt + 2_000 }
            if (inside.size < 3) continue
            val span = inside.last().tMillis - inside.first().tMillis
            val a = inside.first()
            val b = inside.last()
            val rolled = b.segments - a.segments
            val template = "SOAK window ${ws.id} (epoch ${ws.epoch}${if (ws.noneOnly) ", None only" else ""}): " +
                "%.0f s, %d segments rolled, fds %d->%d (log %d->%d), maps %d->%d (log %d->%d), " +
                "per segment: log fds %.2f, log maps %.2f"
            val line = template.format(
                Locale.ROOT,
                (ws.closedAt - ws.openedAt) / 1000.0,
                ws.segmentsRolled,
                a.fds,
                b.fds,
                a.logFds,
                b.logFds,
                a.maps,
                b.maps,
                a.logMaps,
                b.logMaps,
                if (rolled > 0) (b.logFds - a.logFds).toDouble() / rolled else 0.0,
                if (rolled > 0) (b.logMaps - a.logMaps).toDouble() / rolled else 0.0,
            )
            say(line)
            if (cfg.slice || !ProcSelf.available) continue
            // Per sealed segment: the floors keep a short window's noise out, so any window of a long run qualifies
            // (a window cut short by a disk reset included).
            for (limit in cfg.perSegmentLimits) {
                val growth = if (limit.what == "log_fds") b.logFds - a.logFds else b.logMaps - a.logMaps
                if (growth > limit.bound(rolled)) {
                    fail(
                        "${limit.what} grew by $growth within window ${ws.id}" +
                            "${if (ws.noneOnly) " (None only)" else ""} while $rolled segments rolled " +
                            "(> ${fmt(limit.bound(rolled))}): held per sealed segment while the log is open",
                    )
                }
            }
            if (span < cfg.minWindowMillis - 3_000) continue
            val t3 = span / 3.0
            for (limit in cfg.growthLimits.filter { it.what != "heap_mb" }) {
                fun v(s: Sample) = if (limit.what == "fds") s.fds.toDouble() else s.maps.toDouble()
                val first = inside.filter { it.tMillis < a.tMillis + t3 }.maxOf { v(it) }
                val last = inside.filter { it.tMillis >= a.tMillis + 2 * t3 }.maxOf { v(it) }
                if (last > limit.bound(first)) {
                    fail(
                        "${limit.what} grew within window ${ws.id}: last third max ${fmt(last)} > " +
                            "${fmt(limit.bound(first))} (first third max ${fmt(first)})",
                    )
                }
            }
        }
    }

    private fun deleteTree(dir: Path) {
        if (!Files.exists(dir)) return
        runCatching {
            Files.walk(dir).use { paths ->
                paths.sorted(Comparator.reverseOrder()).forEach { runCatching { Files.deleteIfExists(it) } }
            }
        }
    }
}
