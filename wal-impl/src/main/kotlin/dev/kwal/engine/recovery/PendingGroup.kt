package dev.kwal.engine.recovery

import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.storage.TopicTable

/**
 * The group the scan is reading: its blocks so far, every one checked, none applied yet.
 *
 * A group is every block up to and including one without the CONTINUED flag (see `FORMAT.md`), and may run from
 * the end of one segment into the next. It is kept whole or not at all: only when its last block has been checked
 * does [commit] apply it to [table] — names registered, each topic's block index and next sequence updated. A
 * group still pending when the scan stops is dropped with everything after it.
 */
internal class PendingGroup(private val table: TopicTable, private val scanStart: ScanStart = ScanStart.NONE) {
    /** The relocated blocks of the groups committed so far, in log order: [IndexAssembly] places them. */
    val relocated = ArrayList<Block>()

    private val blocks = ArrayList<Block>()

    /** The next sequence of each topic with a block in the group. */
    private val next = HashMap<Int, Long>()

    /** The names its registry blocks register. */
    private val names = HashSet<String>()

    fun isEmpty(): Boolean = blocks.isEmpty()

    /** Where its first block lies: where truncation must start if the group is dropped. It must not be empty. */
    val start: LogPosition get() = blocks[0].position

    /** The sequence [topicId]'s next block in the group must start at, or null if it has no block in it yet. */
    fun nextSequence(topicId: Int): Long? = next[topicId]

    /** How many topics its registry blocks name: they get the ids after the [table]'s. */
    var namedTopics = 0
        private set

    /** Whether a registry block of the group registers [name]. */
    fun registers(name: String): Boolean = name in names

    /** Adds [block], which passed every check against the table and the group so far. */
    fun add(block: Block) {
        blocks.add(block)
        if (block.relocated) return
        next[block.topicId] = block.firstSeq + block.count
        if (block.topicId == 0) {
            // Ids past the table's (a registry block may repeat names a manifest registered).
            namedTopics = maxOf(namedTopics, (block.firstSeq + block.count - table.count).toInt())
            names.addAll(block.names!!)
        }
    }

    /** Applies the group to the table and empties it; returns its user records. */
    fun commit(): Long {
        var records = 0L
        for (b in blocks) {
            if (b.relocated) {
                relocated.add(b)
                continue
            }
            scanStart.seen(b.topicId)
            if (b.topicId == 0) {
                // Names the manifest registered already were checked to be the same.
                for ((i, name) in b.names!!.withIndex()) if (b.firstSeq + i + 1 > table.count) table.add(name)
                table.registry.reserved = b.firstSeq + b.count
                table.registry.acked = b.firstSeq + b.count
            } else {
                val topic = table.byId(b.topicId)!!
                topic.index.add(b.firstSeq, b.position, b.length)
                topic.reserved = b.firstSeq + b.count
                topic.acked = topic.reserved
                records += b.count // registry records name topics; they are not user records
            }
        }
        blocks.clear()
        next.clear()
        namedTopics = 0
        names.clear()
        return records
    }
}
