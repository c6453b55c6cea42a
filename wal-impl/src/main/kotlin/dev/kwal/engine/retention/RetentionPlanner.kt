package dev.kwal.engine.retention

import dev.kwal.WalOptions
import dev.kwal.engine.replay.TopicReader
import dev.kwal.engine.storage.BlockRef
import dev.kwal.engine.storage.ControlState
import dev.kwal.engine.storage.LogLifecycle
import dev.kwal.engine.storage.SegmentSet
import dev.kwal.engine.storage.Topic
import dev.kwal.engine.storage.TopicTable

/**
 * Step 1 of retention: where each user topic's first sequence should be, by its [dev.kwal.Retention]
 * ([WalOptions.retentionOf]) — the latest of what each limit allows — held back to the lowest position a consumer has
 * committed in the topic, unless [WalOptions.retentionOverridesConsumers].
 *
 * - records: the newest `maxRecords` records stay;
 * - age: records from the first whose block is stamped at or after now − `maxAge` stay (a binary search over the
 *   topic's blocks, as [dev.kwal.Wal.seek]);
 * - bytes: the newest blocks whose bytes, headers included, total at most `maxBytes` stay (whole blocks, from the
 *   index's running byte counts and a walk of one run).
 *
 * Reads only acknowledged state; changes nothing.
 */
internal class RetentionPlanner(
    private val options: WalOptions,
    private val table: TopicTable,
    private val control: ControlState,
    private val segments: SegmentSet,
    private val lifecycle: LogLifecycle,
    private val clock: () -> Long,
) {
    /** Each user topic whose first sequence retention would raise, and to where. */
    fun plan(): List<Pair<Topic, Long>> {
        val pinned = if (options.retentionOverridesConsumers) emptyMap() else lowestPositions()
        val out = ArrayList<Pair<Topic, Long>>()
        for (id in 1..table.count) {
            val t = table.byId(id) ?: continue
            if (t.internal) continue
            val retention = options.retentionOf(t.name)
            if (retention.keepsAll) continue
            val end = t.acked
            var cut = t.first
            retention.maxRecords?.let { cut = maxOf(cut, end - it) }
            retention.maxAge?.let { age ->
                val since = clock() - age.toMillis()
                cut = maxOf(cut, TopicReader(segments, lifecycle).seek(t, since, end))
            }
            retention.maxBytes?.let { cut = maxOf(cut, byBytes(t, it, end)) }
            pinned[t.name]?.let { cut = minOf(cut, it) }
            cut = minOf(cut, end)
            if (cut > t.first) out.add(t to cut)
        }
        return out
    }

    /** The first sequence of the newest blocks of [t] below [end] whose bytes total at most [max]. */
    private fun byBytes(t: Topic, max: Long, end: Long): Long {
        val reader = reader()
        try {
            return t.index.firstKeeping(max, maxOf(t.first, 0), end, reader, BlockRef())
        } finally {
            reader.release()
        }
    }

    /** A reader for retention's walks of the index (see `storage.BlockIndex`); [TopicReader.release] it after. */
    fun reader(): TopicReader = TopicReader(segments, lifecycle)

    /** Topic → the lowest position any consumer has committed in it. */
    private fun lowestPositions(): Map<String, Long> {
        val out = HashMap<String, Long>()
        for (consumer in control.consumers()) {
            for ((topic, position) in control.positionsOf(consumer)) {
                out.merge(topic, position, ::minOf)
            }
        }
        return out
    }
}
