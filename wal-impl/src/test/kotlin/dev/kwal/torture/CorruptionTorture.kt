package dev.kwal.torture

import dev.kwal.CorruptionPolicy
import dev.kwal.Durability
import dev.kwal.LogFiles
import dev.kwal.WalCorruptedException
import dev.kwal.WalException
import dev.kwal.WalOptions
import dev.kwal.crash.TortureOptions
import dev.kwal.engine.Kwal
import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.CompressedBody
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.format.RecordFrame
import dev.kwal.engine.format.SegmentHeader
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import java.nio.ByteBuffer
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.StandardCopyOption
import java.util.concurrent.ExecutionException
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException
import java.util.zip.CRC32C
import kotlin.io.path.exists
import kotlin.io.path.fileSize
import kotlin.io.path.listDirectoryEntries
import kotlin.io.path.name
import kotlin.io.path.readBytes
import kotlin.random.Random

/**
 * Corrupted and hostile input. A pool of small logs is written with a real Wal (each with options of its own,
 * [TortureOptions.random]: segments of 64 to 256 KiB, blocks from 4 KiB up, records sized relative to the block;
 * several topics, singles and batches, CONTINUED runs, rolls; one under Durability.None, one with concurrent
 * group commits) and closed. Each case copies one, damages the copy — flipped bits, a truncated segment, a
 * zeroed range, a range duplicated elsewhere, bytes spliced from another segment or another log, forged
 * length fields (block body length, record count, record length, segment size; sometimes with the header
 * CRC recomputed so the forged value passes the header check), a segment deleted or renamed, a segment
 * replaced by another log's — and opens it under [CorruptionPolicy.FAIL] and, on a second copy,
 * [CorruptionPolicy.TRUNCATE], replaying every topic under a timeout. Half the cases open with the options the
 * log was written with, the other half with others (sizes bigger or smaller: they may change between opens).
 *
 * The damaged log is opened with `verifyOnOpen`: every segment scanned, as the verdicts below assume (without it, an
 * open knows summarized segments from their summaries, and their damage is found when they are read: FastReopenSpec).
 *
 * The verdicts follow the recovery rules (FORMAT.md, Recovery, steps 1 to 9):
 * - under TRUNCATE every stop, torn tail or corruption, structural or content, is truncated: the open must succeed
 *   (any exception is a `failedReopen`);
 * - under FAIL the open succeeds, reporting no corruption, or throws [WalCorruptedException] — any other exception
 *   is a `wrongVerdict` — whose file and offset are the bad place: exactly the start of the block that holds the
 *   first damaged byte (or where the next block would start, or offset 0 of a damaged or missing segment), unless
 *   the damaged bytes pass the check made there (see [Expectation]); a refused open must leave every file of the
 *   directory as it was (else `changedByRefusal`); and FAIL refuses exactly the logs in which TRUNCATE reports
 *   corruption (else a `wrongVerdict`);
 * - an open that succeeds, under either policy, keeps every group that ended before the first damaged byte
 *   (recovery stops at the first bad place and drops only from the group that holds it; a missing record counts as
 *   `lost`), serves only records exactly as appended at that topic and sequence, with dense sequences (else
 *   `corruptServed`), replays every topic without error, takes an append and reopens clean under FAIL (else a
 *   `failedReopen`). Any exception other than a typed [WalException], an [OutOfMemoryError] or a timeout is a
 *   `failedReopen` too.
 *
 * Seeded: case c of `run(n, seed)` uses `Random(seed + c)` on a pool built from `seed`; a failure names both.
 */
object CorruptionTorture {
    private const val TIMEOUT_MS = 60_000L
    private val TOPICS = listOf("t0", "t1", "t2", "t3")

    /** Text that compresses: the filler of half the payloads. */
    private val TEXT = "{\"order\":17,\"status\":\"paid\",\"amount\":12.50,\"currency\":\"EUR\"} ".encodeToByteArray()

    private class Base(
        val index: Int,
        val dir: Path,
        val model: Map<String, List<ByteArray>>,
        val ids: Map<String, Int>,
        val blocks: List<LogFiles.BlockInfo>,
        val files: Map<Int, ByteArray>,
        val options: TortureOptions,
    )

    /** Options drawn from [r] for a pool log or an open: small segments, so copies stay cheap. */
    private fun options(r: Random, previous: TortureOptions? = null) =
        TortureOptions.next(r, previous, maxSegment = 256 shl 10, maxRecord = 32 shl 10)
            .copy(topicRetention = emptyMap(), retentionIntervalMillis = 0) // retention is not what this damages

    /** Outcome counters, printed at the end. */
    private val stats = java.util.TreeMap<String, Int>()
    private fun note(what: String) {
        stats.merge(what, 1, Int::plus)
    }

    private val executor = Executors.newCachedThreadPool { r ->
        Thread(r, "corruption-torture").apply { isDaemon = true }
    }

    fun run(cases: Int, seed: Long): TortureResult {
        if (cases <= 0) return TortureResult()
        stats.clear()
        val started = System.nanoTime()
        val pool = (0 until 6).map { buildBase(it, seed) }
        println(
            "CorruptionTorture seed=$seed: pool of ${pool.size} logs (${pool.map { it.files.size }} segments) in " +
                "${(System.nanoTime() - started) / 1_000_000} ms; " +
                "options: ${pool.joinToString("; ") { "${it.index}: ${it.options}" }}",
        )
        var result = TortureResult(options = pool.map { it.options }.toSet())
        for (case in 1..cases) {
            val r = runCase(case, seed, pool)
            result += r
            if (r.failures.isNotEmpty()) {
                System.err.println("CorruptionTorture FAILED: ${r.failures.joinToString("\n")}")
            }
        }
        pool.forEach { it.dir.toFile().deleteRecursively() }
        println(
            "CorruptionTorture seed=$seed: $cases cases in ${"%.1f".format((System.nanoTime() - started) / 1e9)} s; " +
                "$stats",
        )
        return result
    }

    // ---- the pool ----

    private fun payload(log: Int, topic: String, seq: Long, size: Int, r: Random): ByteArray {
        val head = "L$log:$topic:$seq:".encodeToByteArray()
        return ByteArray(maxOf(size, head.size)).also {
            if (r.nextBoolean()) {
                r.nextBytes(it)
            } else {
                // text that compresses, so that logs written with compression hold compressed blocks
                for (i in it.indices) it[i] = TEXT[(i + seq.toInt()) % TEXT.size]
            }
            head.copyInto(it)
        }
    }

    private fun buildBase(index: Int, seed: Long): Base = runBlocking {
        val rnd = Random(seed * 31 + index)
        val o = options(Random((seed * 31 + index) xor 0x3C6EF372FE94F82BL))
            .let { if (index == 1) it.copy(durability = Durability.None) else it }
        val dir = Files.createTempDirectory("kwal-torture-base")
        val model = HashMap<String, MutableList<ByteArray>>()
        val concurrent = index == 2
        // Within a segment, across a few, across several: about 20 KB to 1 MB.
        val seg = o.segmentSize
        val target = when (index % 3) {
            0 -> rnd.nextInt(20_000, maxOf(seg * 9 / 10, 60_000))
            1 -> rnd.nextInt(seg, seg * 5 / 2)
            else -> rnd.nextInt(seg * 5 / 2, seg * 4)
        }
        Kwal.open(o.of(dir)).use { wal ->
            var bytes = 0
            withTimeout(120_000) {
                while (bytes < target) {
                    val ops = List(if (concurrent) rnd.nextInt(1, 6) else 1) {
                        val topic = TOPICS[rnd.nextInt(if (bytes == 0) 1 else TOPICS.size)]
                        val tenth = o.blockSize / 10
                        val sizes = when (rnd.nextInt(10)) {
                            in 0..4 -> listOf(rnd.nextInt(0, 300))

                            in 5..6 -> List(rnd.nextInt(1, 6)) { o.recordSize(rnd, 20) }

                            7 -> listOf(o.maxRecordSize - rnd.nextInt(64))

                            // more than a block: CONTINUED
                            else -> List(rnd.nextInt(9, 15)) { rnd.nextInt(tenth * 4 / 5, tenth * 6 / 5) }
                        }.map { minOf(it, o.maxRecordSize) }
                        topic to o.fitBatch(sizes)
                    }
                    // Payloads name their log, topic and sequence; sequences are assigned in order per topic, so
                    // concurrent ops go to distinct topics.
                    val distinct = ops.distinctBy { it.first }
                    coroutineScope {
                        distinct.map { (topic, sizes) ->
                            val m = model.getOrPut(topic) { ArrayList() }
                            val ps = sizes.mapIndexed { i, s -> payload(index, topic, m.size.toLong() + i, s, rnd) }
                            async {
                                val first = if (ps.size == 1 && rnd.nextBoolean()) {
                                    wal.append(topic, ps[0])
                                } else {
                                    wal.appendBatch(topic, ps).first
                                }
                                check(first == m.size.toLong()) { "append to $topic got $first, expected ${m.size}" }
                                Triple(m, ps, sizes.sum())
                            }
                        }.awaitAll().forEach { (m, ps, n) ->
                            m.addAll(ps)
                            bytes += n
                        }
                    }
                }
            }
        }
        val files = LogFiles.segmentIds(dir).associateWith { LogFiles.segment(dir, it).readBytes() }
        Base(index, dir, model, LogFiles.topicIds(dir), LogFiles.allBlocks(dir), files, o)
    }

    // ---- one case ----

    private fun runCase(case: Int, runSeed: Long, pool: List<Base>): TortureResult {
        val caseSeed = runSeed + case
        val rnd = Random(caseSeed)
        val base = pool[rnd.nextInt(pool.size)]
        val work = Files.createTempDirectory("kwal-torture-case")
        val damaged = work.resolve("damaged").also { copy(base.dir, it) }
        val what = ArrayList<String>()
        repeat(if (rnd.nextInt(5) == 0) 2 else 1) { what.add(damage(damaged, base, pool, rnd)) }
        // Half the cases reopen with the options the log was written with, half with others; and the second open too.
        val optionsRandom = Random(caseSeed xor 0x1B873593L)
        val openOptions = if (optionsRandom.nextBoolean()) base.options else options(optionsRandom, base.options)
        val againOptions = options(optionsRandom, openOptions)
        val label = "CorruptionTorture seed=$runSeed case=$case (caseSeed=$caseSeed, " +
            "base log ${base.index} written with [${base.options}], " +
            "opened with [$openOptions], then [$againOptions]; damage: ${what.joinToString("; ")})"
        val d = firstDifference(base, damaged)
        // A segment 1 replaced whole by another log's makes the directory that log (with damage after its
        // first segment): its records are legitimately served. Any other foreign record is not.
        val home = logIdOf(damaged)?.let { id -> pool.firstOrNull { logIdOf(it.dir) == id } }
        val allowed = listOfNotNull(base, home).distinct()
        // Where a refusal under FAIL must point, measured against the log written (or the one segment 1 now
        // belongs to).
        val expected = allowed.map { expectation(it, damaged, openOptions.segmentSize) }
        val problems = ArrayList<String>()
        var lost = 0L
        var served = 0L
        var failed = 0L
        var wrong = 0L
        var changed = 0L
        try {
            val outcomes = HashMap<CorruptionPolicy, Outcome>()
            for (policy in listOf(CorruptionPolicy.FAIL, CorruptionPolicy.TRUNCATE)) {
                val dir = work.resolve(policy.name).also { copy(damaged, it) }
                val o = try {
                    executor.submit<Outcome> {
                        check(dir, policy, base, allowed, pool, d, expected, openOptions, againOptions)
                    }.get(TIMEOUT_MS, TimeUnit.MILLISECONDS)
                } catch (e: TimeoutException) {
                    Outcome(
                        failed = true,
                        problems = listOf("open/replay did not finish in $TIMEOUT_MS ms (endless loop?)"),
                    )
                } catch (e: ExecutionException) {
                    Outcome(failed = true, problems = listOf("${e.cause}"))
                }
                outcomes[policy] = o
                note("${policy.name.lowercase()}:${o.kind}")
                lost += o.lost
                served += o.served
                if (o.failed) failed++
                if (o.wrong) wrong++
                if (o.changed) changed++
                problems += o.problems.map { "$policy: $it" }
            }
            // Both opens ran the same scan on the same bytes: FAIL refuses exactly where TRUNCATE reports corruption.
            val f = outcomes.getValue(CorruptionPolicy.FAIL)
            val t = outcomes.getValue(CorruptionPolicy.TRUNCATE)
            if (f.verdict != null && t.verdict != null &&
                (f.verdict == Verdict.CORRUPT) != (t.verdict == Verdict.CORRUPT)
            ) {
                wrong++
                problems.add(
                    "FAIL ${if (f.verdict == Verdict.CORRUPT) "refused the log as corrupt" else "opened it"}, " +
                        "but TRUNCATE " +
                        "${if (t.verdict == Verdict.CORRUPT) "reported corruption" else "found no corruption"} " +
                        "in the same bytes",
                )
            }
        } finally {
            work.toFile().deleteRecursively()
        }
        return TortureResult(
            corruptions = 1,
            lost = lost,
            corruptServed = served,
            failedReopens = failed,
            wrongVerdicts = wrong,
            changedByRefusal = changed,
            options = setOf(openOptions, againOptions),
            failures = if (problems.isEmpty()) {
                emptyList()
            } else {
                listOf("$label:\n  " + problems.take(10).joinToString("\n  "))
            },
        )
    }

    /** What an open found: [CORRUPT] is a refusal under FAIL or a report of corruption under TRUNCATE. */
    private enum class Verdict { CORRUPT, NOT_CORRUPT }

    private class Outcome(
        val kind: String = "error",
        val lost: Long = 0,
        val served: Long = 0,
        val failed: Boolean = false,
        val wrong: Boolean = false,
        val changed: Boolean = false,
        val problems: List<String> = emptyList(),
        /** Whether the open found corruption; null if it failed in a way that says nothing. */
        val verdict: Verdict? = null,
    )

    /**
     * Opens [dir] under [policy] and checks what it serves; runs on a worker thread the caller can abandon.
     *
     * Under [CorruptionPolicy.TRUNCATE] every stop — a torn tail or corruption, structural or content (FORMAT.md,
     * Recovery, steps 4 to 7) — is truncated: the open must succeed. Under [CorruptionPolicy.FAIL] it succeeds (a
     * torn tail, or no stop) or throws [WalCorruptedException] naming the bad place ([judge]), and then must have
     * changed nothing on disk. An open that succeeds under either policy keeps every group that ended at or before
     * the first damaged byte [d], serves nothing that was not appended, replays every topic without error, takes an
     * append and reopens clean under FAIL.
     */
    private fun check(
        dir: Path,
        policy: CorruptionPolicy,
        base: Base,
        allowed: List<Base>,
        pool: List<Base>,
        d: LogPosition?,
        expected: List<Expectation>,
        openOptions: TortureOptions,
        againOptions: TortureOptions,
    ): Outcome = runBlocking {
        val problems = ArrayList<String>()
        val before = contents(dir)
        val wal = try {
            Kwal.open(openOptions.of(dir, policy = policy).toBuilder().verifyOnOpen(true).build())
        } catch (e: Throwable) {
            val kind = "open threw ${e::class.simpleName}"
            val changes = changes(before, contents(dir))
            if (changes != null) problems.add("the refused open changed the log directory: $changes")
            val trace = "$e\n${e.stackTraceToString().lines().take(12).joinToString("\n")}"
            return@runBlocking when {
                e !is WalException -> Outcome(
                    kind,
                    failed = true,
                    changed = changes != null,
                    problems = problems + "open threw ${e::class.qualifiedName}, not a WalException: $trace",
                )

                // Every stop is truncated under TRUNCATE: no damaged log may be refused.
                policy == CorruptionPolicy.TRUNCATE -> Outcome(
                    kind,
                    failed = true,
                    changed = changes != null,
                    problems = problems + "open under TRUNCATE threw (it truncates every stop): $trace",
                )

                e !is WalCorruptedException -> Outcome(
                    kind,
                    wrong = true,
                    changed = changes != null,
                    problems = problems +
                        "open under FAIL threw ${e::class.simpleName}, not WalCorruptedException: $trace",
                )

                else -> {
                    val verdict = judge(e, dir, expected)
                    Outcome(
                        if (verdict.problem == null) "refused ${verdict.kind}" else "refused at the wrong place",
                        wrong = verdict.problem != null,
                        changed = changes != null,
                        verdict = Verdict.CORRUPT,
                        problems = problems + listOfNotNull(verdict.problem),
                    )
                }
            }
        }
        var lost = 0L
        var served = 0L
        var failed = false
        var wrong = false
        val kind = if (wal.recovery.corruption != null) {
            "opened, corruption truncated"
        } else if (wal.recovery.truncated) {
            "opened, torn tail truncated"
        } else {
            "opened"
        }
        val verdict = if (wal.recovery.corruption != null) Verdict.CORRUPT else Verdict.NOT_CORRUPT
        if (policy == CorruptionPolicy.FAIL && wal.recovery.corruption != null) {
            wrong = true
            problems.add("open under FAIL succeeded but reports corruption: ${wal.recovery}")
        }
        try {
            // What the rules promise: every group that ended at or before the first damaged byte.
            val survivors = HashMap<Int, Long>()
            var runStart = 0
            for ((i, b) in base.blocks.withIndex()) {
                if (i == 0 || !base.blocks[i - 1].continued) runStart = i
                if (b.continued) continue
                if (d != null && LogPosition(b.segment, b.end) > d) break
                for (k in runStart..i) {
                    survivors[base.blocks[k].topicId] = base.blocks[k].firstSeq + base.blocks[k].count
                }
            }
            val strange = wal.topics() - allowed.flatMap { it.model.keys }.toSet()
            if (strange.isNotEmpty()) {
                served += strange.size
                problems.add("topics() names topics never created: $strange")
            }
            for (topic in base.model.keys + wal.topics()) {
                // Recovery checked every byte it kept: a replay of the opened log has nothing left to fail on.
                val records = try {
                    withTimeout(TIMEOUT_MS / 2) { withContext(Dispatchers.IO) { wal.replay(topic).toList() } }
                } catch (e: Throwable) {
                    failed = true
                    problems.add("replay of '$topic' threw ${e::class.qualifiedName} after a successful open: $e")
                    continue
                }
                val appended = base.model[topic].orEmpty()
                for ((i, r) in records.withIndex()) {
                    val bad = when {
                        r.sequence != i.toLong() -> "record #$i has sequence ${r.sequence}"

                        r.topic != topic -> "record ${r.sequence} reports topic ${r.topic}"

                        allowed.size > 1 &&
                            allowed.any { it.model[topic]?.getOrNull(i)?.contentEquals(r.payload) == true } -> null

                        r.sequence >= appended.size ->
                            "seq ${r.sequence} was never appended (${appended.size} were)" +
                                foreign(pool, topic, r.sequence, r.payload)

                        !r.payload.contentEquals(appended[r.sequence.toInt()]) ->
                            "seq ${r.sequence} differs from what was appended" +
                                foreign(pool, topic, r.sequence, r.payload)

                        else -> null
                    }
                    if (bad != null) {
                        served++
                        if (problems.size < 10) problems.add("'$topic' $bad")
                    }
                }
                if (wal.nextSequence(topic) != records.size.toLong()) {
                    served++
                    problems.add("'$topic': nextSequence ${wal.nextSequence(topic)}, replay gave ${records.size}")
                }
                val promised = if (allowed.size > 1) 0L else base.ids[topic]?.let { survivors[it] } ?: 0L
                if (records.size < promised) {
                    lost += promised - records.size
                    problems.add(
                        "'$topic': ${records.size} records survive, " +
                            "but the first damaged byte ($d) comes after $promised of them",
                    )
                }
            }
            // The opened log takes appends, and then reopens clean.
            val topic = base.model.keys.first()
            val next = wal.nextSequence(topic)
            val seq = withTimeout(TIMEOUT_MS / 2) { wal.append(topic, byteArrayOf(1, 2, 3)) }
            if (seq != next) {
                failed = true
                problems.add("append after open got $seq, expected $next")
            }
        } catch (e: Throwable) {
            failed = true
            problems.add("checking the opened log threw ${e::class.qualifiedName}: $e")
        } finally {
            try {
                wal.close()
            } catch (e: Throwable) {
                failed = true
                problems.add("close threw $e")
            }
        }
        if (!failed) {
            try {
                Kwal.open(
                    againOptions.of(dir, policy = CorruptionPolicy.FAIL).toBuilder().verifyOnOpen(true).build(),
                ).use { again ->
                    if (again.recovery.truncatedBytes != 0L || again.recovery.corruption != null) {
                        failed = true
                        problems.add("second open after a successful open still found damage: ${again.recovery}")
                    }
                }
            } catch (e: Throwable) {
                failed = true
                problems.add("second open (FAIL) after a successful open threw $e")
            }
        }
        Outcome(kind, lost, served, failed, wrong, problems = problems, verdict = verdict)
    }

    // ---- where a refusal must point ----

    /**
     * Where a refusal under FAIL may point for a directory whose bytes first differ from [ref]'s log at [d].
     *
     * Everything before [d] is [ref]'s, intact, so the scan (FORMAT.md, Recovery, step 3) reaches [anchor] — the
     * start of [ref]'s block that holds [d], or where the next block would start if [d] lies in the zeros after a
     * segment's data, or offset 0 for damage to a segment header or a missing segment — and makes its check there.
     * If the damaged bytes fail it, the scan stops there, and the error names exactly [anchor] (step 4: the bad place
     * itself, also when P moves back to the start of a group). Only if they pass it ([hidden]: a sound header forged
     * or spliced in, a segment or its data cut off exactly at a block boundary) may the stop come later; and then,
     * if the pending group is cut off at the end of the log, at the start of the group open at [anchor] ([lowest]).
     */
    private class Expectation(
        val ref: Base,
        val d: LogPosition?,
        val anchor: LogPosition?,
        val lowest: LogPosition?,
        val hidden: Boolean,
    ) {
        override fun toString(): String = if (d == null) {
            "no byte of log ${ref.index} differs"
        } else {
            "first damaged byte of log ${ref.index} at $d, in the place checked at $anchor" +
                if (hidden) " (its damaged bytes pass that check: the stop may come later, not before $lowest)" else ""
        }
    }

    private class Judgement(val kind: String, val problem: String?)

    private fun expectation(ref: Base, damaged: Path, segmentSize: Int): Expectation {
        val d = firstDifference(ref, damaged) ?: return Expectation(ref, null, null, null, false)
        val anchor = if (d.offset < SegmentHeader.SIZE) {
            LogPosition(d.segmentId, 0)
        } else {
            val inSegment = ref.blocks.filter { it.segment == d.segmentId }
            val holder = inSegment.firstOrNull { d.offset in it.at until it.end }
            LogPosition(
                d.segmentId,
                holder?.at ?: (inSegment.map { it.end }.filter { it <= d.offset }.maxOrNull() ?: SegmentHeader.SIZE),
            )
        }
        // The group still open at the anchor: the one of the first block at or after it, if it began before it.
        var groupStart: LogPosition? = null
        var lowest = anchor
        for (b in ref.blocks) {
            val at = LogPosition(b.segment, b.at)
            if (groupStart == null) groupStart = at
            if (at >= anchor) {
                if (groupStart < anchor) lowest = groupStart
                break
            }
            if (!b.continued) groupStart = null
        }
        return Expectation(ref, d, anchor, lowest, passesCheckAt(damaged, anchor, segmentSize))
    }

    /**
     * Whether the bytes of [dir] at [p] pass the check the recovery scan makes there (FORMAT.md), checked here
     * independently.
     */
    private fun passesCheckAt(dir: Path, p: LogPosition, segmentSize: Int): Boolean {
        val path = LogFiles.segment(dir, p.segmentId)
        if (!path.exists()) return false // a gap, if later segments exist; if none do, nothing there to refuse
        val bytes = path.readBytes()
        val b = ByteBuffer.wrap(bytes)
        val header = segmentHeader(bytes)
        if (p.offset == 0) {
            if (header == null || header.id != p.segmentId ||
                header.size !in WalOptions.MIN_SEGMENT_SIZE..WalOptions.MAX_SEGMENT_SIZE
            ) {
                return false
            }
            if (p.segmentId == 1) return true
            val first = LogFiles.segment(dir, 1).takeIf { it.exists() }?.let { segmentHeader(it.readBytes()) }
                ?: return false
            return header.logId == first.logId
        }
        val declared = header?.size?.takeIf { it in WalOptions.MIN_SEGMENT_SIZE..WalOptions.MAX_SEGMENT_SIZE }
            ?: segmentSize
        val limit = minOf(bytes.size, declared)
        val at = p.offset
        // A zero window (or too little room for a header): the data ends here, cleanly only if all the rest is zero.
        if (at + BlockHeader.SIZE > limit || (at until at + BlockHeader.SIZE).all { bytes[it].toInt() == 0 }) {
            return (at until limit).all { bytes[it].toInt() == 0 }
        }
        // A block: header sound at this place, body within the segment, every frame sound, filling the body exactly.
        if (b.getInt(at) != BlockHeader.MAGIC) return false
        val crc = CRC32C()
        crc.update(bytes, at + 8, BlockHeader.SIZE - 8)
        crc.update(ByteBuffer.allocate(8).putInt(p.segmentId).putInt(at).array())
        if (b.getInt(at + 4) != crc.value.toInt() || bytes[at + 8].toInt() != 1 ||
            bytes[at + 9].toInt() and 3.inv() != 0
        ) {
            return false
        }
        val topic = b.getInt(at + 12)
        val first = b.getLong(at + 16)
        val count = b.getInt(at + 24)
        val body = b.getInt(at + 28)
        val compressed = bytes[at + 9].toInt() and 2 != 0
        val codec = bytes[at + 10].toInt()
        if (count < 1 || at.toLong() + BlockHeader.SIZE + body > limit) return false
        if (!compressed) {
            if (codec != 0 || body < 12L * count) return false
            return framesPass(bytes, at + BlockHeader.SIZE, at + BlockHeader.SIZE + body, topic, first, count)
        }
        // A compressed body (FORMAT.md): CRC over the place, the length and the compressed bytes; a bounded length.
        if ((codec != 1 && codec != 2) || body <= 8) return false
        val length = b.getInt(at + BlockHeader.SIZE + 4)
        if (length < 12L * count || length > declared.toLong() - at - BlockHeader.SIZE) return false
        crc.reset()
        crc.update(ByteBuffer.allocate(12).putInt(p.segmentId).putInt(at).putInt(length).array())
        crc.update(bytes, at + BlockHeader.SIZE + 8, body - 8)
        if (b.getInt(at + BlockHeader.SIZE) != crc.value.toInt()) return false
        val packed = bytes.copyOfRange(at + BlockHeader.SIZE + 8, at + BlockHeader.SIZE + body)
        val plain = ByteArray(length)
        val got = try {
            if (codec == 1) {
                net.jpountz.lz4.LZ4Factory.safeInstance().safeDecompressor()
                    .decompress(packed, 0, packed.size, plain, 0, length)
            } else {
                com.github.luben.zstd.Zstd.decompressByteArray(plain, 0, length, packed, 0, packed.size).let {
                    if (com.github.luben.zstd.Zstd.isError(it)) -1 else it.toInt()
                }
            }
        } catch (e: RuntimeException) {
            -1
        }
        return got == length && framesPass(plain, 0, length, topic, first, count)
    }

    /** Whether [count] frames of records [first].. of [topic] fill [bytes]`[from, end)` exactly, each sound. */
    private fun framesPass(bytes: ByteArray, from: Int, end: Int, topic: Int, first: Long, count: Int): Boolean {
        val b = ByteBuffer.wrap(bytes)
        val crc = CRC32C()
        var f = from
        for (k in 0 until count) {
            if (end - f < RecordFrame.HEADER_SIZE) return false
            val len = b.getInt(f + 4)
            if (len < 0 || len > end - f - RecordFrame.HEADER_SIZE || b.getInt(f + 8) != 0xB1 shl 24) return false
            crc.reset()
            crc.update(ByteBuffer.allocate(12).putInt(topic).putLong(first + k).array())
            crc.update(bytes, f + 4, 8 + len)
            if (b.getInt(f) != crc.value.toInt()) return false
            f += RecordFrame.HEADER_SIZE + len
        }
        return f == end
    }

    private class Header(val id: Int, val size: Int, val logId: Long)

    /** The segment header of [bytes] if it is sound (magic, CRC, version, length), read independently of the engine. */
    private fun segmentHeader(bytes: ByteArray): Header? {
        if (bytes.size < SegmentHeader.SIZE) return null
        val b = ByteBuffer.wrap(bytes)
        if (b.getInt(0) != SegmentHeader.MAGIC || b.getShort(4).toInt() != 1 ||
            b.getShort(6).toInt() != SegmentHeader.SIZE
        ) {
            return null
        }
        if (b.getInt(60) != CRC32C().apply { update(bytes, 0, 60) }.value.toInt()) return null
        return Header(b.getInt(8), b.getInt(12), b.getLong(16))
    }

    /**
     * Whether [e] names the bad place one of [expected] allows: a segment file of [dir], and exactly the anchor of the
     * damage — or, if the damaged bytes pass the check made there, a place not before its [Expectation.lowest].
     */
    private fun judge(e: WalCorruptedException, dir: Path, expected: List<Expectation>): Judgement {
        val file = e.file
        val id = file?.fileName?.toString()
            ?.let { Regex("""seg-(\d{10})\.kwal""").matchEntire(it) }?.groupValues?.get(1)?.toInt()
        val problem = when {
            file == null || id == null ||
                file.toAbsolutePath().normalize() != LogFiles.segment(dir, id).toAbsolutePath().normalize() ->
                "WalCorruptedException names ${file ?: "no file"}, not a segment file of $dir: ${e.message}"

            e.offset !in 0L..Int.MAX_VALUE.toLong() -> "WalCorruptedException names offset ${e.offset}: ${e.message}"

            else -> {
                val found = LogPosition(id, e.offset.toInt())
                val exact = expected.firstOrNull { it.anchor == found }
                val later = expected.firstOrNull { it.hidden && it.lowest != null && found >= it.lowest }
                when {
                    exact != null -> return Judgement(
                        if (found.offset == 0) "at the damaged segment" else "at the damaged block",
                        null,
                    )

                    later != null -> return Judgement(
                        if (found > later.anchor!!) {
                            "later, past damage that passes its check"
                        } else {
                            "at the start of the group open at the damage"
                        },
                        null,
                    )

                    else ->
                        "refused at $found (${e.message}), but the rules put the bad place at: " +
                            expected.joinToString("; ")
                }
            }
        }
        return Judgement("", problem)
    }

    /** Every file of [dir] but the lock file, by name. */
    private fun contents(dir: Path): Map<String, ByteArray> =
        dir.listDirectoryEntries().filter { it.name != LogFiles.LOCK_FILE }.associate { it.name to it.readBytes() }

    /** What differs between two [contents], or null if nothing does. */
    private fun changes(before: Map<String, ByteArray>, after: Map<String, ByteArray>): String? {
        val out = ArrayList<String>()
        for (name in (before.keys + after.keys).toSortedSet()) {
            val a = before[name]
            val b = after[name]
            when {
                a == null -> out.add("$name created")

                b == null -> out.add("$name deleted")

                !a.contentEquals(b) ->
                    out.add("$name changed (${a.size} -> ${b.size} bytes, first at ${java.util.Arrays.mismatch(a, b)})")
            }
        }
        return out.takeIf { it.isNotEmpty() }?.joinToString(", ")
    }

    /** The log id in the header of [dir]'s segment 1, if it has one. */
    private fun logIdOf(dir: Path): Long? {
        val p = LogFiles.segment(dir, 1)
        if (!p.exists() || p.fileSize() < SegmentHeader.SIZE) return null
        return ByteBuffer.wrap(p.readBytes(), 16, 8).long
    }

    /** If [payload] is another pool log's record at this topic and sequence, say so. */
    private fun foreign(pool: List<Base>, topic: String, seq: Long, payload: ByteArray): String {
        val from = pool.firstOrNull { b -> b.model[topic]?.getOrNull(seq.toInt())?.contentEquals(payload) == true }
        return if (from != null) {
            " (it is log ${from.index}'s record: a block of another log passed every check)"
        } else {
            ""
        }
    }

    // ---- damage ----

    private fun copy(from: Path, to: Path) {
        Files.createDirectories(to)
        for (p in from.listDirectoryEntries()) {
            if (p.name != LogFiles.LOCK_FILE) Files.copy(p, to.resolve(p.name), StandardCopyOption.REPLACE_EXISTING)
        }
    }

    /** The first position, in log order, where [dir]'s segment files differ from [base]'s; null if none. */
    private fun firstDifference(base: Base, dir: Path): LogPosition? {
        val now = LogFiles.segmentIds(dir)
        for (id in (base.files.keys + now).toSortedSet()) {
            val a = base.files[id] ?: return LogPosition(id, 0)
            if (id !in now) return LogPosition(id, 0)
            val b = LogFiles.segment(dir, id).readBytes()
            val mismatch = java.util.Arrays.mismatch(a, b)
            if (mismatch >= 0) return LogPosition(id, mismatch)
        }
        return null
    }

    private fun dataEnd(bytes: ByteArray): Int {
        var i = bytes.size
        while (i > 0 && bytes[i - 1].toInt() == 0) i--
        return i
    }

    private fun pick(dir: Path, rnd: Random): Path {
        val ids = LogFiles.segmentIds(dir)
        return LogFiles.segment(dir, ids[rnd.nextInt(ids.size)])
    }

    /** A random offset of [p], mostly in its data (and a little past it). */
    private fun offsetIn(p: Path, rnd: Random): Int {
        val size = p.fileSize().toInt()
        if (size == 0) return 0
        val end = minOf(size, dataEnd(p.readBytes()) + 256)
        return if (rnd.nextInt(10) == 0) rnd.nextInt(size) else rnd.nextInt(maxOf(1, end))
    }

    private val hugeValues =
        intArrayOf(Int.MAX_VALUE, Int.MIN_VALUE, -1, 0x7FFFFFF0, 1 shl 30, 0x10000000, 64 shl 10, 0x7FFFFFFF - 47)

    private fun forgedValue(orig: Int, rnd: Random): Int = when (rnd.nextInt(4)) {
        0, 1 -> hugeValues[rnd.nextInt(hugeValues.size)]
        2 -> orig + rnd.nextInt(-3, 4).let { if (it == 0) 1 else it }
        else -> rnd.nextInt()
    }

    private fun damage(dir: Path, base: Base, pool: List<Base>, rnd: Random): String {
        val ids = LogFiles.segmentIds(dir)
        if (ids.isEmpty()) return "nothing left to damage"
        return when (rnd.nextInt(13)) {
            0, 1 -> {
                val p = pick(dir, rnd)
                val n = rnd.nextInt(1, 9)
                repeat(n) {
                    if (p.fileSize() > 0) {
                        LogFiles.flipBit(p, offsetIn(p, rnd).toLong().coerceAtMost(p.fileSize() - 1), rnd.nextInt(8))
                    }
                }
                "$n bit(s) flipped in ${p.name}"
            }

            2 -> {
                val p = pick(dir, rnd)
                val size = p.fileSize().toInt()
                val at = if (rnd.nextBoolean()) offsetIn(p, rnd) else rnd.nextInt(size + 1)
                LogFiles.truncate(p, at.toLong())
                "${p.name} truncated to $at bytes"
            }

            3 -> {
                val p = pick(dir, rnd)
                val at = offsetIn(p, rnd)
                val until = minOf(p.fileSize().toInt(), at + rnd.nextInt(1, 4097))
                LogFiles.zero(p, at, until)
                "${p.name} zeroed at $at..$until"
            }

            4, 5 -> {
                // a range of this log copied elsewhere in it: same segment or another, same offset or not
                val src = pick(dir, rnd)
                val dst = pick(dir, rnd)
                val from = offsetIn(src, rnd)
                val bytes = src.readBytes()
                val len = minOf(bytes.size - from, rnd.nextInt(1, 8193))
                if (len <= 0) return "nothing duplicated"
                val to = if (rnd.nextInt(3) == 0) from else offsetIn(dst, rnd)
                LogFiles.write(dst, to.toLong(), bytes.copyOfRange(from, from + len))
                "$len bytes of ${src.name} at $from duplicated onto ${dst.name} at $to"
            }

            6 -> {
                // spliced from another log of the pool
                val other = pool[rnd.nextInt(pool.size)]
                val (srcId, srcBytes) = other.files.entries.toList()[rnd.nextInt(other.files.size)]
                val dst = pick(dir, rnd)
                val from = rnd.nextInt(maxOf(1, dataEnd(srcBytes)))
                val len = minOf(srcBytes.size - from, rnd.nextInt(1, 16_385))
                val to = if (rnd.nextBoolean()) from else offsetIn(dst, rnd)
                LogFiles.write(dst, to.toLong(), srcBytes.copyOfRange(from, from + len))
                "$len bytes of log ${other.index} segment $srcId at $from spliced into ${dst.name} at $to"
            }

            7 -> {
                // a whole segment replaced by another log's
                val other = pool[rnd.nextInt(pool.size)]
                val (srcId, srcBytes) = other.files.entries.toList()[rnd.nextInt(other.files.size)]
                val dst = pick(dir, rnd)
                Files.write(dst, srcBytes)
                "${dst.name} replaced by log ${other.index}'s segment $srcId"
            }

            8, 9 -> forgeBlock(dir, base, rnd)

            10 -> {
                // segment header fields: size or id, sometimes with the header CRC made valid again
                val p = pick(dir, rnd)
                if (p.fileSize() < SegmentHeader.SIZE) return "nothing to forge in ${p.name}"
                val bytes = p.readBytes()
                val b = ByteBuffer.wrap(bytes)
                val field = if (rnd.nextInt(3) == 0) 8 else 12
                val value = if (field == 12 && rnd.nextInt(4) == 0) (128 shl 10) else forgedValue(b.getInt(field), rnd)
                b.putInt(field, value)
                val fixCrc = rnd.nextBoolean()
                if (fixCrc) b.putInt(60, CRC32C().apply { update(bytes, 0, 60) }.value.toInt())
                LogFiles.write(p, 0, bytes.copyOf(SegmentHeader.SIZE))
                "${p.name} header ${if (field == 8) "segment id" else "segment size"} " +
                    "forged to $value${if (fixCrc) " (CRC recomputed)" else ""}"
            }

            11 -> {
                val p = pick(dir, rnd)
                Files.delete(p)
                "${p.name} deleted"
            }

            else -> {
                val p = pick(dir, rnd)
                val free = (1..ids.last() + 3).filter { it !in ids }
                if (rnd.nextBoolean() || ids.size < 2) {
                    val to = LogFiles.segment(dir, free[rnd.nextInt(free.size)])
                    Files.move(p, to)
                    "${p.name} renamed to ${to.name}"
                } else {
                    val q = LogFiles.segment(dir, ids.filter { LogFiles.segment(dir, it) != p }.random(rnd))
                    val tmp = dir.resolve("swap.tmp")
                    Files.move(p, tmp)
                    Files.move(q, p)
                    Files.move(tmp, q)
                    "${p.name} and ${q.name} swapped"
                }
            }
        }
    }

    /** Forges a length field of a block: body length, record count, or a record's length. */
    private fun forgeBlock(dir: Path, base: Base, rnd: Random): String {
        val blk = base.blocks[rnd.nextInt(base.blocks.size)]
        val p = LogFiles.segment(dir, blk.segment)
        if (!p.exists() || p.fileSize() < blk.end) return "nothing to forge"
        val bytes = p.readBytes()
        val b = ByteBuffer.wrap(bytes)
        val at = blk.at
        val fixCrc = rnd.nextBoolean()
        val desc: String
        when (rnd.nextInt(3)) {
            0 -> {
                if (blk.compressed && rnd.nextBoolean()) {
                    // the uncompressed length of a compressed body, its body CRC recomputed (or not)
                    val lengthAt = at + BlockHeader.SIZE + CompressedBody.OFF_LENGTH
                    val orig = b.getInt(lengthAt)
                    val v = forgedValue(orig, rnd)
                    b.putInt(lengthAt, v)
                    if (fixCrc) {
                        val n = blk.body - CompressedBody.PREFIX
                        b.putInt(
                            at + BlockHeader.SIZE,
                            CompressedBody.crc(
                                CRC32C(),
                                LogPosition(blk.segment, at),
                                v,
                                bytes,
                                at + BlockHeader.SIZE + 8,
                                n,
                            ),
                        )
                    }
                    LogFiles.write(p, at.toLong(), bytes.copyOfRange(at, blk.end))
                    return "${p.name} compressed block at $at (topic ${blk.topicId}): uncompressed length $orig -> $v" +
                        if (fixCrc) " (body CRC recomputed)" else ""
                }
                val v = forgedValue(blk.body, rnd)
                b.putInt(at + BlockHeader.OFF_BODY_LENGTH, v)
                desc = "body length ${blk.body} -> $v"
            }

            1 -> {
                val v = forgedValue(blk.count, rnd)
                b.putInt(at + BlockHeader.OFF_COUNT, v)
                desc = "record count ${blk.count} -> $v"
            }

            else -> {
                // the length of record k of the block
                var f = at + BlockHeader.SIZE
                val k = rnd.nextInt(blk.count)
                repeat(k) {
                    if (f + RecordFrame.HEADER_SIZE <= blk.end) f += RecordFrame.HEADER_SIZE + maxOf(0, b.getInt(f + 4))
                }
                if (f < at || f + RecordFrame.HEADER_SIZE > blk.end) return "nothing to forge (block already damaged)"
                val orig = b.getInt(f + 4)
                val v = forgedValue(orig, rnd)
                b.putInt(f + 4, v)
                desc = "record $k length $orig -> $v"
            }
        }
        if (fixCrc) {
            b.putInt(at + BlockHeader.OFF_CRC, BlockHeader.computeCrc(b, at, LogPosition(blk.segment, at), CRC32C()))
        }
        LogFiles.write(p, at.toLong(), bytes.copyOfRange(at, blk.end))
        return "${p.name} block at $at (topic ${blk.topicId}, seqs ${blk.firstSeq}..${blk.lastSeq}): " +
            "$desc${if (fixCrc) " (header CRC recomputed)" else ""}"
    }
}
