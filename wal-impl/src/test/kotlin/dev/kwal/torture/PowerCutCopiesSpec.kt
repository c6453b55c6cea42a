package dev.kwal.torture

import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe

/**
 * The power-cut torture with retention copying live blocks forward, 600 cuts of the seeds (2 and 4) that found two
 * engine bugs — each a reopen that failed with "the log lacks records it must hold" or a corruption at a copied block:
 * a copy laid into the next segment, of today's smaller size, ran past its end (GroupEncoder.relocate checked the
 * active segment's size); and recovery ignored every copy at or above a truncated block still in place
 * (IndexAssembly). Both failed before their fixes (the cut instant depends on timing, so a seed does not replay
 * exactly; both seeds failed on each of two runs before, and passed after). Longer than the default slice: run it
 * with `-Dtorture.copies=true` —
 * `mvn -B -ntp -pl wal-impl -am verify -Dtest=PowerCutCopiesSpec -Dsurefire.failIfNoSpecifiedTests=false
 * -Dtorture.copies=true -Dtorture.seed=4`. The default suite's power-cut slice copies too.
 */
class PowerCutCopiesSpec :
    FunSpec({
        test("power cuts while retention copies blocks forward lose nothing")
            .config(enabled = System.getProperty("torture.copies") == "true") {
                val seed = System.getProperty("torture.seed")?.takeIf { it.isNotBlank() }?.toLong() ?: 4L
                val r = PowerCutTorture.run(600, seed) { println(it) }
                println("PowerCutCopiesSpec: ${r.summary()}")
                r.failures.take(5).forEach { System.err.println("failure:\n$it") }
                r.clean shouldBe true
            }
    })
