package dev.kwal.engine.recovery

import dev.kwal.engine.format.LogPosition

/**
 * Where the scan stopped and why.
 *
 * [found] is the bad place itself, which an error names; [position] is P, where truncation must start: the same
 * place, or the first block of the group [found] lies in, since a group is kept whole or not at all.
 */
internal class Stop(
    val position: LogPosition,
    val reason: String,
    /** Whether the stop is corruption whatever the evidence says: a structural problem, or a bad registry name. */
    val corrupt: Boolean,
    val found: LogPosition = position,
)

/** How phase 3, **scan**, ended. The topic table it was given holds the groups it kept. */
internal sealed interface ScanResult {
    /** Where the data ends in each segment the scan read to its end, in id order (64: no data). */
    val dataEnds: List<Int>

    /** The user records of the groups kept (registry records name topics; they are not counted). */
    val records: Long

    /** Every segment is a sound continuation of the log, to its end. */
    class Clean(val logId: Long, override val dataEnds: List<Int>, override val records: Long) : ScanResult

    /** The scan stopped at [stop]; [dataEnds] covers the segments it had read to their end before. */
    class Stopped(
        val stop: Stop,
        /** The log id, read from the headers before the stop; null if the stop is at the first segment's header. */
        val logId: Long?,
        override val dataEnds: List<Int>,
        override val records: Long,
    ) : ScanResult
}
