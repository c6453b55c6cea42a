package dev.kwal.torture

import dev.kwal.crash.ChildJvm
import dev.kwal.crash.KilledLog
import kotlinx.coroutines.runBlocking
import java.nio.file.Files
import kotlin.random.Random

/**
 * Process-kill torture on real processes. Each cycle starts an [dev.kwal.crash.AppenderProcess] child JVM
 * (32 coroutines, five topics, singles and batches, mixed sizes, small blocks and segments so blocks split
 * and segments roll) on a directory, SIGKILLs it at a random moment — sometimes while the JVM starts or
 * the child's own recovery runs, sometimes right after it opened, mostly after a random number of acks or a
 * random time of appending — then reopens the directory in this JVM and checks it with [KilledLog.check]:
 * every acknowledged (or earlier recovered) record present with its payload at its sequence; sequences
 * dense; every record intact and written by this directory's writers; batches whole; the log takes appends.
 * The next cycle runs on the same directory, so recovery runs on a log recovered many times before; every
 * [cyclesPerDirectory] cycles (or after a failure) a fresh directory starts.
 *
 * Seeded: cycle c of `run(n, seed)` takes its kill plan and payloads from `Random(seed + c)`; the kill instant
 * itself depends on timing. A failing cycle names the run seed and cycle.
 */
object KillTorture {
    var cyclesPerDirectory = 50

    fun run(cycles: Int, seed: Long): TortureResult {
        var result = TortureResult()
        if (cycles <= 0) return result
        val started = System.nanoTime()
        var current: KilledLog? = null
        var logCycles = 0
        for (cycle in 1..cycles) {
            if (current == null || logCycles >= cyclesPerDirectory) {
                current?.let { it.dir.toFile().deleteRecursively() }
                current = KilledLog(Files.createTempDirectory("kwal-torture-kill"), seed, "KillTorture seed=$seed (replay: -Dtorture.seed=$seed)")
                logCycles = 0
            }
            logCycles++
            val log: KilledLog = current
            val rnd = Random(seed + cycle)
            val plan = rnd.nextInt(100)
            val outcome = runCatching {
                val acks = log.runChild(cycle, seed * 7919 + cycle, "plan $plan", quiet = true) { child ->
                    when {
                        plan < 10 -> Thread.sleep(rnd.nextLong(0, 500)) // during JVM start or the child's recovery
                        plan < 20 -> { awaitReady(log, cycle, child); Thread.sleep(rnd.nextLong(0, 20)) }
                        plan < 60 -> {
                            awaitReady(log, cycle, child)
                            child.awaitAcks(rnd.nextInt(1, 1500), 15_000)
                        }
                        else -> { awaitReady(log, cycle, child); Thread.sleep(rnd.nextLong(0, 400)) }
                    }
                    if (!child.process.isAlive) log.fail(cycle, "child died before it was killed", child)
                }
                runBlocking { log.check(cycle, acks) }
            }
            val c = outcome.getOrElse { e ->
                // The child misbehaved: it could not open the log (its recovery failed), printed a bad line, hung.
                KilledLog.Check().apply { failedReopen = true; problems.add(e.message ?: e.toString()) }
            }
            result += TortureResult(
                kills = 1, acked = c.acked, lost = c.lost, corruptServed = c.corruptServed,
                failedReopens = if (c.failedReopen) 1 else 0,
                failures = if (c.clean && c.problems.isEmpty()) emptyList() else listOf(c.problems.joinToString("\n")),
            )
            if (!c.clean || c.problems.isNotEmpty()) {
                System.err.println("KillTorture FAILED ${log.where(cycle)} (directory kept for inspection):\n${c.problems.joinToString("\n")}")
                current = null // keep the evidence; go on in a fresh directory
            }
            if (cycle % 50 == 0) println("KillTorture: $cycle/$cycles cycles, ${"%.2f".format(elapsed(started) / cycle)} s/cycle, ${result.summary().removePrefix("TORTURE ")}")
        }
        current?.dir?.toFile()?.deleteRecursively()
        println("KillTorture seed=$seed: $cycles cycles in ${"%.1f".format(elapsed(started))} s " +
            "(${"%.2f".format(elapsed(started) / cycles)} s/cycle); child classpath from ${ChildJvm.classpathSource().substringBefore(' ')}")
        return result
    }

    private fun awaitReady(log: KilledLog, cycle: Int, child: ChildJvm) {
        if (!child.awaitReady(30_000)) log.fail(cycle, "child did not print READY (its open or recovery failed or hung)", child)
    }

    private fun elapsed(started: Long) = (System.nanoTime() - started) / 1e9
}
