package dev.kwal.soak

import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import java.nio.file.Files
import java.nio.file.Path
import kotlin.random.Random
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.minutes

/**
 * The soak: kwal under a steady load for a long time ([Soak]).
 *
 * First it measures durable throughput for 3 s (256 coroutines appending 100-1000 B under `Durability.Sync` to 16
 * topics), then it runs at 80% of that rate, paced, for the configured time: single appends and batches, Sync and
 * `Durability.None` (every fourth window of a long run only None), over 16 topics on 1 MiB segments (they roll
 * constantly); live followers on 4 topics that check each record is the next sequence and intact; a full replay of
 * a random topic every 5 s; and a close and reopen of the log every 30-60 s, under load. After each close the
 * closed log must hold no descriptor and, after a full GC, no mapping; after each reopen every topic must hold
 * every acknowledged sequence (sampled records are read back and compared) and nothing unacknowledged, and the
 * followers must have seen it all. At the end every acknowledged record is read back. Payloads verify themselves
 * ([dev.kwal.crash.CrashPayloads]); the model keeps a bit and a CRC per acknowledged record.
 *
 * Once a second it samples open descriptors and mappings (`/proc/self`, all and the log's own), and every 30 s the
 * heap after a forced full GC; it fails if any of them grows without bound, across the run or within one open
 * window (limits in [SoakConfig], printed with the results). When the log directory passes 2 GiB it is verified,
 * deleted and a fresh log started (with a fresh model), so the disk it takes stays bounded.
 *
 * The default build runs a 9 s slice (windows of 4-6 s: too short for the within-window growth checks, which it
 * skips). A long run is one command: `mvn -B -ntp -Psoak verify -Dsoak.minutes=30` (`-Dsoak.seed=<n>` fixes the
 * seed). It ends with one line, also written to `target/soak-summary.txt`:
 * `SOAK minutes=<m> appended=<n> acked=<n> lost=<n> heap_max_mb=<n> fds_max=<n> maps_max=<n> p99_ms=<x.xx>`
 * (p99 of Sync appends and batches, from the call to its acknowledgement, leaving out the few that overlapped a
 * forced GC).
 */
class SoakSpec :
    FunSpec({
        val minutesProperty = System.getProperty("soak.minutes")?.takeIf { it.isNotBlank() }?.toDouble()
        val slice = minutesProperty == null
        val minutes = minutesProperty ?: 0.15
        val seed = System.getProperty("soak.seed")?.takeIf { it.isNotBlank() }?.toLong() ?: Random.nextLong()
        val config = SoakConfig(minutes = minutes, slice = slice, seed = seed)

        test("a long run under steady load loses nothing acknowledged and holds its resources flat")
            .config(
                // Kotest also bounds each invocation (10 minutes by default): both must cover the run.
                timeout = (config.runMillis + 15.minutes.inWholeMilliseconds).milliseconds,
                invocationTimeout = (config.runMillis + 15.minutes.inWholeMilliseconds).milliseconds,
            ) {
                val result = Soak(config).run()
                val line = result.summary()
                runCatching {
                    val target = Path.of(System.getProperty("soak.summary") ?: "target/soak-summary.txt")
                    Files.createDirectories(target.toAbsolutePath().parent)
                    Files.writeString(target, line + "\n")
                }
                System.err.flush()
                println(line)
                System.out.flush()
                withClue(
                    "${result.failureCount} problems (seed $seed), the first:\n" +
                        result.failures.take(20).joinToString("\n"),
                ) {
                    result.lost shouldBe 0L
                    result.failureCount shouldBe 0L
                }
            }
    })
