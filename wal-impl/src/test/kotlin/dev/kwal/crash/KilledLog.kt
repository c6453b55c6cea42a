package dev.kwal.crash

import dev.kwal.Wal
import dev.kwal.WalOptions
import dev.kwal.engine.Kwal
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import java.nio.file.Path

/**
 * One directory killed and recovered again and again, and what it must hold. Shared by [dev.kwal.KillSpec]
 * (which fails on the first problem) and [dev.kwal.torture.KillTorture] (which counts them).
 *
 * [label] goes into every message: it names the seed(s) that replay the run.
 */
class KilledLog(val dir: Path, val seed: Long, val label: String = "seed=$seed") {
    /** Per topic: CRC32 of the payload at each sequence that must be there (acked, or found by an earlier check). */
    private val known = HashMap<String, HashMap<Long, Long>>()

    /** The payload seeds written into this directory: the children's and [seed] (the parent's own appends). */
    private val seeds = hashSetOf(seed)
    var totalAcks = 0L
        private set
    var cycles = 0
        private set

    /** Per topic: its first sequence must be at least this (truncations acknowledged, or found by a check). */
    private val minFirst = HashMap<String, Long>()

    /** Per topic: the highest first sequence a truncation issued (acknowledged or not) may have given it. */
    private val maxFirst = HashMap<String, Long>()

    /** Per `consumer:topic`: the last commit acknowledged (or found), and the highest one issued. */
    private val minCommitted = HashMap<String, Long>()
    private val maxCommitted = HashMap<String, Long>()

    /** What the children's retention did, from their `TRUNC`, `COMMIT` and `RET` lines (see [AppenderProcess]). */
    var truncations = 0L
        private set
    var retentions = 0L
        private set
    var segmentsDeleted = 0L
        private set
    var blocksCopied = 0L
        private set
    var retentionKills = 0L
        private set

    /** The payload bytes the last [check] replayed: what the log holds. */
    var dataBytes = 0L
        private set

    /** What one [check] found. Every problem is also described in [problems]. */
    class Check {
        var acked = 0L
        var lost = 0L
        var corruptServed = 0L
        var failedReopen = false
        val problems = ArrayList<String>()
        val clean: Boolean get() = lost == 0L && corruptServed == 0L && !failedReopen
    }

    fun where(cycle: Int) = "$label cycle=$cycle dir=$dir"

    fun fail(cycle: Int, msg: String, child: ChildJvm? = null): Nothing =
        throw AssertionError("${where(cycle)}: $msg" + (child?.let { "\n" + it.describe() } ?: ""))

    /**
     * Starts an [AppenderProcess] on [dir] with [childSeed], runs [untilKill], SIGKILLs it, and returns every
     * ack it printed. Throws [AssertionError] if the child misbehaved (did not exit, printed ERROR or a bad line).
     */
    fun runChild(
        cycle: Int,
        childSeed: Long,
        what: String,
        quiet: Boolean = false,
        childArgs: List<String> = emptyList(),
        untilKill: (ChildJvm) -> Unit,
    ): List<Ack> {
        seeds.add(childSeed)
        val child = ChildJvm.start(
            AppenderProcess::class,
            dir.toString(),
            childSeed.toString(),
            *childArgs.toTypedArray(),
        )
        val acks = try {
            untilKill(child)
            if (!child.kill()) fail(cycle, "child did not exit after SIGKILL", child)
            child.error?.let { fail(cycle, "child reported $it", child) }
            child.malformed?.let { fail(cycle, "malformed ACK line '$it'", child) }
            if (!quiet) {
                println(
                    "cycle $cycle: killed ${child.name} ($what) after ${child.acks.size} acks; " +
                        "${child.readyLine ?: "before READY"}",
                )
            }
            child.acks.toList()
        } finally {
            child.close()
        }
        totalAcks += acks.size
        cycles++
        return acks
    }

    /** Reopens [dir] and checks it, failing on the first problem (the [dev.kwal.KillSpec] way). */
    suspend fun verify(cycle: Int, acks: List<Ack>) {
        val c = check(cycle, acks, quiet = false)
        if (!c.clean || c.problems.isNotEmpty()) fail(cycle, c.problems.joinToString("\n"))
    }

    /**
     * Reopens [dir] with [options] (by default [CrashOptions.of]; they may differ from the options the log was
     * written with) and checks it against [acks] (this cycle's) and everything known from earlier cycles:
     * recovery found no corruption (a kill damages nothing: under [dev.kwal.CorruptionPolicy.TRUNCATE] this is
     * what stands for the open that FAIL would have failed); every known record present with its payload and
     * sequence; sequences dense; every record intact, from a writer of this directory, and batches whole;
     * `nextSequence` and `topics()` agree. Then appends a single and a batch to each topic and reads them back.
     * Counts problems rather than throwing.
     *
     * A topic is checked from its first sequence: at least every truncation acknowledged (a kill loses none, whatever
     * the durability), at most what the truncations issued and the retention of [childOptions] allow
     * ([TortureOptions.retentionBound]); consumer positions at least their last acknowledged commit, at most the last
     * issued. [options] should not run retention in the background: the check reads what the child left.
     */
    suspend fun check(
        cycle: Int,
        acks: List<Ack>,
        quiet: Boolean = true,
        options: WalOptions = CrashOptions.of(dir),
        childOptions: TortureOptions? = null,
    ): Check = withContext(Dispatchers.IO) {
        val c = Check()
        fun problem(msg: String) {
            if (c.problems.size < 20) c.problems.add("${where(cycle)}: $msg")
        }
        var retentionUnderWay = false
        for (a in acks) {
            val topic = a.topic.substringAfter(':')
            when (a.topic.substringBefore(':')) {
                "TRUNC?" -> maxFirst.merge(topic, a.seq, ::maxOf)

                "TRUNC" -> {
                    minFirst.merge(topic, a.seq, ::maxOf)
                    maxFirst.merge(topic, a.seq, ::maxOf)
                    truncations++
                }

                "COMMIT?" -> maxCommitted.merge(topic, a.seq, ::maxOf)

                "COMMIT" -> minCommitted.merge(topic, a.seq, ::maxOf)

                "RET?" -> retentionUnderWay = true

                "RET" -> {
                    retentionUnderWay = false
                    retentions++
                    segmentsDeleted += a.seq
                    blocksCopied += a.crc
                }
            }
        }
        if (retentionUnderWay) retentionKills++
        val records = acks.filter { ':' !in it.topic && !it.topic.startsWith("RET") }
        c.acked = records.size.toLong()
        for (a in records) {
            val prev = known.getOrPut(a.topic) { HashMap() }.put(a.seq, a.crc)
            if (prev != null && prev != a.crc) {
                c.lost++
                problem(
                    (
                        "${a.topic}/${a.seq} acknowledged with crc %08x, but %08x was there before " +
                            "(a known record was lost and its sequence reused)"
                        ).format(a.crc, prev),
                )
            }
        }
        val wal: Wal = try {
            Kwal.open(options)
        } catch (e: Throwable) {
            c.failedReopen = true
            problem("reopen after SIGKILL failed: $e (${acks.size} acks this cycle)")
            return@withContext c
        }
        try {
            if (!quiet) println("cycle $cycle: recovery ${wal.recovery}")
            if (wal.recovery.corruption != null) {
                c.failedReopen = true
                problem("recovery after a SIGKILL found corruption, but a kill damages nothing: ${wal.recovery}")
            }
            dataBytes = 0
            for (topic in wal.topics() + known.keys) checkTopic(wal, topic, c, childOptions, ::problem)
            for (key in maxCommitted.keys + minCommitted.keys) {
                val got = wal.committed(key.substringBefore(':'), key.substringAfter(':')) // key: consumer:topic
                val min = minCommitted[key]
                if (min != null && (got == null || got < min)) {
                    c.lost++
                    problem("position $key is $got after the kill, below its acknowledged commit of $min")
                } else if (got != null && got > (maxCommitted[key] ?: -1)) {
                    c.corruptServed++
                    problem("position $key is $got, above any commit issued (${maxCommitted[key]})")
                }
                if (got != null) minCommitted.merge(key, got, ::maxOf)
            }
            if (!wal.topics().containsAll(known.keys)) {
                c.lost += (known.keys - wal.topics()).sumOf { known[it]!!.size }.toLong()
                problem("topics() ${wal.topics()} lacks some of ${known.keys}")
            }
            appendAfterRecovery(wal, options, cycle, c, ::problem)
        } catch (e: Throwable) {
            c.failedReopen = true
            problem("checking the reopened log threw $e")
        } finally {
            runCatching { wal.close() }.onFailure {
                c.failedReopen = true
                problem("close threw $it")
            }
        }
        c
    }

    private suspend fun checkTopic(
        wal: Wal,
        topic: String,
        c: Check,
        childOptions: TortureOptions?,
        problem: (String) -> Unit,
    ) {
        val first = wal.firstSequence(topic)
        if (first < (minFirst[topic] ?: 0)) {
            c.lost++
            problem("'$topic' starts at $first after the kill, below its acknowledged truncation to ${minFirst[topic]}")
        }
        val allowed = maxOf(
            maxFirst[topic] ?: 0,
            childOptions?.retentionBound(topic, wal.nextSequence(topic), pin = null) ?: 0,
        )
        if (first > allowed) {
            c.lost++
            problem("'$topic' starts at $first, above every truncation issued and what retention allows ($allowed)")
        }
        minFirst.merge(topic, first, ::maxOf)
        maxFirst.merge(topic, first, ::maxOf)
        val records = try {
            withTimeout(60_000) { wal.replay(topic).toList() }
        } catch (e: Throwable) {
            c.failedReopen = true
            problem("replay of '$topic' threw $e")
            return
        }
        val origins = arrayOfNulls<CrashPayloads.Origin>(records.size)
        records.forEachIndexed { i, r ->
            var bad: String? = null
            if (r.sequence != first + i) {
                bad = "record #$i has sequence ${r.sequence} (sequences not dense)"
            } else if (r.topic != topic) {
                bad = "record ${r.sequence} reports topic '${r.topic}'"
            } else {
                CrashPayloads.problem(topic, r.payload)?.let { bad = "seq ${r.sequence}: payload damaged: $it" }
            }
            dataBytes += r.payload.size
            if (bad == null) {
                val o = CrashPayloads.origin(r.payload)
                if (o.seed !in seeds) {
                    bad = "seq ${r.sequence}: payload of seed ${o.seed}, which never wrote to this directory"
                } else {
                    origins[i] = o
                }
            }
            if (bad != null) {
                c.corruptServed++
                problem("'$topic' $bad")
            }
        }
        // Batches are all-or-nothing: every member of a batch is there, in order, around each one found.
        val wholeAt = HashSet<Int>() // first positions of batches found whole, so a long batch is checked once
        origins.forEachIndexed { i, o ->
            if (o == null || o.batchSize == 0) return@forEachIndexed
            val start = i - o.batchIndex
            if (start in wholeAt) return@forEachIndexed
            // A batch may begin below the first sequence: its members there are truncated.
            val whole = start + o.batchSize <= records.size && (maxOf(0, -start) until o.batchSize).all { j ->
                val m = origins[start + j]
                m != null && m.seed == o.seed && m.base == o.base && m.batchSize == o.batchSize && m.batchIndex == j &&
                    m.n == o.n - o.batchIndex + j
            }
            if (whole) wholeAt.add(start)
            if (!whole) {
                c.corruptServed++
                problem(
                    "'$topic' seq $i: member ${o.batchIndex} of a batch of ${o.batchSize} " +
                        "(writer ${o.base}, seed ${o.seed}) " +
                        "is not with its whole batch at $start..${start + o.batchSize - 1} " +
                        "(replay has ${records.size})",
                )
            }
        }
        if (wal.nextSequence(topic) != first + records.size) {
            c.corruptServed++
            problem(
                "'$topic': nextSequence ${wal.nextSequence(topic)} but replay from $first gave ${records.size} records",
            )
        }
        val expected = known[topic].orEmpty()
        val missing = expected.keys.filter { it >= first + records.size }.sorted()
        if (missing.isNotEmpty()) {
            c.lost += missing.size
            problem(
                "'$topic': ${missing.size} acknowledged records missing after recovery: " +
                    "replay has ${records.size}, " +
                    "missing seqs ${missing.take(20)}${if (missing.size > 20) "…" else ""}",
            )
        }
        for ((seq, crc) in expected) {
            if (seq < first || seq >= first + records.size) continue // truncated, or missing (above)
            val actual = CrashPayloads.crc(records[(seq - first).toInt()].payload)
            if (actual != crc) {
                c.lost++
                problem("'$topic' seq $seq: payload crc %08x, acknowledged %08x".format(actual, crc))
            }
        }
        // Everything recovered now must stay: the next cycle has to find it again, unchanged.
        val k = known.getOrPut(topic) { HashMap() }
        records.forEach { k.putIfAbsent(it.sequence, CrashPayloads.crc(it.payload)) }
    }

    /** The recovered log takes appends and batches, at the next sequence of each topic. */
    private suspend fun appendAfterRecovery(
        wal: Wal,
        options: WalOptions,
        cycle: Int,
        c: Check,
        problem: (String) -> Unit,
    ) {
        for (topic in CrashOptions.TOPICS) {
            val next = wal.nextSequence(topic)
            val p = CrashPayloads.make(topic, seed, -cycle, next, minOf(100 + cycle % 1000, options.maxRecordSize))
            val seq = withTimeout(30_000) { wal.append(topic, p) }
            if (seq != next) {
                c.failedReopen = true
                problem("'$topic': append after recovery got sequence $seq, expected $next")
            }
            val batch = List(3) {
                CrashPayloads.make(topic, seed, -cycle, next + 1 + it, minOf(2000, options.maxRecordSize))
            }
            val range = withTimeout(30_000) { wal.appendBatch(topic, batch) }
            if (range != (seq + 1)..(seq + 3)) {
                c.failedReopen = true
                problem("'$topic': batch after recovery got $range, expected ${seq + 1}..${seq + 3}")
            }
            val k = known.getOrPut(topic) { HashMap() }
            k[seq] = CrashPayloads.crc(p)
            batch.forEachIndexed { i, b -> k[range.first + i] = CrashPayloads.crc(b) }
            c.acked += 4
            val back = withTimeout(30_000) { wal.replay(topic, seq).toList() }.map { CrashPayloads.crc(it.payload) }
            if (back != (listOf(p) + batch).map { CrashPayloads.crc(it) }) {
                c.corruptServed++
                problem("'$topic': records appended after recovery read back differently")
            }
        }
    }

    fun knownRecords(): Int = known.values.sumOf { it.size }

    fun finish() {
        println(
            "$label: $cycles kill cycles, $totalAcks acknowledged records verified, " +
                "${knownRecords()} records in the log",
        )
        dir.toFile().deleteRecursively()
    }
}
