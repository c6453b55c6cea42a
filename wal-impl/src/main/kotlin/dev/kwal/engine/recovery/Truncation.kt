package dev.kwal.engine.recovery

import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.format.SegmentHeader
import dev.kwal.engine.io.FileIo
import dev.kwal.engine.io.LogFile
import dev.kwal.engine.storage.SegmentFiles

/** What truncation left. */
internal class Truncated(
    /** How many segments are left (P's included if kept); 0 if none. */
    val kept: Int,
    /** Whether P's segment is kept: P lies past its header. */
    val keptStopSegment: Boolean,
    /** The nonzero bytes discarded: from P in P's segment, past the header in a deleted one. */
    val bytes: Long,
    /** P's segment, reopened to zero its bytes from P and synced; null if it had none to zero or was deleted. */
    val zeroed: LogFile?,
)

/**
 * Phase 5, **truncate**: removes everything from P on, so that the log ends just before P.
 *
 * Deletes every segment after P's, newest first, each deletion made durable (directory synced) before the next —
 * so a cut at any moment leaves an unbroken run of segments, never a gap that would read as corruption. Then, if
 * P lies past the header of its segment, overwrites that segment's bytes from P to its last nonzero byte with
 * zeros and syncs it; otherwise deletes it too, the same way. Files it reopens go to [opened].
 */
internal class Truncation(
    private val io: FileIo,
    private val files: SegmentFiles,
    private val opened: MutableList<LogFile>,
) {
    /** Truncates at [p] the log of [segments], the probed files in order, the first at segment [base]'s place. */
    fun truncate(p: LogPosition, segments: List<ProbedSegment>, base: Int): Truncated {
        val keepStopSegment = p.offset >= SegmentHeader.SIZE
        val stop = p.segmentId - base // P's index: the scan stops at the first id out of sequence
        var bytes = 0L
        var zeroed: LogFile? = null
        for (i in segments.size - 1 downTo stop) {
            val segment = segments[i]
            if (i == stop && keepStopSegment) {
                val last = segment.read { BlockHeader.lastNonZero(it, p.offset, segment.limit) }
                if (last >= 0) {
                    bytes += last + 1 - p.offset
                    zeroed = zero(segment, p.offset, last + 1)
                }
            } else {
                bytes += delete(segment)
            }
        }
        return Truncated(if (keepStopSegment) stop + 1 else stop, keepStopSegment, bytes, zeroed)
    }

    /** Overwrites [from, until) of [segment] with zeros and syncs it; returns its file, reopened. */
    private fun zero(segment: ProbedSegment, from: Int, until: Int): LogFile {
        val file = segment.reopen(files, opened)
        SegmentFiles.writeZeros(file, from.toLong(), until.toLong())
        file.force()
        return file
    }

    /** Deletes [segment] durably; returns the nonzero bytes it held past its header. */
    private fun delete(segment: ProbedSegment): Long {
        val last = segment.read { BlockHeader.lastNonZero(it, SegmentHeader.SIZE, segment.limit) }
        io.delete(segment.file.path)
        io.syncDirectory(files.directory)
        return maxOf(0, last + 1 - SegmentHeader.SIZE).toLong()
    }
}
