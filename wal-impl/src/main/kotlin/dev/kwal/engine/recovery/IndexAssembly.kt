package dev.kwal.engine.recovery

import dev.kwal.engine.storage.Topic
import dev.kwal.engine.storage.TopicTable

/**
 * The last step of the scan: each topic's block index from the blocks the scan kept — those in place (already added,
 * a dense run) and the relocated copies, wherever in the log they lie — and the check that the topic's records are
 * all there.
 *
 * A relocated copy stands for its block unless that block is still where it was written (retention copied it, then
 * stopped before deleting the original): then the copy is ignored. Of several copies of one block, the newest in log
 * order is used. Then a topic's blocks must run densely from at or
 * below its first sequence to its next, which the manifest's next sequence must not exceed (it was durable when the
 * manifest was written). Blocks that lie wholly below the first sequence are left out: those records were truncated.
 *
 * Under `CorruptionPolicy.TRUNCATE` a topic that fails the check keeps only the run of records after its last gap,
 * its first sequence raised past the gap, and its next sequence at least the manifest's (sequences are never reused).
 */
internal class IndexAssembly(private val table: TopicTable, private val start: ScanStart) {
    /** What is wrong, per topic, found by [assemble]: empty if the log holds every record it must. */
    val problems = ArrayList<String>()

    /** Builds the index of every topic that needs it; records problems, and repairs them if [repair]. */
    fun assemble(relocated: List<Block>, repair: Boolean) {
        val byTopic = relocated.groupBy { it.topicId }
        for (id in 1..table.count) {
            val manifestNext = start.manifest?.topics?.getOrNull(id - 1)?.next
            val copies = byTopic[id]
            if (manifestNext == null && copies == null) continue
            assemble(table.byId(id)!!, copies.orEmpty(), manifestNext, repair)
        }
    }

    private class Entry(val firstSeq: Long, val end: Long, val block: Block?)

    private fun assemble(topic: Topic, copies: List<Block>, manifestNext: Long?, repair: Boolean) {
        val index = topic.index
        // The scan added the blocks in place, which run densely from the first (see ScanStart) to the topic's next.
        val inFirst = index.firstInPlace()
        val inPlace = inFirst?.let { Entry(it, topic.reserved, null) }
        // A copy stands for its block unless the block is still in place (retention copied it, then stopped before
        // deleting the original). Not "below the first block in place" only: that one may be a truncated block kept
        // in a segment that also holds live ones, older than blocks whose originals are gone.
        val newest = LinkedHashMap<Long, Block>()
        for (c in copies) {
            if (inFirst == null || c.firstSeq !in inFirst until topic.reserved) newest[c.firstSeq] = c // later win
        }
        val moved = newest.values.map { Entry(it.firstSeq, it.firstSeq + it.count, it) }
        var entries = (moved + listOfNotNull(inPlace)).sortedBy { it.firstSeq }.filter { it.end > topic.first }
        var next = if (inPlace != null) topic.reserved else maxOf(topic.reserved, moved.lastOrNull()?.end ?: 0L)
        val problem = problem(topic, entries, next, manifestNext)
        if (problem != null) {
            problems.add("$topic: $problem")
            if (!repair) return
            // Keep the run that ends at the topic's end and has no gap; sequences are never given out again.
            if (manifestNext != null && next < manifestNext) next = manifestNext
            if (entries.isNotEmpty() && entries.last().end != next) entries = emptyList()
            val gap = (1 until entries.size).lastOrNull { entries[it - 1].end != entries[it].firstSeq }
            if (gap != null) entries = entries.subList(gap, entries.size)
            topic.raiseFirst(entries.firstOrNull()?.firstSeq ?: next)
        }
        if (entries.none { it.block == null }) index.clearInPlace()
        for (e in entries) e.block?.let { index.move(it.firstSeq, it.count, it.position, it.length) }
        if (inPlace != null && inFirst < topic.first) index.dropBelow(topic.first)
        topic.reserved = next
        topic.acked = next
    }

    /** What is missing of [topic]'s records, or null if [entries] hold them all. */
    private fun problem(topic: Topic, entries: List<Entry>, next: Long, manifestNext: Long?): String? {
        if (manifestNext != null && next < manifestNext) return "records $next..${manifestNext - 1} are missing"
        if (topic.first < next && (entries.isEmpty() || entries.first().firstSeq > topic.first)) {
            val until = entries.firstOrNull()?.firstSeq ?: next
            return "records ${topic.first}..${until - 1} are missing"
        }
        for (i in 1 until entries.size) {
            if (entries[i - 1].end != entries[i].firstSeq) {
                return "records ${entries[i - 1].end}..${entries[i].firstSeq - 1} are missing"
            }
        }
        val end = entries.lastOrNull()?.end ?: return null
        return if (end != next) "records $end..${next - 1} are missing" else null
    }
}
