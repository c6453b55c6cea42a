package dev.kwal.torture

import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import java.nio.file.Files
import java.nio.file.Path
import kotlin.random.Random
import kotlin.time.Duration.Companion.minutes
import kotlin.time.Duration.Companion.seconds

/**
 * The crash-safety torture: real SIGKILLs ([KillTorture]), simulated power cuts ([PowerCutTorture]) and
 * corrupted or hostile files ([CorruptionTorture]).
 *
 * The default build runs a short slice. A long run is one command:
 * `mvn -B -ntp -Ptorture verify -Dtorture.cycles=1000 -Dtorture.cuts=10000 -Dtorture.corruptions=2000`.
 * System properties: `torture.cycles`, `torture.cuts`, `torture.corruptions`, `torture.firstCut` (the power cuts
 * start there: a multiple of 10, see [PowerCutTorture.run]), `torture.seed` (replays a run,
 * options included: each kill cycle, power cut and corruption case draws its log's options from the seed, see
 * [dev.kwal.crash.TortureOptions]). It ends with two lines, also written to `target/torture-summary.txt`:
 * `TORTURE kills=<n> cuts=<n> corruptions=<n> acked=<n> lost=0 corrupt_served=0 failed_reopens=0 wrong_verdicts=0
 * changed_by_refusal=0 late_syncs=0 options=<n> seed=<n>`
 * (`options` counts the distinct options logs were opened with), then `TORTURE options: ...`, their range.
 */
class TortureSpec :
    FunSpec({
        fun prop(name: String, default: Int) = System.getProperty(name)?.takeIf { it.isNotBlank() }?.toInt() ?: default
        val cycles = prop("torture.cycles", 5)
        val cuts = prop("torture.cuts", 100) // PowerCutSpec runs another 200 in the default build
        val corruptions = prop("torture.corruptions", 200)
        val firstCut = prop("torture.firstCut", 0) // replays the power cuts from there (a multiple of 10)
        val seed = System.getProperty("torture.seed")?.takeIf { it.isNotBlank() }?.toLong() ?: Random.nextLong()
        var total = TortureResult()

        fun report(name: String, r: TortureResult) {
            total += r
            println("$name: ${r.summary().removePrefix("TORTURE ")}")
            println("$name options: ${r.optionsSummary()}")
            r.failures.take(5).forEach { System.err.println("$name failure:\n$it") }
        }

        test("process kills: SIGKILL at random moments loses no acknowledged record")
            .config(timeout = (120 + cycles * 10L).seconds) {
                println(
                    "TortureSpec seed=$seed cycles=$cycles cuts=$cuts corruptions=$corruptions " +
                        "(replay with -Dtorture.seed=$seed)",
                )
                val r = KillTorture.run(cycles, seed)
                report("KillTorture", r)
                r.kills shouldBe cycles.toLong()
                withClue(r) {
                    r.clean shouldBe true
                    r.failures shouldBe emptyList()
                }
            }

        test("power cuts: a simulated page cache loses unsynced bytes; no acknowledged record is lost")
            .config(timeout = (60 + cuts / 5L).seconds) {
                val r = PowerCutTorture.run(cuts, seed, firstCut = firstCut) { println(it) }
                report("PowerCutTorture", r)
                r.cuts shouldBe cuts.toLong()
                withClue(r) {
                    r.clean shouldBe true
                    r.failures shouldBe emptyList()
                }
            }

        test(
            "corrupted and hostile files: TRUNCATE opens every one; " +
                "FAIL opens or names the bad place, changing nothing",
        )
            .config(timeout = (60 + corruptions / 2L).seconds) {
                val r = CorruptionTorture.run(corruptions, seed)
                report("CorruptionTorture", r)
                r.corruptions shouldBe corruptions.toLong()
                withClue(r) {
                    r.clean shouldBe true
                    r.failures shouldBe emptyList()
                }
            }

        afterSpec {
            val line = total.summary() + " seed=$seed\nTORTURE options: " + total.optionsSummary()
            runCatching {
                val target = Path.of(System.getProperty("torture.summary") ?: "target/torture-summary.txt")
                Files.createDirectories(target.toAbsolutePath().parent)
                Files.writeString(target, line + "\n")
            }
            System.out.flush()
            println(line)
        }
    }) {
    companion object {
        private fun withClue(r: TortureResult, block: () -> Unit) =
            io.kotest.assertions.withClue("${r.summary()}\n${r.failures.take(5).joinToString("\n")}") { block() }
    }
}
