package dev.kwal.torture

import dev.kwal.Durability
import dev.kwal.RecordTooLargeException
import dev.kwal.Wal
import dev.kwal.WalCorruptedException
import dev.kwal.crash.TortureOptions
import dev.kwal.engine.KwalEngine
import dev.kwal.engine.io.PowerLossFileIo
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.TimeoutCancellationException
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import java.nio.ByteBuffer
import java.nio.file.Path
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicLong
import kotlin.random.Random

/**
 * Simulated power loss under a random concurrent workload, over [PowerLossFileIo].
 *
 * Each cut i has its own seed (derived from the run's seed and i, printed in every failure). A disk lives for
 * [CUTS_PER_DISK] cuts, so later cuts hit logs that recovery has already repaired. Each round opens the log with
 * options of its own ([optionsOf]: [TortureOptions.random] from the cut's seed; a quarter of the rounds keep the
 * previous round's sizes): segment, block, record, group and queue sizes change between the opens of one disk,
 * bigger and smaller, as the options allow, and so do the default durability and the corruption policy.
 *
 * One round: open the log on the disk (recovery), check it against everything known about the disk, run a few
 * coroutines appending single records and batches to a few topics — under the log's default durability or, per
 * call, [Durability.Sync], [Durability.None] or [Durability.Interval], with an occasional [Wal.sync] — and cut the
 * power at a random moment: after a random number of acknowledgements, inside a random seam call while appends are
 * in flight, or inside recovery itself. The engine is then abandoned (its handles are dead) and closed, tolerating
 * errors. Record sizes are relative to the block ([TortureOptions.recordSize]: tiny, about half a block, near the
 * largest record); now and then a batch is long (hundreds of records, [TortureOptions.longBatch]) or fills an empty
 * segment to its last byte, which must be accepted, or is a few bytes larger, which must be refused
 * ([TortureOptions.exactBatch]); a quarter of the rounds start with a unit as large as today's segment allows.
 *
 * The check after each reopen: the open succeeds and recovery reports no corruption (a power cut is never
 * corruption: under [dev.kwal.CorruptionPolicy.TRUNCATE] a report of one stands for the open FAIL would have
 * failed); every topic replays without error, with sequences dense from 0; every record served is one that was
 * appended to that topic (payloads are unique and self-describing), at most once, at the sequence it was
 * acknowledged with if it was; every record acknowledged under Sync (whether the call or the log's default said
 * so), acknowledged before a successful [Wal.sync], or served by an earlier reopen is there; and every batch is
 * there whole or not at all. Records acknowledged under None or Interval and not covered by a sync() may be lost
 * (the page cache is gone) — with one bound, whatever the durability: a record is there if every file that held
 * unsynced writes when it was acknowledged ([PowerLossFileIo.unsynced]) was forced after that and before the cut
 * ([PowerLossFileIo.syncedBeforeLastCut]: everything written before its acknowledgement was durable).
 *
 * **Retention.** Now and then a worker truncates a topic ([Wal.truncateBefore]), commits its consumer's position (each
 * consumer's positions only grow), applies retention ([Wal.applyRetention], under the round's drawn
 * [TortureOptions.topicRetention], compaction threshold and consumer override; some rounds also run the background
 * job), or replays a topic slowly while segments are deleted under it; a third of the rounds that would cut after a
 * number of acknowledgements cut inside an application of retention instead (the cut armed when it starts). The check
 * then reads each topic from its first sequence: not below any truncation known durable (acknowledged under Sync, or
 * followed by a sync() or an applyRetention() that returned: it syncs), not above what was issued or what retention
 * allowed ([TortureOptions.retentionBound]: a count limit keeps the newest records, consumers hold it back unless
 * overridden); records there dense and every record bound to survive at or above it present (an applyRetention that
 * returned binds every record acknowledged before it); consumer positions at least their last durable commit, at
 * most their last commit.
 *
 * **Durability.Interval.** A third of the rounds whose log defaults to [Durability.Interval] are *quiet*: the writers
 * stop after their random number of acknowledgements, one more record is appended under the log's default, and the
 * power is cut only once the disk holds no unsynced write — which the log's background sync must bring about within
 * [intervalBound] of the interval, with nothing else asking for a sync. If it does not, the round counts as a
 * `lateSync`; if it does, every record acknowledged before is then bound to survive by the rule above. Every failure
 * names the options of the round and of the disk's earlier opens.
 */
object PowerCutTorture {
    const val CUTS_PER_DISK = 10
    private val DIR: Path = Path.of("/powercut/log")
    private val NONE_CHANCES = doubleArrayOf(0.0, 0.15, 0.15, 0.5, 0.9)
    private val RETENTION_CHANCES = intArrayOf(0, 5, 10, 20)
    private val READ_CHANCES = intArrayOf(0, 3, 10)
    private val TOPICS = listOf("alpha", "beta", "gamma", "delta")
    private val CONSUMERS = listOf("c0", "c1", "c2", "c3")

    /**
     * The options of the round of cut seed [cs], after a round that used [previous]: segments of at most 2 MiB and
     * records of at most 64 KiB, since the disk is in memory.
     */
    fun optionsOf(cs: Long, previous: TortureOptions?): TortureOptions =
        TortureOptions.next(Random(cs xor 0x2545F4914F6CDD1DL), previous, maxSegment = 2 shl 20, maxRecord = 64 shl 10)
            .let { if (copies) it else it.copy(compactionThreshold = 0.0) }

    /**
     * Whether retention copies live blocks forward (the drawn compaction threshold) or never (0): `-Dtorture.copies`,
     * on by default. With copies on, this torture found two engine bugs (a copy laid into a next segment of today's,
     * smaller, size ran past its end; recovery ignored copies above a truncated block kept in place): see
     * PowerCutCopiesSpec, which replays the seeds that hit them.
     */
    var copies: Boolean = System.getProperty("torture.copies")?.toBoolean() ?: true

    /** The seed of cut [i] of a run seeded [seed]. */
    fun cutSeed(seed: Long, i: Int): Long = seed * 6364136223846793005L + (i + 1) * -7046029254386353131L

    /** A record the checks know: where it was (or must be), and which batch it belongs to. */
    private class Sent(
        val id: Long,
        val topic: String,
        val payload: ByteArray,
        val batch: Long,
        val index: Int,
        val batchSize: Int,
    ) {
        @Volatile var seq: Long = -1

        /**
         * The files with unsynced writes just after its acknowledgement, and the durability it was acknowledged under.
         */
        @Volatile var unsyncedAtAck: PowerLossFileIo.Unsynced? = null

        @Volatile var durability: String = ""
    }

    /**
     * How long a quiet round of a log under `Interval(millis)` waits for the disk to hold no unsynced write before it
     * counts a late sync: many intervals, and never under 3 s, so a loaded machine does not make it fail.
     */
    fun intervalBound(millis: Long): Long = maxOf(3_000L, 60 * millis)

    /** Everything appended to one disk, and what must survive. */
    private class Model {
        val sent = ConcurrentHashMap<Long, Sent>()

        /**
         * Records that must be present at their sequence: acked under Sync, covered by a sync(), or seen after a
         * reopen.
         */
        val must = ConcurrentHashMap<Long, String>() // id -> why
        val batches = ConcurrentHashMap<Long, List<Sent>>()
        val nextId = AtomicLong(1)
        val nextBatch = AtomicLong(1)
        var pendingCheck = false

        /** The options of the last open: the final check opens with them. */
        var options: TortureOptions = TortureOptions.CLASSIC

        /** The options of every open of this disk, for failure messages: the data was written under them. */
        val history = ArrayList<TortureOptions>()

        /** Per topic, the lowest first sequence it may have: its truncations known to be durable. */
        val minFirst = ConcurrentHashMap<String, Long>()

        /**
         * Per topic, the highest first sequence a truncation so far may have given it: every truncateBefore issued
         * (acknowledged or not), what each round's retention may have truncated ([TortureOptions.retentionBound]),
         * what a check found.
         */
        val maxFirst = ConcurrentHashMap<String, Long>()

        /** Per `consumer/topic`: the last commit known to be durable (commits of one consumer only grow). */
        val minCommitted = ConcurrentHashMap<String, Long>()

        /** Per `consumer/topic`: the highest commit issued, acknowledged or not. */
        val maxCommitted = ConcurrentHashMap<String, Long>()
    }

    private class Counts {
        var inRecovery = 0
        var armed = 0
        var afterAcks = 0
        var atEnd = 0
        var truncatedReopens = 0
        var emptyActive = 0
        var emptySmallerActive = 0
        var droppedRecords = 0L
        var maxSegments = 0
        var dirOpsLost = 0L
        var sectorsReverted = 0L
        var sectorsTorn = 0L
        var acked = 0L
        var lost = 0L
        var corruptServed = 0L
        var failedReopens = 0L
        var lateSyncs = 0L
        var quietRounds = 0
        var quietWaitMaxMs = 0L
        var boundBySyncs = 0L
        var truncations = 0L
        var retentions = 0L
        var segmentsDeleted = 0L
        var blocksCopied = 0L
        var retentionCuts = 0L
        var retentionCutRounds = 0
        var commits = 0L
        var workloadReads = 0L
        var readSkips = 0L
        var truncatedAway = 0L
        val options = HashSet<TortureOptions>()
        val failures = ArrayList<String>()
        fun fail(msg: String) {
            if (failures.size < 50) failures.add(msg)
        }
    }

    /**
     * Runs [cuts] power cuts seeded by [seed]; [progress] gets a line now and then and statistics at the end.
     * [lyingDisk] makes `fsync` a no-op, for checking that the torture notices lost records. [firstCut] (a multiple
     * of [CUTS_PER_DISK]) starts at that cut of the run: a disk's history depends only on its own cuts, so a failure
     * at cut i replays from `i - i % CUTS_PER_DISK` (as far as the scheduling of the workload allows).
     */
    fun run(
        cuts: Int,
        seed: Long,
        lyingDisk: Boolean = false,
        firstCut: Int = 0,
        progress: (String) -> Unit = {},
    ): TortureResult {
        require(firstCut % CUTS_PER_DISK == 0) { "firstCut must be a multiple of $CUTS_PER_DISK" }
        val c = Counts()
        var disk: PowerLossFileIo? = null
        var model = Model()
        var lastSeed = seed
        var done = 0
        val started = System.nanoTime()
        for (i in firstCut until firstCut + cuts) {
            val cs = cutSeed(seed, i)
            if (i % CUTS_PER_DISK == 0) {
                disk?.let {
                    finalCheck(it, model, c, "seed=$seed cut=${i - 1} cutSeed=$lastSeed options=[${model.options}]")
                }
                disk = PowerLossFileIo(seed = cs).also { it.ignoreForce = lyingDisk }
                model = Model()
            }
            val options = optionsOf(cs, if (i % CUTS_PER_DISK == 0) null else model.options)
            model.options = options
            model.history.add(options)
            c.options.add(options)
            val earlier = model.history.dropLast(1).distinct().joinToString("; ")
            // A third of the rounds of a log under Interval let its background sync run before the cut (see the
            // class doc).
            val quiet = !lyingDisk && options.durability is Durability.Interval &&
                Random(cs xor 0x5851F42D4C957F2DL).nextInt(3) == 0
            round(
                disk!!,
                model,
                c,
                Random(cs),
                Random(cs xor 0x3C6EF372FE94F82BL),
                options,
                quiet,
                "seed=$seed cut=$i cutSeed=$cs options=[$options] earlier opens of this disk=[$earlier]",
            )
            lastSeed = cs
            done++
            if (done % 500 == 0) {
                progress("power cuts: $done/$cuts in ${(System.nanoTime() - started) / 1_000_000} ms, acked=${c.acked}")
            }
        }
        disk?.let {
            finalCheck(
                it,
                model,
                c,
                "seed=$seed cut=${firstCut + cuts - 1} cutSeed=$lastSeed options=[${model.options}]",
            )
        }
        progress(
            "POWERCUT stats: cuts in recovery=${c.inRecovery} inside a seam call=${c.armed} " +
                "after acks=${c.afterAcks} at the end=${c.atEnd}; " +
                "reopens that truncated=${c.truncatedReopens} dropping ${c.droppedRecords} records; " +
                "most segments=${c.maxSegments}; reopens with an empty segment after the data=${c.emptyActive} " +
                "(an empty segment of another size than today's=${c.emptySmallerActive}); " +
                "directory ops lost=${c.dirOpsLost} sectors reverted=${c.sectorsReverted} torn=${c.sectorsTorn}; " +
                "records bound to survive by the syncs after their acknowledgement=${c.boundBySyncs}; " +
                "quiet Interval rounds=${c.quietRounds} " +
                "(longest wait for the background sync ${c.quietWaitMaxMs} ms, late syncs=${c.lateSyncs}); " +
                "retention: truncations=${c.truncations} commits=${c.commits} applications=${c.retentions} " +
                "segments deleted=${c.segmentsDeleted} blocks copied=${c.blocksCopied} " +
                "cuts inside an application=${c.retentionCuts} (of ${c.retentionCutRounds} rounds aiming there); " +
                "replays during the workload=${c.workloadReads} (skipping truncated records ${c.readSkips}); " +
                "records bound to survive found truncated away=${c.truncatedAway}",
        )
        return TortureResult(
            cuts = done.toLong(),
            acked = c.acked,
            lost = c.lost,
            corruptServed = c.corruptServed,
            failedReopens = c.failedReopens,
            lateSyncs = c.lateSyncs,
            truncations = c.truncations,
            retentions = c.retentions,
            segmentsDeleted = c.segmentsDeleted,
            blocksCopied = c.blocksCopied,
            retentionCuts = c.retentionCuts,
            failures = c.failures,
            options = c.options,
        )
    }

    private fun open(disk: PowerLossFileIo, options: TortureOptions): KwalEngine =
        KwalEngine.open(options.of(DIR), disk.session())

    private fun finalCheck(disk: PowerLossFileIo, model: Model, c: Counts, tag: String) {
        if (!model.pendingCheck) return
        val wal = try {
            open(disk, model.options)
        } catch (e: Throwable) {
            c.failedReopens++
            c.fail("$tag: final reopen failed: $e")
            return
        }
        try {
            check(wal, model, c, tag, model.options, pins(wal, model))
        } finally {
            closeQuietly(wal, c, tag)
        }
    }

    private fun round(
        disk: PowerLossFileIo,
        model: Model,
        c: Counts,
        rnd: Random,
        extra: Random,
        options: TortureOptions,
        quiet: Boolean,
        tag: String,
    ) {
        val cutRandom = Random(rnd.nextLong())
        val mode = rnd.nextInt(100)
        // 0..14: a cut inside recovery (or soon after, if recovery is short)
        if (mode < 15) disk.armCut(1L + rnd.nextInt(60), cutRandom)
        val gen = disk.generation
        val wal = try {
            open(disk, options)
        } catch (e: Throwable) {
            if (disk.generation != gen) {
                // cut inside recovery: check on the next open
                c.inRecovery++
                tally(disk, c)
                model.pendingCheck = true
                return
            }
            disk.disarm()
            c.failedReopens++
            c.fail(
                "$tag: reopen failed after a power cut: $e${e.cause?.let { " (cause $it)" } ?: ""}; " +
                    "disk: ${describe(disk)}",
            )
            model.pendingCheck = false
            return
        }
        try {
            // Recovery was shorter than the armed count: the cut falls in the workload instead.
            val workloadMode = (if (disk.disarm()) 15 + rnd.nextInt(40) else mode).let { m ->
                if (quiet) 55 + m % 45 else m // a quiet round stops after a number of acknowledgements, then waits
            }
            val pins = pins(wal, model)
            if (model.pendingCheck) check(wal, model, c, tag, options, pins)
            model.pendingCheck = true
            val report = wal.recovery
            if (report.truncated) {
                c.truncatedReopens++
                c.droppedRecords += report.droppedRecords
            }
            noteActive(disk, options, c)
            c.maxSegments = maxOf(c.maxSegments, report.segments)
            val acked = ConcurrentLinkedQueue<Sent>()
            val pending = ConcurrentLinkedQueue<Pair<String, Long>>()
            val armedRetention = workload(
                disk, wal, model, c, rnd, extra, cutRandom, workloadMode, options, quiet, acked, pending, pins, tag,
            )
            when {
                // A round that aims a cut inside retention and has not made it yet: an application now, the cut
                // armed inside it (or just after).
                armedRetention && disk.generation == gen -> {
                    val covered = acked.filter { !model.must.containsKey(it.id) }
                    try {
                        runBlocking {
                            withTimeout(30_000) {
                                applyRetention(
                                    disk, wal, model, c, options, pins, covered, pending.toList(), cutRandom, true,
                                    gen, tag,
                                )
                            }
                        }
                    } catch (e: TimeoutCancellationException) {
                        c.failedReopens++
                        c.fail("$tag: applyRetention hangs (cut=${disk.generation != gen})")
                    }
                    if (disk.generation == gen) {
                        disk.disarm()
                        disk.cut(cutRandom)
                    }
                    c.afterAcks++
                }

                disk.generation != gen -> if (workloadMode < 55) c.armed++ else c.afterAcks++

                quiet -> {
                    disk.disarm()
                    // One more append under the log's default durability, so that the background sync has work to do.
                    val s = newSent(model, TOPICS[0], 8 + rnd.nextInt(200), batch = 0, index = 0, batchSize = 1)
                    s.seq = runBlocking { wal.append(s.topic, s.payload) }
                    s.unsyncedAtAck = disk.unsynced()
                    s.durability = TortureOptions.durabilityName(options.durability)
                    acked.add(s)
                    awaitBackgroundSync(disk, options, c, tag)
                    disk.cut(cutRandom)
                }

                else -> {
                    c.atEnd++
                    disk.disarm()
                    disk.cut(cutRandom)
                }
            }
            tally(disk, c)
            boundBySyncs(disk, model, c, acked)
            // Whatever retention did this round (the workload's applications, the background job) went no further
            // than its options allow, given what the topics held.
            for (t in TOPICS) {
                model.maxFirst.merge(t, options.retentionBound(t, wal.nextSequence(t), pins[t]), ::maxOf)
            }
        } finally {
            closeQuietly(wal, c, tag)
        }
    }

    /**
     * A quiet round under `Interval(millis)`: the writers have stopped; waits until the disk holds no unsynced write,
     * which only the log's background sync can bring about now. Longer than [intervalBound] is a late sync.
     */
    private fun awaitBackgroundSync(disk: PowerLossFileIo, options: TortureOptions, c: Counts, tag: String) {
        val millis = (options.durability as Durability.Interval).millis
        val started = System.nanoTime()
        val bound = intervalBound(millis)
        c.quietRounds++
        while (true) {
            val pending = disk.unsynced()
            val waited = (System.nanoTime() - started) / 1_000_000
            if (pending.inodes.isEmpty()) {
                c.quietWaitMaxMs = maxOf(c.quietWaitMaxMs, waited)
                return
            }
            if (waited > bound) {
                c.lateSyncs++
                c.fail(
                    "$tag: under Interval(${millis}ms), $waited ms after the last acknowledgement, " +
                        "with nothing else asking for a sync, ${pending.inodes.size} file(s) still held unsynced " +
                        "writes (${disk.forces} forces so far): no background sync",
                )
                return
            }
            Thread.sleep(1)
        }
    }

    /**
     * After the cut: every record acknowledged this round for which every file with unsynced writes at its
     * acknowledgement was forced afterwards, before the cut, must survive from now on (everything written before its
     * acknowledgement was durable).
     */
    private fun boundBySyncs(disk: PowerLossFileIo, model: Model, c: Counts, acked: Collection<Sent>) {
        for (s in acked) {
            val u = s.unsyncedAtAck ?: continue
            if (disk.syncedBeforeLastCut(u) &&
                model.must.putIfAbsent(
                    s.id,
                    "acknowledged under ${s.durability}; every file with " +
                        "unsynced writes at its acknowledgement was synced after it, before the cut",
                ) == null
            ) {
                c.boundBySyncs++
            }
        }
    }

    /**
     * Statistics of the state recovery left: whether the segment after the last one holding data (the active one,
     * or a spare) is empty, and whether an empty segment of another size than today's is left (recovery replaces or
     * deletes those: the writer must never roll past an empty segment). Reads the simulated disk without seam calls.
     */
    private fun noteActive(disk: PowerLossFileIo, options: TortureOptions, c: Counts) {
        fun empty(b: ByteArray) = b.size >= 112 && (64 until 112).all { b[it] == 0.toByte() }
        var id = 1
        var lastData = 0
        var last = 0
        var otherSize = false
        while (true) {
            val bytes = disk.contentOf(segmentPath(id)) ?: break
            if (!empty(bytes)) {
                lastData = id
            } else if (bytes.size != options.segmentSize) {
                otherSize = true
            }
            last = id++
        }
        if (last > lastData) c.emptyActive++
        if (otherSize) c.emptySmallerActive++
    }

    /** The segments on [disk] (after a failure): id, file size, the size in its header, where its data ends. */
    private fun describe(disk: PowerLossFileIo): String {
        val out = ArrayList<String>()
        var id = 1
        while (true) {
            val b = disk.contentOf(segmentPath(id)) ?: if (id > 1 && disk.contentOf(segmentPath(id + 1)) == null) {
                break
            } else {
                out.add("$id: missing")
                id++
                continue
            }
            var end = b.size
            while (end > 0 && b[end - 1] == 0.toByte()) end--
            val headerSize = if (b.size >= 16) ByteBuffer.wrap(b).getInt(12) else -1
            out.add("$id: ${b.size} B (header $headerSize), data to $end")
            id++
        }
        return out.joinToString("; ")
    }

    private fun segmentPath(id: Int): Path = DIR.resolve("seg-%010d.kwal".format(id))

    private fun tally(disk: PowerLossFileIo, c: Counts) {
        val s = disk.lastCut ?: return
        c.dirOpsLost += s.dirOpsLost
        c.sectorsReverted += s.sectorsReverted
        c.sectorsTorn += s.sectorsTorn
    }

    /**
     * The consumers holding a position in each topic when a log opened, and so all the while it was open (none is
     * deleted). [get] is the highest position the lowest of them may have now (commits of one consumer only grow, so
     * it is at most its last commit issued): the most retention may truncate of the topic, unless the options
     * override consumers. Null: no consumer held one, so retention may truncate as far as its limits say.
     */
    private class Pins(private val holders: Map<String, List<Pair<String, Long>>>, private val model: Model) {
        operator fun get(topic: String): Long? = holders[topic]?.minOfOrNull { (consumer, at) ->
            maxOf(at, model.maxCommitted["$consumer/$topic"] ?: at)
        }

        override fun toString() = TOPICS.joinToString(",") { "$it:${get(it)}" }
    }

    private fun pins(wal: Wal, model: Model): Pins = Pins(
        TOPICS.associateWith { t ->
            CONSUMERS.mapNotNull { consumer -> wal.committed(consumer, t)?.let { consumer to it } }
        }
            .filterValues { it.isNotEmpty() },
        model,
    )

    /** Raises what [durable] names (`F:topic` a truncation, `C:consumer/topic` a commit) to the known-durable state. */
    private fun promote(model: Model, durable: Collection<Pair<String, Long>>) {
        for ((key, value) in durable) {
            when {
                key.startsWith("F:") -> model.minFirst.merge(key.substring(2), value, ::maxOf)
                else -> model.minCommitted.merge(key.substring(2), value, ::maxOf)
            }
        }
    }

    /**
     * One application of retention ([Wal.applyRetention]), with the cut armed inside it if [arm]. Once it returns,
     * everything acknowledged before the call is durable (step 4 syncs the log): [covered] records must survive, the
     * [pendingControl] truncations and commits are durable, and so are the truncations it reports — which go no
     * further than the options allow.
     */
    private suspend fun applyRetention(
        disk: PowerLossFileIo,
        wal: Wal,
        model: Model,
        c: Counts,
        options: TortureOptions,
        pins: Pins,
        covered: Collection<Sent>,
        pendingControl: Collection<Pair<String, Long>>,
        cutRandom: Random,
        arm: Boolean,
        gen: Int,
        tag: String,
    ) {
        val atStart = disk.generation
        if (arm) {
            synchronized(c) { c.retentionCutRounds++ }
            disk.armCut(1L + cutRandom.nextInt(40), cutRandom)
        }
        val report = try {
            wal.applyRetention()
        } catch (e: CancellationException) {
            throw e
        } catch (e: Exception) {
            if (disk.generation == gen) {
                synchronized(c) { c.fail("$tag: applyRetention failed before any power cut: $e") }
            } else if (disk.generation != atStart) {
                synchronized(c) { c.retentionCuts++ }
            }
            return
        }
        if (disk.generation != atStart) synchronized(c) { c.retentionCuts++ }
        synchronized(c) {
            c.retentions++
            c.truncations += report.truncated.size
            c.segmentsDeleted += report.segmentsDeleted
            c.blocksCopied += report.blocksCopied
            for ((topic, first) in report.truncated) {
                val allowed = maxOf(
                    model.maxFirst[topic] ?: 0,
                    options.retentionBound(topic, wal.nextSequence(topic), pins[topic]),
                )
                if (first > allowed) {
                    c.lost++
                    c.fail(
                        "$tag: retention truncated $topic to $first, past what its options allow ($allowed, " +
                            "pinned by consumers at ${pins[topic]})",
                    )
                }
            }
        }
        for ((topic, first) in report.truncated) model.minFirst.merge(topic, first, ::maxOf)
        promote(model, pendingControl)
        for (s in covered) model.must.putIfAbsent(s.id, "acknowledged before an applyRetention() returned (it syncs)")
    }

    /**
     * Replays [topic] during the workload, slowly, while others truncate and retention deletes segments: records in
     * order, each one appended there at its acknowledged sequence, dense but for skips to the first sequence.
     */
    private suspend fun replayDuringWorkload(
        disk: PowerLossFileIo,
        wal: Wal,
        model: Model,
        c: Counts,
        topic: String,
        fromFirst: Boolean,
        gen: Int,
        tag: String,
    ) {
        var expected = if (fromFirst) wal.firstSequence(topic) else 0L
        var skipped = false
        var problem: String? = null
        var n = 0
        try {
            wal.replay(topic, expected).collect { rec ->
                if (rec.sequence != expected) {
                    if (rec.sequence < expected || rec.sequence > wal.firstSequence(topic)) {
                        if (problem == null) {
                            problem = "served $topic/${rec.sequence} where $expected was due " +
                                "(first sequence now ${wal.firstSequence(topic)})"
                        }
                    }
                    skipped = true
                }
                expected = rec.sequence + 1
                val id = if (rec.payload.size >= 8) ByteBuffer.wrap(rec.payload).getLong() else -1
                val s = model.sent[id]
                if (problem == null &&
                    (
                        s == null || s.topic != topic || !s.payload.contentEquals(rec.payload) ||
                            (s.seq >= 0 && s.seq != rec.sequence)
                        )
                ) {
                    problem = "served $topic/${rec.sequence}: not the record appended there (id $id)"
                }
                if (++n % 8 == 0) kotlinx.coroutines.delay(1) else kotlinx.coroutines.yield()
            }
        } catch (e: CancellationException) {
            throw e
        } catch (e: Exception) {
            if (disk.generation == gen) problem = problem ?: "a replay of $topic during the workload threw $e"
        }
        synchronized(c) {
            c.workloadReads++
            if (skipped) c.readSkips++
            if (problem != null && disk.generation == gen) {
                c.corruptServed++
                c.fail("$tag: $problem")
            }
        }
    }

    private fun closeQuietly(wal: Wal, c: Counts, tag: String) {
        val t = Thread { runCatching { wal.close() } }
        t.isDaemon = true
        t.start()
        t.join(TimeUnit.SECONDS.toMillis(20))
        if (t.isAlive) {
            c.failedReopens++
            c.fail("$tag: close() hangs")
        }
    }

    private fun workload(
        disk: PowerLossFileIo,
        wal: Wal,
        model: Model,
        c: Counts,
        rnd: Random,
        extra: Random,
        cutRandom: Random,
        mode: Int,
        options: TortureOptions,
        quiet: Boolean,
        roundAcked: ConcurrentLinkedQueue<Sent>,
        pending: ConcurrentLinkedQueue<Pair<String, Long>>,
        pins: Pins,
        tag: String,
    ): Boolean {
        val writers = 1 + rnd.nextInt(4)
        val ops = 4 + rnd.nextInt(if (rnd.nextInt(4) == 0) 200 else 60)
        val gen = disk.generation
        val acks = AtomicInteger()
        // 15..54: a cut inside a random seam call while appends are in flight; 55..99: after a number of acks.
        val drawnCutAfterAcks = if (mode >= 55) rnd.nextInt(ops + 1) else -1
        if (mode in 15..54) disk.armCut(1L + rnd.nextInt(ops * 2 + 1), cutRandom)
        // Some rounds leave much in the page cache: a high share of appends under Durability.None, big records.
        val noneChance = NONE_CHANCES[rnd.nextInt(NONE_CHANCES.size)]
        val bigChance = if (rnd.nextInt(4) == 0) 0.5 else 0.1
        // Some rounds start with a unit as large as today's segment allows: larger than an older, smaller segment that
        // recovery may have left empty (the writer must never roll past an empty segment).
        val firstBig = rnd.nextInt(4) == 0
        // Retention's operations, drawn from [extra] (the draws above are those made before they were in the
        // workload): the share of ops that truncate, commit or apply retention, and of slow replays; a third of the
        // rounds that would cut after acks cut inside an application of retention instead.
        val retentionChance = RETENTION_CHANCES[extra.nextInt(RETENTION_CHANCES.size)]
        val readChance = READ_CHANCES[extra.nextInt(READ_CHANCES.size)]
        val retentionCut = !quiet && mode >= 55 && extra.nextInt(3) == 0
        val retentionCutAt = extra.nextInt(ops / writers + 1)
        val extras = List(writers) { Random(extra.nextLong()) }
        val cutAfterAcks = if (retentionCut) -1 else drawnCutAfterAcks
        val armedDone = java.util.concurrent.atomic.AtomicBoolean(!retentionCut)
        if (cutAfterAcks == 0) {
            if (!quiet) disk.cut(cutRandom)
            return false
        }
        val plans = List(writers) { Random(rnd.nextLong()) }
        val noneAcked = ConcurrentLinkedQueue<Sent>()
        val writerOps = AtomicInteger(ops)
        // A quiet round stops its writers where another would cut: the cut comes after the background sync.
        val stop = java.util.concurrent.atomic.AtomicBoolean(false)
        fun ack(s: Sent, seq: Long, sync: Boolean, durability: Durability?, unsynced: PowerLossFileIo.Unsynced) {
            s.unsyncedAtAck = unsynced
            s.durability = TortureOptions.durabilityName(durability ?: options.durability)
            roundAcked.add(s)
            acked(model, s, seq, sync, noneAcked)
        }
        try {
            runBlocking(Dispatchers.Default) {
                withTimeout(30_000) {
                    coroutineScope {
                        for (w in 0 until writers) {
                            launch {
                                val r = plans[w]
                                val x = extras[w]
                                var first = w == 0 && firstBig
                                var op = 0
                                while (!stop.get() && writerOps.getAndDecrement() > 0 && disk.generation == gen) {
                                    if (w == 0 && op++ == retentionCutAt && armedDone.compareAndSet(false, true)) {
                                        val covered = roundAcked.filter { !model.must.containsKey(it.id) }
                                        val control = pending.toList()
                                        applyRetention(
                                            disk, wal, model, c, options, pins, covered, control, cutRandom, true,
                                            gen, tag,
                                        )
                                        if (disk.generation == gen) {
                                            disk.disarm()
                                            disk.cut(cutRandom)
                                        }
                                        break
                                    }
                                    if (!first && x.nextInt(100) < readChance) {
                                        replayDuringWorkload(
                                            disk,
                                            wal,
                                            model,
                                            c,
                                            TOPICS[x.nextInt(TOPICS.size)],
                                            x.nextBoolean(),
                                            gen,
                                            tag,
                                        )
                                        continue
                                    }
                                    if (!first && x.nextInt(100) < retentionChance) {
                                        try {
                                            retentionOp(
                                                disk, wal, model, c, x, w, options, pins, roundAcked, pending,
                                                cutRandom, gen, tag,
                                            )
                                        } catch (e: CancellationException) {
                                            throw e
                                        } catch (e: Exception) {
                                            if (disk.generation == gen) {
                                                synchronized(c) {
                                                    c.fail("$tag: a retention operation failed before any cut: $e")
                                                }
                                            }
                                            break
                                        }
                                        if (acks.incrementAndGet() == cutAfterAcks) {
                                            if (quiet) stop.set(true) else disk.cut(cutRandom)
                                        }
                                        continue
                                    }
                                    val topic = TOPICS[r.nextInt(TOPICS.size)]
                                    // The call's durability, or the log's default; only Sync promises to survive
                                    // the cut.
                                    val durability = when {
                                        r.nextDouble() < noneChance -> {
                                            if (r.nextInt(4) == 0) Durability.Interval(5) else Durability.None
                                        }

                                        r.nextInt(4) == 0 -> Durability.Sync

                                        else -> null
                                    }
                                    val sync = (durability ?: options.durability) == Durability.Sync
                                    val big0 = first
                                    first = false
                                    try {
                                        when (if (big0) 6 else r.nextInt(10)) {
                                            in 0..5 -> {
                                                val size = if (r.nextDouble() < bigChance) {
                                                    options.recordSize(r, 8)
                                                } else {
                                                    minOf(8 + r.nextInt(300), options.maxRecordSize)
                                                }
                                                val s = newSent(model, topic, size, batch = 0, index = 0, batchSize = 1)
                                                val seq = wal.append(topic, s.payload, durability)
                                                ack(s, seq, sync, durability, disk.unsynced())
                                            }

                                            in 6..8 -> {
                                                val big = r.nextDouble() < bigChance
                                                val edge = if (big0) {
                                                    0
                                                } else if (r.nextInt(30) == 0) {
                                                    if (r.nextBoolean()) 0 else r.nextInt(1, 65)
                                                } else {
                                                    -1
                                                }
                                                val edgeSizes = if (edge >= 0) {
                                                    options.exactBatch(r, 8, edge, maxBytes = 2L shl 20)
                                                } else {
                                                    null
                                                }
                                                if (edgeSizes != null && edge > 0) {
                                                    // A few bytes too large for a segment: refused, and nothing of it
                                                    // ever served.
                                                    val refused = edgeSizes.map { size ->
                                                        ByteArray(size).also {
                                                            ByteBuffer.wrap(it).putLong(-model.nextId.getAndIncrement())
                                                        }
                                                    }
                                                    val accepted = try {
                                                        wal.appendBatch(topic, refused, durability)
                                                    } catch (e: RecordTooLargeException) {
                                                        null
                                                    }
                                                    if (accepted != null) {
                                                        synchronized(c) {
                                                            c.corruptServed++
                                                            c.fail(
                                                                "$tag: a batch of ${edgeSizes.size} taking " +
                                                                    "${options.unitBytes(edgeSizes)} bytes, " +
                                                                    "more than a segment holds, " +
                                                                    "was accepted as $accepted",
                                                            )
                                                        }
                                                    }
                                                    continue
                                                }
                                                val sizes = when {
                                                    // fills an empty segment to its last byte: accepted
                                                    edgeSizes != null -> edgeSizes

                                                    big0 || r.nextInt(30) == 0 -> {
                                                        options.longBatch(r, 8, maxBytes = 512L shl 10)
                                                    }

                                                    else -> options.fitBatch(
                                                        List(2 + r.nextInt(10)) {
                                                            if (big) {
                                                                options.recordSize(r, 8)
                                                            } else {
                                                                minOf(8 + r.nextInt(600), options.maxRecordSize)
                                                            }
                                                        },
                                                        maxBytes = 256L shl 10,
                                                    )
                                                }
                                                val n = sizes.size
                                                val batchId = model.nextBatch.getAndIncrement()
                                                val list = List(n) { k ->
                                                    newSent(model, topic, sizes[k], batchId, k, n)
                                                }
                                                model.batches[batchId] = list
                                                val range = wal.appendBatch(topic, list.map { it.payload }, durability)
                                                if (range.count() != n) {
                                                    synchronized(c) {
                                                        c.corruptServed++
                                                        c.fail("$tag: batch of $n acknowledged as $range")
                                                    }
                                                }
                                                val unsynced = disk.unsynced()
                                                for ((k, s) in list.withIndex()) {
                                                    ack(s, range.first + k, sync, durability, unsynced)
                                                }
                                            }

                                            else -> {
                                                val covered = noneAcked.toList()
                                                val control = pending.toList()
                                                wal.sync()
                                                for (s in covered) {
                                                    model.must.putIfAbsent(
                                                        s.id,
                                                        "acked under None before a sync() returned",
                                                    )
                                                }
                                                promote(model, control)
                                            }
                                        }
                                    } catch (e: CancellationException) {
                                        throw e
                                    } catch (e: Exception) {
                                        if (disk.generation == gen) {
                                            synchronized(c) {
                                                c.fail("$tag: an append failed before any power cut: $e")
                                            }
                                        }
                                        break
                                    }
                                    if (acks.incrementAndGet() == cutAfterAcks) {
                                        if (quiet) stop.set(true) else disk.cut(cutRandom)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        } catch (e: TimeoutCancellationException) {
            synchronized(c) {
                c.failedReopens++
                c.fail("$tag: the workload hangs (cut=${disk.generation != gen})")
            }
        }
        return !armedDone.get()
    }

    /**
     * A truncation ([Wal.truncateBefore]) of [x]'s choosing, a commit of writer [w]'s consumer (its positions only
     * grow), or an application of retention ([applyRetention]).
     */
    private suspend fun retentionOp(
        disk: PowerLossFileIo,
        wal: Wal,
        model: Model,
        c: Counts,
        x: Random,
        w: Int,
        options: TortureOptions,
        pins: Pins,
        roundAcked: Collection<Sent>,
        pending: ConcurrentLinkedQueue<Pair<String, Long>>,
        cutRandom: Random,
        gen: Int,
        tag: String,
    ) {
        val topic = TOPICS[x.nextInt(TOPICS.size)]
        val durable = options.durability == Durability.Sync
        when (x.nextInt(3)) {
            0 -> {
                val first = wal.firstSequence(topic)
                val next = wal.nextSequence(topic)
                val to = first + x.nextLong(0, (next - first) / 2 + 1)
                model.maxFirst.merge(topic, to, ::maxOf)
                wal.truncateBefore(topic, to)
                synchronized(c) { c.truncations++ }
                if (durable) model.minFirst.merge(topic, to, ::maxOf) else pending.add("F:$topic" to to)
            }

            1 -> {
                val consumer = CONSUMERS[w]
                val key = "$consumer/$topic"
                val from = model.maxCommitted[key] ?: 0
                val next = wal.nextSequence(topic)
                if (from > next) return // that commit was lost with records it covered: positions only grow here
                val position = from + x.nextLong(0, next - from + 1)
                model.maxCommitted.merge(key, position, ::maxOf)
                wal.commit(consumer, topic, position)
                synchronized(c) { c.commits++ }
                if (durable) model.minCommitted.merge(key, position, ::maxOf) else pending.add("C:$key" to position)
            }

            else -> {
                val covered = roundAcked.filter { !model.must.containsKey(it.id) }
                val control = pending.toList()
                applyRetention(disk, wal, model, c, options, pins, covered, control, cutRandom, false, gen, tag)
            }
        }
    }

    private fun newSent(model: Model, topic: String, size: Int, batch: Long, index: Int, batchSize: Int): Sent {
        val id = model.nextId.getAndIncrement()
        val payload = ByteArray(size)
        ByteBuffer.wrap(payload).putLong(id)
        val fill = Random(id)
        for (k in 8 until size) payload[k] = fill.nextInt().toByte()
        return Sent(id, topic, payload, batch, index, batchSize).also { model.sent[id] = it }
    }

    private fun acked(model: Model, s: Sent, seq: Long, sync: Boolean, noneAcked: ConcurrentLinkedQueue<Sent>) {
        s.seq = seq
        if (sync) model.must[s.id] = "acknowledged under Sync" else noneAcked.add(s)
    }

    /**
     * Checks the reopened log against [model]; afterwards everything it holds must survive later cuts. A topic is
     * checked from its first sequence on: not below any truncation known durable, not above what the truncations
     * issued and retention under [options] (with consumers at [pins]) allow; its records dense from there (but for
     * skips to a first sequence the background job raises meanwhile). Consumer positions: at least the last commit
     * known durable, at most the last issued.
     */
    private fun check(wal: Wal, model: Model, c: Counts, tag: String, options: TortureOptions, pins: Pins) {
        val present = HashMap<Long, Long>() // id -> seq
        val firsts = HashMap<String, Long>()
        val report = wal.recovery
        if (report.corruption != null) {
            c.failedReopens++
            c.fail("$tag: recovery after a power cut reports corruption (a cut loses only unsynced bytes): $report")
        }
        val background = options.retentionIntervalMillis > 0
        val topics = TOPICS + wal.topics()
        for (topic in topics.distinct()) {
            val f0 = wal.firstSequence(topic)
            val records = try {
                runBlocking { wal.replay(topic).toList() }
            } catch (e: WalCorruptedException) {
                c.corruptServed++
                c.fail("$tag: replay of $topic failed: $e (recovery: $report)")
                continue
            } catch (e: Exception) {
                c.corruptServed++
                c.fail("$tag: replay of $topic threw $e")
                continue
            }
            val f1 = wal.firstSequence(topic)
            val next = wal.nextSequence(topic)
            firsts[topic] = f1
            val min = model.minFirst[topic] ?: 0
            if (f0 < min) {
                c.lost++
                c.fail("$tag: $topic starts at $f0, below its truncation to $min, which was durable; recovery: $report")
            }
            val allowed = maxOf(model.maxFirst[topic] ?: 0, options.retentionBound(topic, next, pins[topic]))
            if (f1 > allowed) {
                c.lost++
                c.fail(
                    "$tag: $topic starts at $f1 (next $next), above every truncation issued and what retention " +
                        "allows ($allowed; consumers at ${pins[topic]}); recovery: $report",
                )
            }
            var expected = f0
            for (rec in records) {
                if (rec.sequence != expected && (rec.sequence < expected || rec.sequence > f1)) {
                    c.corruptServed++
                    c.fail("$tag: $topic replays sequence ${rec.sequence} where $expected was due (first $f0..$f1)")
                    break
                }
                expected = rec.sequence + 1
                val id = if (rec.payload.size >= 8) ByteBuffer.wrap(rec.payload).getLong() else -1
                val s = model.sent[id]
                when {
                    s == null || s.topic != topic || !s.payload.contentEquals(rec.payload) -> {
                        c.corruptServed++
                        c.fail(
                            "$tag: $topic/${rec.sequence} serves a record never appended there " +
                                "(${rec.payload.size} bytes, id $id)",
                        )
                    }

                    present.put(id, rec.sequence) != null -> {
                        c.corruptServed++
                        c.fail("$tag: record $id served twice in $topic")
                    }

                    s.seq >= 0 && s.seq != rec.sequence -> {
                        c.corruptServed++
                        c.fail("$tag: record $id acknowledged at $topic/${s.seq} is served at ${rec.sequence}")
                    }
                }
            }
            if (maxOf(expected, f1) != next) {
                c.corruptServed++
                c.fail("$tag: $topic has first $f0..$f1 and nextSequence $next but its replay ends before $expected")
            }
        }
        for ((id, why) in model.must) {
            val s = model.sent.getValue(id)
            if (s.seq >= 0 && s.seq < (firsts[s.topic] ?: 0)) {
                c.truncatedAway++
                continue // truncated: the first sequence was checked above
            }
            c.acked++
            val at = present[id]
            if (at == null || (s.seq >= 0 && at != s.seq)) {
                c.lost++
                c.fail(
                    "$tag: lost ${s.topic}/${s.seq} (id $id, $why)${if (at != null) ", found at $at" else ""}; " +
                        "first ${firsts[s.topic]}; recovery: $report",
                )
            }
        }
        for ((batchId, list) in model.batches) {
            val found = list.withIndex().filter { it.value.id in present }
            if (found.isEmpty()) continue
            val base = present.getValue(found[0].value.id) - found[0].index
            val first = firsts[list[0].topic] ?: 0
            if (found.any { (k, s) -> present[s.id] != base + k }) {
                c.corruptServed++
                c.fail("$tag: batch $batchId in ${list[0].topic} is not consecutive")
            } else if (list.indices.any { k -> list[k].id !in present && base + k >= first }) {
                c.corruptServed++
                c.fail(
                    "$tag: batch $batchId of ${list.size} records in ${list[0].topic} is partly present " +
                        "(${found.size}, from ${base + found[0].index}; first sequence $first)",
                )
            }
        }
        for (key in (model.maxCommitted.keys + model.minCommitted.keys)) {
            val consumer = key.substringBefore('/')
            val topic = key.substringAfter('/')
            val got = wal.committed(consumer, topic)
            val min = model.minCommitted[key]
            val max = model.maxCommitted[key]
            if (min != null && (got == null || got < min)) {
                c.lost++
                c.fail("$tag: $consumer's position in $topic is $got, below its commit of $min, which was durable")
            } else if (got != null && (max == null || got > max)) {
                c.corruptServed++
                c.fail("$tag: $consumer's position in $topic is $got, above any commit made ($max)")
            }
            if (got != null) model.minCommitted.merge(key, got, ::maxOf)
        }
        (wal.consumers() - CONSUMERS.toSet()).takeIf { it.isNotEmpty() }?.let {
            c.corruptServed++
            c.fail("$tag: consumers ${wal.consumers()} include some that never committed")
        }
        // Recovery made everything it kept durable: from now on it must all survive, at these sequences. (Not the
        // first sequences a background application may have raised meanwhile: those are durable once it returns.)
        for ((id, seq) in present) {
            val s = model.sent.getValue(id)
            if (s.seq < 0) s.seq = seq
            model.must.putIfAbsent(id, "served after an earlier reopen")
        }
        for ((topic, first) in firsts) {
            model.maxFirst.merge(topic, first, ::maxOf)
            if (!background) model.minFirst.merge(topic, first, ::maxOf)
        }
    }
}
