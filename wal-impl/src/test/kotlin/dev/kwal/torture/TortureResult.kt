package dev.kwal.torture

/**
 * What one torture run observed. Runs add up with [plus]; the torture profile prints the sum as
 * `TORTURE kills=<n> cuts=<n> corruptions=<n> acked=<n> lost=0 corrupt_served=0 failed_reopens=0`.
 *
 * @property kills processes killed with SIGKILL.
 * @property cuts simulated power cuts.
 * @property corruptions corrupted or hostile inputs opened.
 * @property acked acknowledged records checked after a kill or cut.
 * @property lost acknowledged records missing or different after recovery (must be 0).
 * @property corruptServed records served that fail their checks, or were never appended (must be 0).
 * @property failedReopens reopens that threw where recovery should have succeeded, or threw an
 *   exception other than a typed [dev.kwal.WalException] (must be 0).
 * @property failures a description of each failure, with the seed that replays it.
 */
data class TortureResult(
    val kills: Long = 0,
    val cuts: Long = 0,
    val corruptions: Long = 0,
    val acked: Long = 0,
    val lost: Long = 0,
    val corruptServed: Long = 0,
    val failedReopens: Long = 0,
    val failures: List<String> = emptyList(),
) {
    operator fun plus(o: TortureResult) = TortureResult(
        kills + o.kills, cuts + o.cuts, corruptions + o.corruptions, acked + o.acked, lost + o.lost,
        corruptServed + o.corruptServed, failedReopens + o.failedReopens, failures + o.failures,
    )

    val clean: Boolean get() = lost == 0L && corruptServed == 0L && failedReopens == 0L

    fun summary(): String =
        "TORTURE kills=$kills cuts=$cuts corruptions=$corruptions acked=$acked lost=$lost corrupt_served=$corruptServed failed_reopens=$failedReopens"
}
