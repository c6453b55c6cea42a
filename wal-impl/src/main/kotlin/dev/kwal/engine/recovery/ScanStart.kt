package dev.kwal.engine.recovery

import dev.kwal.engine.format.Manifest
import dev.kwal.engine.storage.TopicTable

/**
 * Where the scan starts, and what it knows there: nothing for a log that never deleted a segment (segment 1, an empty
 * table); for one that did, what its [Manifest] says — the first segment, the topics registered before it (with each
 * one's first and next sequence), put in the table by [seed].
 *
 * The scan then checks blocks of those topics a little less strictly, until each topic's first block: its first
 * sequence may be anything up to the topic's next one (blocks below the topic's first sequence stay in segments that
 * also hold live blocks), and a registry block may repeat names the manifest holds, as long as they are the same.
 * What the log must hold is checked once the scan is done ([IndexAssembly]).
 */
internal class ScanStart(
    /** The first segment id. */
    val firstSegment: Int,
    /** The manifest, if any. */
    val manifest: Manifest?,
) {
    /** How many topics the manifest registered: ids 1..[knownTopics]. */
    val knownTopics: Int = manifest?.topics?.size ?: 0

    /** Topics (ids) whose first block the scan has not committed yet. */
    private val waiting = HashSet<Int>()

    /** Whether [topicId]'s first block (registry: 0) is still to come, and may start below the topic's next. */
    fun relaxed(topicId: Int): Boolean = topicId in waiting

    /** Notes that [topicId]'s first block was committed. */
    fun seen(topicId: Int) {
        waiting.remove(topicId)
    }

    /** Registers the manifest's topics in [table], each at its first and next sequence. */
    fun seed(table: TopicTable) {
        val m = manifest ?: return
        for (t in m.topics) {
            val topic = table.add(t.name)
            topic.reserved = t.next
            topic.acked = t.next
            topic.raiseFirst(t.first)
            waiting.add(topic.id)
        }
        table.registry.reserved = m.topics.size.toLong()
        table.registry.acked = table.registry.reserved
        waiting.add(0)
    }

    companion object {
        val NONE = ScanStart(1, null)
    }
}
