package dev.kwal.engine.recovery

import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.format.SegmentHeader
import dev.kwal.engine.format.SegmentSummary
import dev.kwal.engine.storage.SummaryStore
import dev.kwal.engine.storage.TopicTable

/**
 * The fast way through a log at open: the [SegmentSummary]s of its segments, read in order from the first, instead of
 * the segments — as long as they chain (each one's `from` is the previous one's `to`; the first starts at the first
 * segment's first block, or in a segment retention deleted), belong to the log, and are sound. Recovery then scans
 * only from the last one's `to`: the groups after it (see [Recovery]).
 *
 * [apply] adds what the summaries say to the table, with the checks the scan makes of blocks (a registered topic,
 * sequences that continue it densely, names that repeat the manifest's); a summary that fails them is a [Mismatch],
 * and the open starts again with a full scan.
 */
internal class SummaryChain(private val store: SummaryStore, private val start: ScanStart) {
    /** Summaries that disagree with the log as the chain built it so far. */
    class Mismatch(what: String) : Exception(what)

    /**
     * The longest chain of sound summaries of [ids] (the segment ids from the first, in order), of those [present] (the
     * ids with a summary file, and its size); [sizes] are the segment files' sizes.
     */
    fun load(ids: List<Int>, present: Map<Int, Long>, sizes: (Int) -> Long?): List<SegmentSummary> {
        val out = ArrayList<SegmentSummary>()
        var logId = start.manifest?.logId
        var prevTo = LogPosition(start.firstSegment, SegmentHeader.SIZE)
        for (id in ids) {
            if (id != (out.lastOrNull()?.segmentId?.plus(1) ?: start.firstSegment)) break // a segment is missing
            val summarySize = present[id] ?: break
            val s = store.read(id, summarySize) ?: break
            if (s.segmentId != id || (logId != null && s.logId != logId)) break
            val first = out.isEmpty()
            val chained = s.from == prevTo || (first && s.from.segmentId < start.firstSegment)
            if (!chained || s.to < s.from) break
            if (s.to.segmentId != id && s.to != s.from) break // it ends in its segment, or covers nothing
            if (s.to.segmentId < start.firstSegment) break // nothing of it is left: the log starts after it
            val fileSize = sizes(id) ?: break
            if (fileSize < s.to.offset.toLong() && s.to.segmentId == id) break
            logId = s.logId
            prevTo = s.to
            out.add(s)
        }
        return out
    }

    /**
     * Applies [chain] to [table]; returns the relocated blocks it names (for [IndexAssembly]), in log order. Throws
     * [Mismatch] if a summary disagrees with the table.
     */
    fun apply(chain: List<SegmentSummary>, table: TopicTable): List<Block> {
        val relocated = ArrayList<Block>()
        for (s in chain) {
            applyNames(s, table)
            for (r in s.runs) {
                if (r.position.segmentId < start.firstSegment) continue // a group begun in a deleted segment
                val topic = table.byId(r.topicId) ?: throw Mismatch("run of unknown topic ${r.topicId}")
                val expected = topic.reserved
                if (r.firstSeq != expected && !(start.relaxed(r.topicId) && r.firstSeq in 0..expected)) {
                    throw Mismatch("$topic continues at ${r.firstSeq}, expected $expected")
                }
                start.seen(r.topicId)
                topic.index.addRun(r.firstSeq, r.position, r.blocks, r.bytes)
                topic.reserved = r.firstSeq + r.records
                topic.acked = topic.reserved
            }
            for (r in s.relocated) {
                if (r.position.segmentId < start.firstSegment) continue
                if (table.byId(r.topicId) == null) throw Mismatch("copy of unknown topic ${r.topicId}")
                val end = r.position.offset + r.length
                relocated.add(Block(r.position, r.topicId, r.firstSeq, r.count, end, false, null, r.length, true))
            }
        }
        return relocated
    }

    private fun applyNames(s: SegmentSummary, table: TopicTable) {
        for ((i, name) in s.names.withIndex()) {
            val id = s.firstName + i + 1
            when {
                id == table.count + 1L -> runCatching {
                    table.add(name)
                }.getOrElse { throw Mismatch("name $name: $it") }

                id <= table.count -> if (table.byId(id.toInt())?.name != name) throw Mismatch("topic $id is not $name")

                else -> throw Mismatch("registry skips to $id")
            }
        }
        if (s.names.isNotEmpty()) {
            // The scan would not see a registry block of a deleted segment: its names are the manifest's.
            if (s.namesAt.segmentId >= start.firstSegment) start.seen(0)
            // As the scan does: the registry goes on from its last block, even below the manifest's count.
            table.registry.reserved = s.firstName + s.names.size
            table.registry.acked = table.registry.reserved
        }
    }
}
