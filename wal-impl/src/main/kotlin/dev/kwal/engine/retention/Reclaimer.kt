package dev.kwal.engine.retention

import dev.kwal.RetentionReport
import dev.kwal.WalOptions
import dev.kwal.engine.commit.RelocatedBlock
import dev.kwal.engine.format.ControlRecord
import dev.kwal.engine.format.Manifest
import dev.kwal.engine.storage.ControlState
import dev.kwal.engine.storage.ManifestStore
import dev.kwal.engine.storage.SegmentSet
import dev.kwal.engine.storage.TopicTable
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock

/**
 * Retention, one application at a time ([apply]): truncates topics as their retention says ([RetentionPlanner]),
 * copies the live blocks of the oldest segments forward when they hold little that is live ([LiveBlocks]), then
 * makes the log start later: a manifest naming the first segment that holds a live block, then the segments before
 * it deleted.
 *
 * The order makes every step crash-safe:
 * 1. truncations are control records, acknowledged like appends;
 * 2. copies are written through group commit as relocated blocks; the index points at them once they are
 *    acknowledged, and the originals stay until step 5;
 * 3. the state the manifest will hold is taken — each topic's first and next sequence, the consumer positions and the
 *    control sequence they stand for — and the first segment with a live block;
 * 4. a sync makes all of that durable: everything acknowledged before step 3;
 * 5. the manifest is replaced (atomically, durably), and only then the segments before its first one are deleted,
 *    oldest first, the directory synced. A crash before the manifest leaves the old one, with every segment; after
 *    it, recovery deletes what is left below the new first segment.
 */
internal class Reclaimer(
    private val options: WalOptions,
    private val table: TopicTable,
    private val segments: SegmentSet,
    private val control: ControlState,
    private val manifests: ManifestStore,
    private val logId: Long,
    private val planner: RetentionPlanner,
    private val log: Log,
    /**
     * The segment of the end of the last completed group ([dev.kwal.engine.commit.Completer.completedThrough]):
     * retention looks only at segments before it, which hold no block of a group written and not completed yet — its
     * records are not in the index, and would be deleted as if dead.
     */
    private val completedSegment: () -> Int,
) {
    /** What retention needs of the log: to write through its group commit, like any caller. */
    interface Log {
        suspend fun truncate(topic: String, sequence: Long)

        /** Copies [blocks] forward; returns how many were copied and their bytes. */
        suspend fun relocate(blocks: List<RelocatedBlock>): Pair<Int, Long>

        suspend fun sync()
    }

    private val mutex = Mutex()

    /** Applies retention; see the class comment. */
    suspend fun apply(): RetentionReport = mutex.withLock {
        // 1. truncate
        val truncated = LinkedHashMap<String, Long>()
        var records = 0L
        for ((topic, sequence) in planner.plan()) {
            val before = topic.first
            log.truncate(topic.name, sequence)
            truncated[topic.name] = sequence
            records += sequence - before
        }
        // 2. copy forward
        var blocksCopied = 0
        var bytesCopied = 0L
        val threshold = options.compactionThreshold
        val controlTopic = table[ControlRecord.TOPIC]
        if (threshold > 0) {
            val first = segments.first
            val active = windowEnd(first)
            val live = LiveBlocks(table, first, active, control.appliedThrough, planner.reader())
            val upTo = compactable(live, first, active, threshold)
            if (upTo > first) {
                for (chunk in chunks(live.blocksBelow(upTo))) {
                    val (n, bytes) = log.relocate(chunk)
                    blocksCopied += n
                    bytesCopied += bytes
                }
            }
        }
        // 3. the state to keep
        val (controlFirst, consumers) = control.snapshot()
        val registered = table.registry.acked.toInt()
        val topics = (1..registered).map { id ->
            val t = table.byId(id)!!
            val first = if (t === controlTopic) controlFirst else t.first
            Manifest.TopicState(t.name, first, t.acked)
        }
        val from = segments.first
        // The first segment with a live block, looked for in a window: a later application goes on from there.
        val start = LiveBlocks(table, from, windowEnd(from), controlFirst, planner.reader()).firstLive()
        // 4. durable
        log.sync()
        // 5. a later start, then deletion
        var deleted = 0
        var reclaimed = 0L
        if (start > from) {
            manifests.write(Manifest(logId, start, topics, consumers))
            controlTopic?.raiseFirst(controlFirst)
            val sizes = (from until start).map { segments[it]?.size?.toLong() ?: 0L }
            deleted = segments.deleteBelow(start)
            reclaimed = sizes.take(deleted).sum()
        }
        // The index entries of truncated blocks go too: the heap does not grow with the log's history.
        for (id in 1..table.count) {
            val t = table.byId(id) ?: continue
            t.index.dropBelow(t.first)
        }
        RetentionReport(truncated, records, deleted, reclaimed, blocksCopied, bytesCopied)
    }

    /** The end (exclusive) of the segments an application looks at, from [first]: see [completedSegment], [WINDOW]. */
    private fun windowEnd(first: Int): Int = minOf(completedSegment(), first + WINDOW)

    /**
     * The segment before which the oldest segments are worth compacting: the furthest one, up to the active, such that
     * the live bytes before it are at most [threshold] of those segments' bytes, and at most [MAX_COPY] bytes.
     */
    private fun compactable(live: LiveBlocks, first: Int, active: Int, threshold: Double): Int {
        var best = first
        var liveBytes = 0L
        var size = 0L
        for (id in first until active) {
            liveBytes += live.bytes[id - first]
            size += segments[id]?.size ?: break
            if (liveBytes > MAX_COPY) break
            if (liveBytes <= threshold * size) best = id + 1
        }
        return best
    }

    /** [blocks] in requests of at most [CHUNK] bytes each (a block larger than that alone). */
    private fun chunks(blocks: List<RelocatedBlock>): List<List<RelocatedBlock>> {
        val out = ArrayList<List<RelocatedBlock>>()
        var current = ArrayList<RelocatedBlock>()
        var bytes = 0L
        for (b in blocks) {
            if (current.isNotEmpty() && bytes + b.length > CHUNK) {
                out.add(current)
                current = ArrayList()
                bytes = 0
            }
            current.add(b)
            bytes += b.length
        }
        if (current.isNotEmpty()) out.add(current)
        return out
    }

    private companion object {
        /** The most bytes one application copies forward. */
        const val MAX_COPY = 256L shl 20

        /** The oldest segments one application looks at: what it costs grows with their blocks, not the log's. */
        const val WINDOW = 64

        /** The most bytes of copies one request asks the writer for: a group's worth. */
        const val CHUNK = 4L shl 20
    }
}
