package dev.kwal.engine.recovery

import dev.kwal.engine.format.SegmentHeader
import dev.kwal.engine.io.FileIo
import dev.kwal.engine.io.LogFile
import dev.kwal.engine.storage.Segment
import dev.kwal.engine.storage.SegmentFiles

/**
 * Phase 6, **finish**: turns the probed segments recovery keeps into the [Segment]s the writer continues with —
 * sealed ones, the active one and spares — at [segmentSize], today's size. Files it opens go to [opened].
 */
internal class Handover(
    private val segmentSize: Int,
    private val io: FileIo,
    private val files: SegmentFiles,
    private val opened: MutableList<LogFile>,
) {
    /**
     * The empty segments after the active one of a log that needed no truncation ([trailing]: pre-built segments a
     * previous run never used), reopened as spares for the next rolls — the leading run of those at today's size:
     * a batch is checked against that size, and must fit the segment it rolls into. The others are deleted newest
     * first, each deletion made durable before the next, as truncation deletes: a crash between two deletions leaves
     * an unbroken run of segments, never a gap that would read as corruption.
     */
    fun spares(trailing: List<ProbedSegment>): List<Segment> {
        val keep = trailing.takeWhile { it.size == segmentSize }
        for (f in trailing.drop(keep.size).asReversed()) {
            io.delete(f.file.path)
            io.syncDirectory(files.directory)
        }
        return keep.map { Segment(it.id, it.size, it.reopen(files, opened), files.mappings) }
    }

    /**
     * The log's segments, from the [kept] probed ones: all but the last sealed, their files left closed (they are
     * mapped by path when read); the last active, its data ending at [tail]. [zeroed] is the active segment's file
     * if truncation reopened it. The active segment is extended with zeros if its file is shorter than its size, and
     * synced — unless it holds no data and is not of today's size (segmentSize changed between opens): then it is
     * replaced, atomically, by a fresh segment of today's size with the same id and [logId].
     */
    fun segments(kept: List<ProbedSegment>, tail: Int, zeroed: LogFile?, logId: Long): List<Segment> {
        val segments = ArrayList<Segment>(kept.size)
        for (f in kept.subList(0, kept.size - 1)) {
            segments.add(Segment.recoveredSealed(f.id, f.size, f.file, f.limit, files.mappings))
        }
        segments.add(active(kept.last(), tail, zeroed, logId))
        return segments
    }

    private fun active(last: ProbedSegment, tail: Int, zeroed: LogFile?, logId: Long): Segment {
        if (tail == SegmentHeader.SIZE && last.size != segmentSize) {
            // The writer must never roll past an empty segment — recovery reads "an empty segment, then data" as a
            // torn tail — yet a unit checked against today's size may not fit an older, smaller one. A crash during
            // the replacement leaves the old file or the new one, both empty.
            zeroed?.let {
                opened.remove(it)
                it.close()
            }
            return files.create(last.id, segmentSize, logId).also { opened.add(it.file) }
        }
        val file = zeroed ?: last.reopen(files, opened)
        if (file.size() < last.size) SegmentFiles.writeZeros(file, file.size(), last.size.toLong())
        file.force()
        return Segment(last.id, last.size, file, files.mappings)
    }
}
