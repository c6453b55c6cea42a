package dev.kwal.engine.retention

import dev.kwal.engine.commit.RelocatedBlock
import dev.kwal.engine.storage.Topic
import dev.kwal.engine.storage.TopicTable

/**
 * The live blocks of a log — each block of a topic holding a record at or after the topic's first sequence, the
 * control topic's from [controlFirst] on — counted per segment, for segments [first, until).
 *
 * Cost: each topic's copies, then its blocks in place up to the first at or past [until] — so a window of old
 * segments costs what its blocks do, not what the whole log's do.
 *
 * The registry's blocks are never live (the manifest holds the names), nor are the blocks of the control topic below
 * [controlFirst] (the manifest holds what they said). Reads acknowledged state only; the index may move under it (a
 * copy acknowledged meanwhile), which at worst counts a block where it was.
 */
internal class LiveBlocks(
    private val table: TopicTable,
    private val first: Int,
    private val until: Int,
    private val controlFirst: Long,
) {
    /** Live bytes in segment `first + i`. */
    val bytes = LongArray(maxOf(0, until - first))

    init {
        forEach { _, _, i, length -> bytes[i] += length.toLong() }
    }

    /** The first segment from [first] on holding a live block; [until] if none. */
    fun firstLive(): Int = bytes.indexOfFirst { it > 0 }.let { if (it < 0) until else first + it }

    /** The live blocks in segments [first, below), to copy forward. */
    fun blocksBelow(below: Int): List<RelocatedBlock> {
        val out = ArrayList<RelocatedBlock>()
        forEach(below) { t, i, _, length ->
            out.add(RelocatedBlock(t, t.index.firstSeq(i), t.index.position(i), length))
        }
        return out
    }

    /**
     * Calls [action] with each live block in segments [first, below): its topic, index entry, segment (as an index
     * from [first]) and length.
     */
    private inline fun forEach(
        below: Int = until,
        action: (topic: Topic, entry: Int, segment: Int, length: Int) -> Unit,
    ) {
        for (id in 1..table.count) {
            val t = table.byId(id) ?: continue
            val from = if (t.internal) maxOf(controlFirst, t.first) else t.first
            val end = t.acked
            if (from >= end) continue
            val index = t.index
            val n = index.size
            if (n == 0) continue
            var i = index.find(from, n)
            while (i < n && index.firstSeq(i) < end) {
                val segment = index.position(i).segmentId
                if (segment in first until below) {
                    action(t, i, segment - first, index.length(i))
                } else if (segment >= below && !index.isCopy(i)) {
                    break // blocks in place lie in log order: the rest are later still
                }
                i++
            }
        }
    }
}
