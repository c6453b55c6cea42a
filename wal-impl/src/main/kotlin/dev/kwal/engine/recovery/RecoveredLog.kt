package dev.kwal.engine.recovery

import dev.kwal.RecoveryReport
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.format.SegmentHeader
import dev.kwal.engine.storage.Segment
import dev.kwal.engine.storage.TopicTable
import dev.kwal.engine.summary.SummaryResume

/** The state recovery hands to the engine: a consistent log, ready for the writer to continue. */
internal class RecoveredLog(
    val logId: Long,
    /** Segments holding data, in order; the last is the active one. Never empty. */
    val segments: List<Segment>,
    /** Pre-written empty segments after the active one, in order. */
    val spares: List<Segment>,
    /** Offset in the active segment where the next group goes. */
    val tail: Int,
    val table: TopicTable,
    val report: RecoveryReport,
    /** The newest block timestamp of the groups kept; [Long.MIN_VALUE] if none. The writer never stamps earlier. */
    val newestTimestamp: Long = Long.MIN_VALUE,
    /** Consumer positions the manifest holds (control records before the control topic's first sequence). */
    val consumers: Map<String, Map<String, Long>> = emptyMap(),
    /** Where the summary builder goes on. */
    val summaryResume: SummaryResume = SummaryResume(LogPosition(1, SegmentHeader.SIZE), null),
)
