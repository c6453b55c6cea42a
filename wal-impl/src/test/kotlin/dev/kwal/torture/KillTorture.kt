package dev.kwal.torture

import dev.kwal.crash.ChildJvm
import dev.kwal.crash.FacadeLoad
import dev.kwal.crash.KilledLog
import dev.kwal.crash.TortureOptions
import kotlinx.coroutines.runBlocking
import java.nio.file.Files
import kotlin.random.Random

/**
 * Process-kill torture on real processes. Each cycle starts an [dev.kwal.crash.AppenderProcess] child JVM
 * (1 to 32 coroutines, five topics, singles and batches, sizes relative to the block; in most cycles also the Java
 * facade: dependent appends in callbacks and a thread pipelining appends, see [dev.kwal.crash.FacadeLoad]) on a
 * directory, with options drawn for the cycle ([TortureOptions.random]: segment, block, record, group and queue
 * sizes, durability — under None or Interval too a kill loses nothing acknowledged: the page cache survives the
 * process — and corruption policy). It SIGKILLs the child at a random moment — sometimes while the JVM starts or
 * the child's own recovery runs, sometimes right after it opened, mostly after a random number of acks or a
 * random time of appending — then reopens the directory in this JVM, with options drawn again (sizes changed,
 * bigger or smaller, or the same), and checks it with [KilledLog.check]: recovery found no corruption (under
 * TRUNCATE it would have dropped it silently); every acknowledged (or earlier recovered) record present with its
 * payload at its sequence; sequences dense; every record intact and written by this directory's writers; batches
 * whole; the log takes appends. In most cycles the child also truncates topics, commits a consumer's positions and
 * applies retention under the drawn options (see [dev.kwal.crash.AppenderProcess]), announcing each before the call
 * and acknowledging it after: each topic is then checked from its first sequence, which must be at least every
 * truncation acknowledged (a kill loses none, whatever the durability) and at most what was issued or what the
 * child's retention allows; consumer positions at least their last acknowledged commit. The next cycle runs on the
 * same directory under other options again, so recovery runs on a log written under many shapes and recovered
 * many times before; every [cyclesPerDirectory] cycles, once the log holds [maxDataBytes], or after a failure, a
 * fresh directory starts.
 *
 * Seeded: cycle c of `run(n, seed)` takes its kill plan and payloads from `Random(seed + c)`, its options from
 * [optionsSeed]; the kill instant itself depends on timing. A failing cycle names the run seed, the cycle and
 * both options.
 */
object KillTorture {
    var cyclesPerDirectory = 50
    var maxDataBytes = 48L shl 20

    /** The seed of cycle [cycle]'s options. */
    fun optionsSeed(seed: Long, cycle: Int): Long = (seed + cycle) * -7046029254386353131L + 0x5851F42D4C957F2DL

    fun run(cycles: Int, seed: Long): TortureResult {
        var result = TortureResult()
        if (cycles <= 0) return result
        val started = System.nanoTime()
        var current: KilledLog? = null
        var logCycles = 0
        var previous: TortureOptions? = null
        var pipelined = 0L
        var facadeCycles = 0
        for (cycle in 1..cycles) {
            if (current == null || logCycles >= cyclesPerDirectory || current.dataBytes > maxDataBytes) {
                current?.let { it.dir.toFile().deleteRecursively() }
                current = KilledLog(
                    Files.createTempDirectory("kwal-torture-kill"),
                    seed,
                    "KillTorture seed=$seed (replay: -Dtorture.seed=$seed)",
                )
                logCycles = 0
            }
            logCycles++
            val log: KilledLog = current
            val rnd = Random(seed + cycle)
            val plan = rnd.nextInt(100)
            val optRandom = Random(optionsSeed(seed, cycle))
            // Mostly small segments (rolls); the default 64 MiB now and then; records up to 256 KiB.
            val childOptions = TortureOptions.next(optRandom, previous, maxSegment = 4 shl 20, hugeChance = 0.03)
            val reopenOptions = TortureOptions.next(optRandom, childOptions, maxSegment = 4 shl 20, hugeChance = 0.03)
            previous = reopenOptions
            val writers = WRITERS[optRandom.nextInt(WRITERS.size)]
            val facade = optRandom.nextInt(10) < 7
            // Drawn apart from the options' generator, so that a seed's other draws stay as they were.
            val retention = Random(optionsSeed(seed, cycle) xor 0x3C6EF372FE94F82BL).nextInt(10) < 8
            val setup = "child options: $childOptions, writers=$writers${if (facade) " + Java facade" else ""}" +
                "${if (retention) " + retention" else ""}; " +
                "reopened with: $reopenOptions"
            result += TortureResult(options = setOf(childOptions, reopenOptions))
            val childArgs =
                listOf(
                    writers.toString(),
                    "mixed",
                    childOptions.encode(),
                    if (facade) "facade" else "plain",
                    if (retention) "retention" else "-",
                )
            val outcome = runCatching {
                val acks = log.runChild(
                    cycle,
                    seed * 7919 + cycle,
                    "plan $plan",
                    quiet = true,
                    childArgs = childArgs,
                ) { child ->
                    when {
                        // during JVM start or the child's recovery
                        plan < 10 -> Thread.sleep(rnd.nextLong(0, 500))

                        plan < 20 -> {
                            awaitReady(log, cycle, child)
                            Thread.sleep(rnd.nextLong(0, 20))
                        }

                        plan < 60 -> {
                            awaitReady(log, cycle, child)
                            child.awaitAcks(rnd.nextInt(1, 1500), 15_000)
                        }

                        else -> {
                            awaitReady(log, cycle, child)
                            Thread.sleep(rnd.nextLong(0, 400))
                        }
                    }
                    if (!child.process.isAlive) log.fail(cycle, "child died before it was killed", child)
                }
                if (facade) facadeCycles++
                pipelined += acks.count { it.topic == FacadeLoad.PIPE }
                val before =
                    listOf(log.truncations, log.retentions, log.segmentsDeleted, log.blocksCopied, log.retentionKills)
                val check = runBlocking {
                    // No retention in the background while the check reads what the child left.
                    log.check(
                        cycle,
                        acks,
                        options = reopenOptions.copy(retentionIntervalMillis = 0).of(log.dir),
                        childOptions = childOptions,
                    )
                }
                result += TortureResult(
                    truncations = log.truncations - before[0],
                    retentions = log.retentions - before[1],
                    segmentsDeleted = log.segmentsDeleted - before[2],
                    blocksCopied = log.blocksCopied - before[3],
                    retentionCuts = log.retentionKills - before[4],
                )
                check
            }
            val c = outcome.getOrElse { e ->
                // The child misbehaved: it could not open the log (its recovery failed), printed a bad line, hung.
                KilledLog.Check().apply {
                    failedReopen = true
                    problems.add(e.message ?: e.toString())
                }
            }
            if (!c.clean || c.problems.isNotEmpty()) c.problems.add(setup)
            result += TortureResult(
                kills = 1,
                acked = c.acked,
                lost = c.lost,
                corruptServed = c.corruptServed,
                failedReopens = if (c.failedReopen) 1 else 0,
                failures = if (c.clean && c.problems.isEmpty()) emptyList() else listOf(c.problems.joinToString("\n")),
            )
            if (!c.clean || c.problems.isNotEmpty()) {
                System.err.println(
                    "KillTorture FAILED ${log.where(cycle)} (directory kept for inspection):\n" +
                        c.problems.joinToString("\n"),
                )
                current = null // keep the evidence; go on in a fresh directory
            }
            if (cycle % 50 == 0) {
                println(
                    "KillTorture: $cycle/$cycles cycles, ${"%.2f".format(elapsed(started) / cycle)} s/cycle, " +
                        result.summary().removePrefix("TORTURE "),
                )
            }
        }
        current?.dir?.toFile()?.deleteRecursively()
        println(
            "KillTorture seed=$seed: $cycles cycles in ${"%.1f".format(elapsed(started))} s " +
                "(${"%.2f".format(elapsed(started) / cycles)} s/cycle); $facadeCycles with the Java facade, " +
                "$pipelined pipelined appends acknowledged; " +
                "child classpath from ${ChildJvm.classpathSource().substringBefore(' ')}",
        )
        return result
    }

    private val WRITERS = intArrayOf(1, 2, 4, 8, 32, 32, 32)

    private fun awaitReady(log: KilledLog, cycle: Int, child: ChildJvm) {
        if (!child.awaitReady(30_000)) {
            log.fail(cycle, "child did not print READY (its open or recovery failed or hung)", child)
        }
    }

    private fun elapsed(started: Long) = (System.nanoTime() - started) / 1e9
}
