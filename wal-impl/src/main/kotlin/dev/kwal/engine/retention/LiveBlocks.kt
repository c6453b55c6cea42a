package dev.kwal.engine.retention

import dev.kwal.engine.commit.RelocatedBlock
import dev.kwal.engine.replay.TopicReader
import dev.kwal.engine.storage.BlockRef
import dev.kwal.engine.storage.Topic
import dev.kwal.engine.storage.TopicTable

/**
 * The live blocks of a log — each block of a topic holding a record at or after the topic's first sequence, the
 * control topic's from [controlFirst] on — counted per segment, for segments [first, until).
 *
 * Counting costs each topic's copies and its index samples up to the first at or past [until] (see
 * `storage.BlockIndex`): memory only, so a window of old segments costs what their samples do. A run of blocks in place
 * counts whole, its blocks before the first live one included: they lie in the segment of the live one. Listing the
 * blocks to copy ([blocksBelow]) walks the segments being emptied, through [reader].
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
    private val reader: TopicReader,
) {
    /** Live bytes in segment `first + i`. */
    val bytes = LongArray(maxOf(0, until - first))

    init {
        for (t in liveTopics()) {
            t.index.forEachLive(from(t), t.acked, until) { segment, length ->
                if (segment in first until until) bytes[segment - first] += length
            }
        }
    }

    /** The first segment from [first] on holding a live block; [until] if none. */
    fun firstLive(): Int = bytes.indexOfFirst { it > 0 }.let { if (it < 0) until else first + it }

    /** The live blocks in segments [first, below), to copy forward, each topic's in sequence order. */
    fun blocksBelow(below: Int): List<RelocatedBlock> {
        val out = ArrayList<RelocatedBlock>()
        for (t in liveTopics()) {
            val from = from(t)
            val end = t.acked
            t.index.forEachCopy(from) { firstSeq, _, position, length ->
                if (position.segmentId in first until below) out.add(RelocatedBlock(t, firstSeq, position, length))
            }
            val ref = BlockRef()
            try {
                if (!t.index.locate(from, reader, ref)) continue
                while (true) {
                    // Copies (listed above) and blocks in place may interleave: a block too large to copy stays.
                    if (!ref.isCopy) {
                        val segment = ref.position.segmentId
                        if (segment >= below) break // blocks in place lie in log order: the rest are later still
                        if (segment >= first) out.add(RelocatedBlock(t, ref.firstSeq, ref.position, ref.length))
                    }
                    if (ref.endSeq >= end) break
                    t.index.advance(ref, reader)
                }
            } finally {
                reader.release()
            }
        }
        return out
    }

    private fun from(t: Topic): Long = if (t.internal) maxOf(controlFirst, t.first) else t.first

    private fun liveTopics(): List<Topic> = (1..table.count).mapNotNull { id ->
        table.byId(id)?.takeIf { from(it) < it.acked }
    }
}
