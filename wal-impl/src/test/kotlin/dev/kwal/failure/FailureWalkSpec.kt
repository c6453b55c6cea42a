package dev.kwal.failure

import dev.kwal.Durability
import dev.kwal.TestLogs
import dev.kwal.Wal
import dev.kwal.WalException
import dev.kwal.WalFailedException
import dev.kwal.WalOptions
import dev.kwal.engine.Kwal
import dev.kwal.engine.KwalEngine
import dev.kwal.engine.io.FaultyFileIo
import dev.kwal.engine.io.FaultyFileIo.Op
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import java.nio.file.Path
import java.util.concurrent.ConcurrentHashMap

/**
 * Walks one injected failure through every call site of the I/O seam that a workload reaches — writes, syncs,
 * opens, renames, deletions, directory syncs — during single appends, batches, block seals and segment rolls.
 *
 * For each scenario a fault-free run first counts the calls of each kind; then, for a sample of call numbers N,
 * a fresh log runs the same workload with the Nth call of that kind failing. Afterwards the test reopens the
 * directory on the real file system and checks that no acknowledged record is lost, no record whose append failed
 * is visible, sequences are dense from 0, and the log was usable after write-type errors or fail-stopped after a
 * failed sync of acknowledged data, as documented.
 */
internal class Scenario(
    val name: String,
    val options: (Path) -> WalOptions,
    val writers: Int,
    val ops: Int,
    val workload: suspend FailureWalkSpec.Ctx.(writer: Int, i: Int) -> Unit,
)

class FailureWalkSpec :
    FunSpec({

        val scenarios = listOf(
            Scenario("single appends", { TestLogs.small(it) }, writers = 1, ops = 30) { w, i ->
                append("t${i % 3}", 200, "$w/$i")
            },
            Scenario("batches", { TestLogs.small(it) }, writers = 2, ops = 10) { w, i ->
                batch("b${i % 2}", 1 + (i * 7 + w) % 9, 300, "$w/$i")
            },
            Scenario("block seals", { TestLogs.small(it) }, writers = 4, ops = 10) { w, i ->
                if (i % 3 == 2) batch("s", 4, 2500, "$w/$i") else append("s", 3000, "$w/$i")
            },
            Scenario("segment rolls", { TestLogs.small(it) }, writers = 4, ops = 16) { w, i ->
                if (i % 4 == 3) batch("r${w % 2}", 3, 3000, "$w/$i") else append("r${w % 2}", 3500, "$w/$i")
            },
            // One writer under Durability.None on an otherwise idle log: appends are stored by the caller through the
            // segment's mapping (Op.STORE), and every tenth one needs a roll, so it goes through the writer.
            Scenario("inline appends", { TestLogs.small(it, Durability.None) }, writers = 1, ops = 60) { w, i ->
                // let the writer thread finish the previous group and let go of its lock, even on a busy machine
                delay(2)
                append("n${i % 2}", if (i % 10 == 9) 3500 else 150, "$w/$i")
                if (i % 20 == 19) {
                    try {
                        wal.sync()
                    } catch (e: WalException) {
                        errors.add(e)
                    }
                }
            },
        )
        val kinds = listOf(Op.WRITE, Op.FORCE, Op.WRITE_BLOCKING, Op.STORE, Op.OPEN, Op.MOVE, Op.DELETE, Op.SYNC_DIR)

        for (scenario in scenarios) {
            test("a failure at every seam call site during ${scenario.name}") {
                // Count the calls of each kind the workload makes — from the moment faults are armed (after open) to
                // its end (before the probe and close) — in two fault-free runs, and sample call numbers below the
                // smaller.
                val windows = List(2) {
                    val baseline = FaultyFileIo()
                    lateinit var armed: Map<Op, Int>
                    lateinit var done: Map<Op, Int>
                    run(
                        scenario,
                        baseline,
                        arm = { armed = baseline.counts() },
                        afterWorkload = { done = baseline.counts() },
                    )
                    kinds.associateWith { done.getValue(it) - armed.getValue(it) }
                }
                val summary = StringBuilder("FAULTS ${scenario.name}:")
                for (kind in kinds) {
                    val calls = windows.minOf { it.getValue(kind) }
                    var stopped = 0
                    var runs = 0
                    var fired = 0
                    val missed = ArrayList<Int>()
                    for (n in sample(calls)) {
                        withClue("${scenario.name}: call $n of $calls of $kind fails") {
                            val io = FaultyFileIo()
                            var hit = false
                            val failStopped =
                                run(scenario, io, arm = {
                                    io.failNth(kind, n)
                                }, afterWorkload = { hit = io.allFired() })
                            if (failStopped) stopped++
                            if (hit) fired++ else missed += n
                            runs++
                        }
                    }
                    summary.append(" $kind calls=$calls runs=$runs fired=$fired stopped=$stopped;")
                    // How many calls a run makes varies with timing (how groups form, when a background sync runs), so
                    // a fault late in the window may find its run shorter; one in the first half of the window must
                    // fire.
                    withClue("${scenario.name}: faults of $kind that never fired: call numbers $missed of $calls") {
                        missed.none { it <= (calls + 1) / 2 } shouldBe true
                    }
                }
                println(summary)
            }
        }

        test("a short write rolls back the partial bytes") {
            for (n in 1..6) {
                withClue("short write $n") {
                    val io = FaultyFileIo()
                    run(scenarios[3], io, arm = { io.shortWriteNth(Op.WRITE, n) })
                }
            }
        }

        test("a full disk fails the writes it hits and the log goes on once space is back") {
            for (budget in listOf(1_000L, 70_000L, 140_000L)) {
                withClue("disk full after $budget bytes") {
                    val io = FaultyFileIo()
                    run(scenarios[3], io, arm = { io.diskFullAfter(budget) }, afterWorkload = { io.clear() })
                }
            }
        }
    }) {
    /** What a workload did: the payload of every acknowledged record, and the ids of failed appends. */
    class Ctx(val wal: Wal) {
        val acked = ConcurrentHashMap<String, ConcurrentHashMap<Long, String>>()
        val failed: MutableSet<String> = ConcurrentHashMap.newKeySet()
        val errors: MutableList<Throwable> = java.util.Collections.synchronizedList(ArrayList())

        private fun body(id: String, size: Int) =
            ("$id|" + "x".repeat(maxOf(0, size - id.length - 1))).encodeToByteArray()

        suspend fun append(topic: String, size: Int, id: String) {
            val key = "$topic/$id"
            try {
                val seq = wal.append(topic, body(key, size))
                acked.computeIfAbsent(topic) { ConcurrentHashMap() }[seq] = key
            } catch (e: WalException) {
                failed.add(key)
                errors.add(e)
            }
        }

        suspend fun batch(topic: String, count: Int, size: Int, id: String) {
            val keys = List(count) { "$topic/$id.$it" }
            try {
                val range = wal.appendBatch(topic, keys.map { body(it, size) })
                range.count() shouldBe count
                for ((k, seq) in keys.zip(range)) acked.computeIfAbsent(topic) { ConcurrentHashMap() }[seq] = k
            } catch (e: WalException) {
                failed.addAll(keys)
                errors.add(e)
            }
        }
    }

    companion object {
        /** Up to 6 call numbers spread over 1..[calls], always including the first and the last. */
        fun sample(calls: Int): List<Int> = if (calls <= 6) {
            (1..calls).toList()
        } else {
            (listOf(1, calls) + List(4) { 1 + (it + 1) * calls / 5 }).distinct().sorted()
        }

        internal suspend fun run(
            s: Scenario,
            io: FaultyFileIo,
            arm: () -> Unit,
            afterWorkload: () -> Unit = {},
        ): Boolean {
            val dir = TestLogs.tempDir("kwal-fault")
            val opts = s.options(dir)
            val wal = withContext(Dispatchers.IO) { KwalEngine.open(opts, io) }
            val ctx = Ctx(wal)
            arm()
            withTimeout(60_000) {
                withContext(Dispatchers.Default) {
                    coroutineScope {
                        repeat(s.writers) { w -> launch { repeat(s.ops) { i -> s.workload(ctx, w, i) } } }
                    }
                }
            }
            afterWorkload()
            io.clear() // the probe below must not meet an injected fault itself
            // Usable after write-type errors; fail-stopped only after a failed sync.
            val after = runCatching { wal.append("after", "after".encodeToByteArray()) }
            val stopped = after.exceptionOrNull()
            if (stopped != null) {
                withClue(
                    "only a failed fsync may stop the log; probe got $stopped; " +
                        "errors were ${ctx.errors.take(3)}",
                ) {
                    (stopped is WalFailedException) shouldBe true
                    // A failed sync: a caller's, or the background sync of a sealed segment (which no caller waits
                    // for).
                    val causes = generateSequence(stopped) { it.cause }
                    causes.any { it.message == "injected failure of FORCE" } shouldBe true
                }
            } else {
                ctx.acked.computeIfAbsent("after") { ConcurrentHashMap() }[after.getOrThrow()] = "after"
            }
            withContext(Dispatchers.IO) { wal.close() }
            verify(dir, opts, ctx)
            dir.toFile().deleteRecursively()
            return stopped != null
        }

        private suspend fun verify(dir: Path, opts: WalOptions, ctx: Ctx) {
            val wal = withContext(Dispatchers.IO) {
                Kwal.open(
                    WalOptions(
                        dir,
                        opts.segmentSize,
                        opts.blockSize,
                        opts.maxRecordSize,
                        opts.maxGroupBytes,
                        Durability.Sync,
                    ),
                )
            }
            try {
                for (topic in wal.topics() + ctx.acked.keys) {
                    val records = wal.replay(topic).toList()
                    withClue("topic $topic: sequences dense from 0") {
                        records.map { it.sequence } shouldBe records.indices.map { it.toLong() }
                    }
                    val seen = records.associate { it.sequence to it.payload.decodeToString().substringBefore('|') }
                    for ((seq, key) in ctx.acked[topic] ?: emptyMap()) {
                        withClue("acknowledged $key at $topic/$seq") { seen[seq] shouldBe key }
                    }
                    for ((seq, key) in seen) {
                        withClue("record $key at $topic/$seq failed its append but is visible") {
                            (key in ctx.failed) shouldBe false
                        }
                    }
                }
            } finally {
                withContext(Dispatchers.IO) { wal.close() }
            }
        }
    }
}
