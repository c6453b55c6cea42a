package dev.kwal.torture

import dev.kwal.CorruptionPolicy
import dev.kwal.Durability
import dev.kwal.crash.TortureOptions

/**
 * What one torture run observed. Runs add up with [plus]; the torture profile prints the sum as
 * `TORTURE kills=<n> cuts=<n> corruptions=<n> acked=<n> lost=0 corrupt_served=0 failed_reopens=0 wrong_verdicts=0
 * changed_by_refusal=0 late_syncs=0 truncations=<n> retentions=<n> segments_deleted=<n> blocks_copied=<n>
 * retention_cuts=<n> options=<n>`.
 *
 * @property kills processes killed with SIGKILL.
 * @property cuts simulated power cuts.
 * @property corruptions corrupted or hostile inputs opened.
 * @property acked acknowledged records checked after a kill or cut.
 * @property lost acknowledged records missing or different after recovery (must be 0).
 * @property corruptServed records served that fail their checks, or were never appended (must be 0).
 * @property failedReopens reopens that threw where recovery should have succeeded (under
 *   [CorruptionPolicy.TRUNCATE] every damaged log must open), or threw an exception other than a typed
 *   [dev.kwal.WalException], or opened a log that then failed a replay, an append or a clean second open (must be 0).
 * @property wrongVerdicts opens under [CorruptionPolicy.FAIL] that refused with the wrong exception, or with a
 *   [dev.kwal.WalCorruptedException] naming another file or offset than the bad place the rules define, or that
 *   disagree with the open under [CorruptionPolicy.TRUNCATE] about whether the log is corrupt (must be 0).
 * @property changedByRefusal refused opens that changed a file of the log directory (must be 0).
 * @property lateSyncs logs under [Durability.Interval] left idle with unsynced writes that their background sync did
 *   not make durable within the bound ([PowerCutTorture.intervalBound]) (must be 0).
 * @property truncations truncations acknowledged ([dev.kwal.Wal.truncateBefore], and retention's own).
 * @property retentions applications of retention that returned ([dev.kwal.Wal.applyRetention]).
 * @property segmentsDeleted segment files those applications deleted.
 * @property blocksCopied blocks those applications copied forward.
 * @property retentionCuts power cuts (or kills) while an application of retention was under way.
 * @property failures a description of each failure, with the seed that replays it and the options in force.
 * @property options the distinct options the run opened logs with.
 */
data class TortureResult(
    val kills: Long = 0,
    val cuts: Long = 0,
    val corruptions: Long = 0,
    val acked: Long = 0,
    val lost: Long = 0,
    val corruptServed: Long = 0,
    val failedReopens: Long = 0,
    val wrongVerdicts: Long = 0,
    val changedByRefusal: Long = 0,
    val lateSyncs: Long = 0,
    val truncations: Long = 0,
    val retentions: Long = 0,
    val segmentsDeleted: Long = 0,
    val blocksCopied: Long = 0,
    val retentionCuts: Long = 0,
    val failures: List<String> = emptyList(),
    val options: Set<TortureOptions> = emptySet(),
) {
    operator fun plus(o: TortureResult) = TortureResult(
        kills + o.kills, cuts + o.cuts, corruptions + o.corruptions, acked + o.acked, lost + o.lost,
        corruptServed + o.corruptServed, failedReopens + o.failedReopens, wrongVerdicts + o.wrongVerdicts,
        changedByRefusal + o.changedByRefusal, lateSyncs + o.lateSyncs, truncations + o.truncations,
        retentions + o.retentions, segmentsDeleted + o.segmentsDeleted, blocksCopied + o.blocksCopied,
        retentionCuts + o.retentionCuts, failures + o.failures, options + o.options,
    )

    val clean: Boolean
        get() = lost == 0L && corruptServed == 0L && failedReopens == 0L && wrongVerdicts == 0L &&
            changedByRefusal == 0L && lateSyncs == 0L

    fun summary(): String = "TORTURE kills=$kills cuts=$cuts corruptions=$corruptions acked=$acked lost=$lost " +
        "corrupt_served=$corruptServed failed_reopens=$failedReopens wrong_verdicts=$wrongVerdicts " +
        "changed_by_refusal=$changedByRefusal late_syncs=$lateSyncs " +
        "truncations=$truncations retentions=$retentions segments_deleted=$segmentsDeleted " +
        "blocks_copied=$blocksCopied retention_cuts=$retentionCuts options=${options.size}"

    /** The range of the options used: sizes from smallest to largest, how often each durability and policy. */
    fun optionsSummary(): String {
        if (options.isEmpty()) return "no options recorded"
        fun range(f: (TortureOptions) -> Long): String {
            val v = options.map(f)
            return "${TortureOptions.size(v.min())}..${TortureOptions.size(v.max())} (${v.distinct().size} sizes)"
        }
        val dur = options.groupingBy {
            when (it.durability) {
                Durability.Sync -> "Sync"
                Durability.None -> "None"
                is Durability.Interval -> "Interval"
            }
        }.eachCount().toSortedMap()
        val policy = options.groupingBy { it.policy }.eachCount()
        val groupsSpanSegments = options.count { it.maxGroupBytes > it.segmentSize }
        val tinyQueue = options.count { it.maxQueuedBytes < it.maxRecordSize }
        val minBlock = options.count { it.blockSize == 4096 }
        val compression = options.groupingBy { TortureOptions.compressionName(it.compression) }.eachCount()
        return "${options.size} distinct: segmentSize ${range { it.segmentSize.toLong() }}, " +
            "blockSize ${range { it.blockSize.toLong() }} ($minBlock at 4K), " +
            "maxRecordSize ${range { it.maxRecordSize.toLong() }}, " +
            "maxGroupBytes ${range { it.maxGroupBytes.toLong() }} ($groupsSpanSegments over a segment), " +
            "maxQueuedBytes ${range { it.maxQueuedBytes }} ($tinyQueue under a record); " +
            "durability $dur; policy FAIL=${policy[CorruptionPolicy.FAIL] ?: 0} " +
            "TRUNCATE=${policy[CorruptionPolicy.TRUNCATE] ?: 0}; " +
            "compression ${compression.toSortedMap()}; " +
            "retention on ${options.count { it.topicRetention.isNotEmpty() }}, " +
            "background ${options.count { it.retentionIntervalMillis > 0 }}, " +
            "overriding consumers ${options.count { it.retentionOverridesConsumers }}, " +
            "compaction ${options.groupingBy { it.compactionThreshold }.eachCount().toSortedMap()}"
    }
}
