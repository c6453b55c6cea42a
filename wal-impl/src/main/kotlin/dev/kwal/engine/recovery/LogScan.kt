package dev.kwal.engine.recovery

import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.format.SegmentHeader
import dev.kwal.engine.storage.SegmentFiles
import dev.kwal.engine.storage.TopicTable
import java.nio.ByteBuffer

/**
 * Phase 3, **scan**: reads the probed segments in id order, and the blocks of each from offset 64, and rebuilds
 * [table] — the topic registry, each topic's block index and next sequence — from every group it keeps.
 *
 * It stops at the first position P that is not a sound continuation of the log:
 * - a *structural* problem, always corruption: a missing segment id, a bad segment header, a header naming another
 *   segment, another log or an out-of-range size;
 * - a *content* problem, which may be a torn tail: a block that fails a check ([BlockChecker]; a registry block
 *   with invalid names is corruption), nonzero bytes where a block should start after a segment's data ended, an
 *   empty segment followed by a segment with any nonzero byte after its header (P = offset 64 of the empty one),
 *   or a group still pending at the end of the log.
 *
 * Inside a pending group, P moves back to the group's first block; the [Stop] still names the bad place itself.
 * Each segment is mapped once, and unmapped before the next is. One scan per instance.
 */
internal class LogScan(private val table: TopicTable, private val start: ScanStart = ScanStart.NONE) {
    private val group = PendingGroup(table, start)
    private val checker = BlockChecker(table, group, start)

    /** The relocated blocks of the groups kept, in log order. */
    val relocated: List<Block> get() = group.relocated
    private var records = 0L

    /** The newest timestamp of the groups kept so far; [Long.MIN_VALUE] if none. */
    var newestTimestamp = Long.MIN_VALUE
        private set

    /** How the scan of one segment ended. */
    private sealed interface SegmentScan {
        /** Its data ends at [end]; every byte after is zero. A group may still be pending, to go on in the next. */
        class Ended(val end: Int) : SegmentScan

        class Stopped(val stop: Stop) : SegmentScan
    }

    /**
     * Scans [segments], the probed segment files in id order from [firstId] (the [ScanStart]'s first, unless segment
     * summaries covered those before), the first from [firstOffset] (a group boundary: where the summaries end); there
     * is at least one. [knownLogId] is the log's id, if the summaries or the manifest said it.
     */
    fun scan(
        segments: List<ProbedSegment>,
        firstId: Int = start.firstSegment,
        firstOffset: Int = SegmentHeader.SIZE,
        knownLogId: Long? = start.manifest?.logId,
    ): ScanResult {
        var logId: Long? = knownLogId
        val dataEnds = ArrayList<Int>()
        var firstEmpty: Int? = null // the first segment with no data, while no later one has data
        fun stopped(stop: Stop) = ScanResult.Stopped(stop, logId, dataEnds, records)

        for ((index, segment) in segments.withIndex()) {
            val id = index + firstId
            val header = when (val h = checkHeader(id, segment, logId)) {
                is SegmentHeader.Result.Bad -> return stopped(stopAt(LogPosition(id, 0), h.reason, corrupt = true))
                is SegmentHeader.Result.Ok -> h.header
            }
            logId = header.logId
            val from = if (index == 0) firstOffset else SegmentHeader.SIZE
            when (val scanned = scanSegment(id, segment, firstEmpty, from)) {
                is SegmentScan.Stopped -> return stopped(scanned.stop)

                is SegmentScan.Ended -> {
                    dataEnds.add(scanned.end)
                    if (scanned.end == SegmentHeader.SIZE && firstEmpty == null) firstEmpty = id
                }
            }
        }
        // A group still open at the end of the last segment never got its last block: a torn tail.
        if (!group.isEmpty()) {
            return stopped(stopAt(group.start, "group cut off at the end of the log", corrupt = false))
        }
        return ScanResult.Clean(logId!!, dataEnds, records)
    }

    /**
     * The header of [segment], the [id]th file, if it is sound and continues the log [logId] (null before the first
     * segment); otherwise the structural problem.
     */
    private fun checkHeader(id: Int, segment: ProbedSegment, logId: Long?): SegmentHeader.Result {
        if (segment.id != id) return SegmentHeader.Result.Bad("segment file ${SegmentFiles.nameOf(id)} is missing")
        val header = when (val h = segment.header) {
            is SegmentHeader.Result.Bad -> return h
            is SegmentHeader.Result.Ok -> h.header
        }
        val problem = when {
            header.segmentId != id -> "header names segment ${header.segmentId}"
            logId != null && header.logId != logId -> "segment belongs to another log"
            header.segmentSize != segment.size -> "segment size ${header.segmentSize} out of range"
            else -> return segment.header
        }
        return SegmentHeader.Result.Bad(problem)
    }

    /**
     * Scans segment [id]. After an empty segment [firstEmpty], any byte of data is a stop, not only a block header
     * where one would start: a power cut may have lost the first sector of a segment the writer had rolled into and
     * kept later ones.
     */
    private fun scanSegment(id: Int, segment: ProbedSegment, firstEmpty: Int?, from: Int): SegmentScan =
        segment.read { map ->
            if (firstEmpty != null && !BlockHeader.allZero(map, SegmentHeader.SIZE, segment.limit)) {
                val reason = "segment $firstEmpty is empty but a later one has data"
                SegmentScan.Stopped(stopAt(LogPosition(firstEmpty, SegmentHeader.SIZE), reason, corrupt = false))
            } else {
                scanBlocks(id, map.duplicate(), segment.limit, segment.size, from)
            }
        }

    /** Checks the blocks of segment [id] in [view] up to [limit] into the group, committed whenever it is complete. */
    private fun scanBlocks(id: Int, view: ByteBuffer, limit: Int, size: Int, from: Int): SegmentScan {
        var at = from
        // The data ends at a block header's worth of zeros, or where no block header fits.
        while (at + BlockHeader.SIZE <= limit && !BlockHeader.isZero(view, at)) {
            val position = LogPosition(id, at)
            val block = when (val check = checker.check(view, at, limit, position, size)) {
                is BlockCheck.Bad -> return SegmentScan.Stopped(stopAt(position, check.reason, check.corrupt))
                is BlockCheck.Ok -> check.block
            }
            group.add(block)
            if (!block.continued) {
                records += group.commit()
                // Every block of a group carries the group's timestamp.
                newestTimestamp = maxOf(newestTimestamp, view.getLong(at + BlockHeader.OFF_TIMESTAMP))
            }
            at = block.end
        }
        if (!BlockHeader.allZero(view, at, limit)) {
            val reason = "unreadable bytes where a block should start"
            return SegmentScan.Stopped(stopAt(LogPosition(id, at), reason, corrupt = false))
        }
        return SegmentScan.Ended(at)
    }

    /** A stop at [position]; inside a group, truncation must start at the group's first block. */
    private fun stopAt(position: LogPosition, reason: String, corrupt: Boolean): Stop = if (group.isEmpty()) {
        Stop(position, reason, corrupt)
    } else {
        Stop(group.start, "$reason (inside the group at ${group.start})", corrupt, found = position)
    }
}
