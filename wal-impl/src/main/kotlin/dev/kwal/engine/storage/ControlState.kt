package dev.kwal.engine.storage

import dev.kwal.engine.format.ControlRecord

/**
 * The state control records build ([ControlRecord]): each topic's first readable sequence ([Topic.first]) and each
 * consumer's positions. Rebuilt at open by applying the control topic's records in sequence order, and kept up to
 * date by applying each new one once it is acknowledged.
 *
 * Concurrent calls may apply their records in another order than the log holds them; every change therefore carries
 * its record's sequence in the control topic ([order]), and a change older than what is applied for the same key is
 * ignored: the state is always the one the log's order gives. Truncations need no order: a first sequence only rises.
 *
 * Thread-safety: every member is safe from any thread.
 */
internal class ControlState(private val table: TopicTable) {
    private class Position(var position: Long, var order: Long)

    /** Consumer → topic → position. Guarded by this. */
    private val positions = HashMap<String, HashMap<String, Position>>()

    /** Consumer → the order of the newest deletion of it. Guarded by this. */
    private val deleted = HashMap<String, Long>()

    /** The control topic's records below this are applied (or were folded into [seed]'s positions). */
    @Volatile var appliedThrough: Long = 0
        private set

    /**
     * Starts from [consumers]' positions, which the manifest holds for the control records below [through] (the
     * control topic's first sequence): they count as older than any record from [through] on.
     */
    @Synchronized
    fun seed(consumers: Map<String, Map<String, Long>>, through: Long) {
        for ((consumer, byTopic) in consumers) {
            val mine = positions.getOrPut(consumer) { HashMap() }
            for ((topic, position) in byTopic) mine[topic] = Position(position, -1)
        }
        appliedThrough = maxOf(appliedThrough, through)
    }

    /**
     * The control topic's sequence up to which the state is applied, and the consumer positions then: what a
     * manifest holds. The engine applies control records in log order ([dev.kwal.engine.commit.AppendRequest.onAcked]),
     * so the two agree.
     */
    @Synchronized
    fun snapshot(): Pair<Long, Map<String, Map<String, Long>>> =
        appliedThrough to positions.mapValues { (_, byTopic) -> byTopic.mapValues { it.value.position } }

    /** Applies [record], the control topic's record at sequence [order]. */
    fun apply(record: ControlRecord, order: Long) {
        synchronized(this) { if (order >= appliedThrough) appliedThrough = order + 1 }
        when (record) {
            is ControlRecord.Truncate -> table[record.topic]?.raiseFirst(record.firstSequence)
            is ControlRecord.Commit -> commit(record.consumer, record.topic, record.position, order)
            is ControlRecord.DeleteConsumer -> delete(record.consumer, order)
        }
    }

    @Synchronized
    private fun commit(consumer: String, topic: String, position: Long, order: Long) {
        if ((deleted[consumer] ?: -1) > order) return
        val byTopic = positions.getOrPut(consumer) { HashMap() }
        val p = byTopic[topic]
        if (p == null) {
            byTopic[topic] = Position(position, order)
        } else if (p.order < order) {
            p.position = position
            p.order = order
        }
    }

    @Synchronized
    private fun delete(consumer: String, order: Long) {
        if ((deleted[consumer] ?: -1) > order) return
        deleted[consumer] = order
        val byTopic = positions[consumer] ?: return
        byTopic.values.removeIf { it.order < order }
        if (byTopic.isEmpty()) positions.remove(consumer)
    }

    /** [consumer]'s position in [topic], or null if it has committed none there (or was deleted since). */
    @Synchronized
    fun committed(consumer: String, topic: String): Long? = positions[consumer]?.get(topic)?.position

    /** The consumers with at least one position. */
    @Synchronized
    fun consumers(): Set<String> = positions.keys.toSet()

    /** Each topic [consumer] has a position in, and that position. */
    @Synchronized
    fun positionsOf(consumer: String): Map<String, Long> =
        positions[consumer]?.mapValues { it.value.position }.orEmpty()
}
