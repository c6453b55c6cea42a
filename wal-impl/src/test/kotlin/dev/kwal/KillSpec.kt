package dev.kwal

import dev.kwal.crash.AppenderProcess
import dev.kwal.crash.ChildJvm
import dev.kwal.crash.KilledLog
import io.kotest.core.spec.style.FunSpec
import kotlin.random.Random
import kotlin.time.Duration.Companion.seconds

/**
 * Real crashes: a child JVM ([AppenderProcess]) appends from 32 coroutines and prints every
 * acknowledgement; the test SIGKILLs it, reopens the directory here and checks that every acknowledged
 * record survived, intact, at its sequence, with dense sequences, and that the log takes appends. Then it
 * does it again on the same, already recovered, directory. The checks live in [KilledLog], shared with
 * [dev.kwal.torture.KillTorture], the long-running version.
 *
 * `-Dkwal.kill.seed=<n>` replays a seed (the kill instant still depends on timing; the ack targets, delays
 * and payloads do not); `-Dkwal.kill.cycles=<n>` changes the number of cycles (default 3).
 */
class KillSpec :
    FunSpec({
        val seed = System.getProperty("kwal.kill.seed")?.toLong() ?: Random.nextLong()
        val cycles = System.getProperty("kwal.kill.cycles")?.toInt() ?: 3

        test("SIGKILL during concurrent appends loses no acknowledged record").config(
            timeout = (20 + cycles * 15).seconds,
        ) {
            println("KillSpec seed=$seed cycles=$cycles (rerun with -Dkwal.kill.seed=$seed)")
            println("child classpath: ${ChildJvm.classpathSource()}")
            killAtAckTargets(TestLogs.tempDir("kwal-kill"), seed, cycles, 200..2_000)
        }

        test("SIGKILL of a lone appender under Durability.None loses no acknowledged record").config(
            timeout = (20 + cycles * 15).seconds,
        ) {
            // A lone appender that needs no sync stores its records through the segment's mapping, on its own thread:
            // what it was told is in the page cache must survive the process.
            val seed3 = seed xor 0x2545F491L
            println("KillSpec (lone appender, Durability.None) seed=$seed3")
            killAtAckTargets(
                TestLogs.tempDir("kwal-kill-none"),
                seed3,
                cycles,
                2_000..20_000,
                childArgs = listOf("1", "none"),
            )
        }

        test("SIGKILL at random instants, during open and recovery too").config(timeout = (20 + cycles * 15).seconds) {
            val seed2 = seed xor 0x5DEECE66DL
            println("KillSpec (random instants) seed=$seed2")
            val rnd = Random(seed2)
            val log = KilledLog(TestLogs.tempDir("kwal-kill-any"), seed2)
            // Two cycles give the log something to recover first; then kills land anywhere from JVM start on.
            for (cycle in 1..cycles + 2) {
                val delay = if (cycle <= 2) -1L else rnd.nextLong(0, 1500)
                val what = if (delay < 0) "after 300 acks" else "after ${delay}ms"
                val acks = log.runChild(cycle, seed2 + cycle, what) { child ->
                    if (delay < 0) {
                        if (!child.awaitReady(30_000)) log.fail(cycle, "child did not print READY", child)
                        val got = child.awaitAcks(300, 20_000, stallMillis = STALL_MS)
                        if (got < 300 && child.process.isAlive) {
                            log.fail(cycle, "child stalled at $got of 300 acknowledgements", child)
                        }
                    } else {
                        Thread.sleep(delay)
                    }
                    if (!child.process.isAlive) log.fail(cycle, "child died before it was killed", child)
                }
                log.verify(cycle, acks)
            }
            log.finish()
        }
    }) {
    companion object {
        /** No acknowledgement for this long is a stalled child. */
        private const val STALL_MS = 10_000L

        /**
         * [cycles] times: start an [AppenderProcess] on [dir] (with [childArgs]), SIGKILL it once it has printed a
         * number of acknowledgements drawn from [targets], and check the reopened log against them.
         */
        private suspend fun killAtAckTargets(
            dir: java.nio.file.Path,
            seed: Long,
            cycles: Int,
            targets: IntRange,
            childArgs: List<String> = emptyList(),
        ) {
            val rnd = Random(seed)
            val log = KilledLog(dir, seed)
            for (cycle in 1..cycles) {
                val target = rnd.nextInt(targets.first, targets.last + 1)
                val acks = log.runChild(cycle, seed + cycle, "target $target acks", childArgs = childArgs) { child ->
                    if (!child.awaitReady(30_000)) log.fail(cycle, "child did not print READY", child)
                    // Liveness: a child that stalls after a few acknowledgements must not pass for one killed
                    // mid-run. A healthy child acknowledges all the time: STALL_MS without one is a stall, reported
                    // well inside the test's timeout.
                    val started = System.nanoTime()
                    val got = child.awaitAcks(target, 45_000, stallMillis = STALL_MS)
                    if (!child.process.isAlive) log.fail(cycle, "child died before it was killed", child)
                    if (got < target) {
                        val ms = (System.nanoTime() - started) / 1_000_000
                        log.fail(
                            cycle,
                            "child stalled at $got of $target acknowledgements, $ms ms " +
                                "after READY (a stall: no acknowledgement for $STALL_MS ms)",
                            child,
                        )
                    }
                }
                log.verify(cycle, acks)
            }
            log.finish()
        }
    }
}
