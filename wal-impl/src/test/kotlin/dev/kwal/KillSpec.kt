package dev.kwal

import dev.kwal.crash.Ack
import dev.kwal.crash.AppenderProcess
import dev.kwal.crash.ChildJvm
import dev.kwal.crash.CrashOptions
import dev.kwal.crash.CrashPayloads
import io.kotest.core.spec.style.FunSpec
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.withContext
import java.nio.file.Path
import kotlin.random.Random
import kotlin.time.Duration.Companion.seconds

/**
 * Real crashes: a child JVM ([AppenderProcess]) appends from 32 coroutines and prints every
 * acknowledgement; the test SIGKILLs it, reopens the directory here and checks that every acknowledged
 * record survived, intact, at its sequence, with dense sequences, and that the log takes appends. Then it
 * does it again on the same, already recovered, directory.
 *
 * `-Dkwal.kill.seed=<n>` replays a seed (the kill instant still depends on timing; the ack targets, delays
 * and payloads do not); `-Dkwal.kill.cycles=<n>` changes the number of cycles (default 3).
 */
class KillSpec : FunSpec({
    val seed = System.getProperty("kwal.kill.seed")?.toLong() ?: Random.nextLong()
    val cycles = System.getProperty("kwal.kill.cycles")?.toInt() ?: 3

    test("SIGKILL during concurrent appends loses no acknowledged record").config(timeout = (20 + cycles * 15).seconds) {
        println("KillSpec seed=$seed cycles=$cycles (rerun with -Dkwal.kill.seed=$seed)")
        println("child classpath: ${ChildJvm.classpathSource()}")
        val rnd = Random(seed)
        val log = KilledLog(TestLogs.tempDir("kwal-kill"), seed)
        for (cycle in 1..cycles) {
            val target = rnd.nextInt(200, 2001)
            val acks = log.runChild(cycle, seed + cycle, "target $target acks") { child ->
                if (!child.awaitReady(30_000)) log.fail(cycle, "child did not print READY", child)
                val got = child.awaitAcks(target, 20_000)
                if (!child.process.isAlive) log.fail(cycle, "child died before it was killed", child)
                if (got == 0) log.fail(cycle, "child acknowledged nothing", child)
            }
            log.verify(cycle, acks)
        }
        log.finish()
    }

    test("SIGKILL at random instants, during open and recovery too").config(timeout = (20 + cycles * 15).seconds) {
        val seed2 = seed xor 0x5DEECE66DL
        println("KillSpec (random instants) seed=$seed2")
        val rnd = Random(seed2)
        val log = KilledLog(TestLogs.tempDir("kwal-kill-any"), seed2)
        // Two cycles give the log something to recover first; then kills land anywhere from JVM start on.
        for (cycle in 1..cycles + 2) {
            val delay = if (cycle <= 2) -1L else rnd.nextLong(0, 1500)
            val acks = log.runChild(cycle, seed2 + cycle, if (delay < 0) "after 300 acks" else "after ${delay}ms") { child ->
                if (delay < 0) {
                    if (!child.awaitReady(30_000)) log.fail(cycle, "child did not print READY", child)
                    child.awaitAcks(300, 20_000)
                } else {
                    Thread.sleep(delay)
                }
                if (!child.process.isAlive) log.fail(cycle, "child died before it was killed", child)
            }
            log.verify(cycle, acks)
        }
        log.finish()
    }
})

/** One directory killed and recovered again and again, and what it must hold. */
private class KilledLog(val dir: Path, val seed: Long) {
    /** Per topic: CRC32 of the payload at each sequence that must be there (acked, or found by an earlier check). */
    private val known = HashMap<String, HashMap<Long, Long>>()
    private var totalAcks = 0
    private var cycles = 0

    fun fail(cycle: Int, msg: String, child: ChildJvm? = null): Nothing =
        throw AssertionError("seed=$seed cycle=$cycle dir=$dir: $msg" + (child?.let { "\n" + it.describe() } ?: ""))

    /** Starts an [AppenderProcess] on [dir], runs [untilKill], SIGKILLs it, and returns every ack it printed. */
    fun runChild(cycle: Int, childSeed: Long, what: String, untilKill: (ChildJvm) -> Unit): List<Ack> {
        val child = ChildJvm.start(AppenderProcess::class, dir.toString(), childSeed.toString())
        val acks = try {
            untilKill(child)
            if (!child.kill()) fail(cycle, "child did not exit after SIGKILL", child)
            child.error?.let { fail(cycle, "child reported $it", child) }
            child.malformed?.let { fail(cycle, "malformed ACK line '$it'", child) }
            println("cycle $cycle: killed ${child.name} ($what) after ${child.acks.size} acks; ${child.readyLine ?: "before READY"}")
            child.acks.toList()
        } finally {
            child.close()
        }
        totalAcks += acks.size
        cycles++
        for (a in acks) {
            val prev = known.getOrPut(a.topic) { HashMap() }.put(a.seq, a.crc)
            if (prev != null && prev != a.crc) fail(cycle, "${a.topic}/${a.seq} acknowledged with crc %08x, but %08x was there before".format(a.crc, prev))
        }
        return acks
    }

    /** Reopens [dir] and checks it against everything known; appends a little; closes. */
    suspend fun verify(cycle: Int, acks: List<Ack>) = withContext(Dispatchers.IO) {
        val wal = try {
            Kwal.open(CrashOptions.of(dir))
        } catch (e: Throwable) {
            fail(cycle, "reopen after SIGKILL failed: $e (${acks.size} acks this cycle)")
        }
        try {
            println("cycle $cycle: recovery ${wal.recovery}")
            for (topic in wal.topics() + known.keys) {
                val records = try {
                    wal.replay(topic).toList()
                } catch (e: Throwable) {
                    fail(cycle, "replay of '$topic' threw $e")
                }
                records.forEachIndexed { i, r ->
                    if (r.sequence != i.toLong()) fail(cycle, "'$topic': record #$i has sequence ${r.sequence} (sequences not dense)")
                    if (r.topic != topic) fail(cycle, "'$topic': record ${r.sequence} reports topic '${r.topic}'")
                    CrashPayloads.problem(topic, r.payload)?.let { fail(cycle, "'$topic' seq ${r.sequence}: payload damaged: $it") }
                }
                if (wal.nextSequence(topic) != records.size.toLong()) {
                    fail(cycle, "'$topic': nextSequence ${wal.nextSequence(topic)} but replay gave ${records.size} records")
                }
                val expected = known[topic].orEmpty()
                val missing = expected.keys.filter { it >= records.size }.sorted()
                if (missing.isNotEmpty()) {
                    fail(cycle, "'$topic': ${missing.size} acknowledged records missing after recovery: replay has ${records.size}, " +
                        "missing seqs ${missing.take(20)}${if (missing.size > 20) "…" else ""}")
                }
                for ((seq, crc) in expected) {
                    val actual = CrashPayloads.crc(records[seq.toInt()].payload)
                    if (actual != crc) fail(cycle, "'$topic' seq $seq: payload crc %08x, acknowledged %08x".format(actual, crc))
                }
                // Everything recovered now must stay: the next cycle has to find it again, unchanged.
                val k = known.getOrPut(topic) { HashMap() }
                records.forEach { k[it.sequence] = CrashPayloads.crc(it.payload) }
            }
            if (!wal.topics().containsAll(known.keys)) fail(cycle, "topics() ${wal.topics()} lacks some of ${known.keys}")

            // The recovered log takes appends and batches, at the next sequence of each topic.
            for (topic in CrashOptions.TOPICS) {
                val next = wal.nextSequence(topic)
                val p = CrashPayloads.make(topic, seed, -cycle, next, 100 + cycle)
                val seq = wal.append(topic, p)
                if (seq != next) fail(cycle, "'$topic': append after recovery got sequence $seq, expected $next")
                val batch = List(3) { CrashPayloads.make(topic, seed, -cycle, next + 1 + it, 2000) }
                val range = wal.appendBatch(topic, batch)
                if (range != (next + 1)..(next + 3)) fail(cycle, "'$topic': batch after recovery got $range, expected ${next + 1}..${next + 3}")
                val k = known.getOrPut(topic) { HashMap() }
                k[seq] = CrashPayloads.crc(p)
                batch.forEachIndexed { i, b -> k[range.first + i] = CrashPayloads.crc(b) }
                val back = wal.replay(topic, next).toList().map { CrashPayloads.crc(it.payload) }
                if (back != (listOf(p) + batch).map { CrashPayloads.crc(it) }) fail(cycle, "'$topic': records appended after recovery read back differently")
            }
        } finally {
            wal.close()
        }
    }

    fun finish() {
        println("seed=$seed: $cycles kill cycles, $totalAcks acknowledged records verified, ${known.values.sumOf { it.size }} records in the log")
        dir.toFile().deleteRecursively()
    }
}
