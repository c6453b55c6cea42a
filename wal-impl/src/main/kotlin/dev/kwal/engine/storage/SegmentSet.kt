package dev.kwal.engine.storage

import java.util.concurrent.CompletableFuture
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.Executor

/**
 * The segments of one open log, and the one owner of their lifecycle (see [Segment] for the states): rolls, undoing
 * them, release once durable, and closing them all. Nothing else changes a segment's [Segment.state].
 *
 * It keeps the log's segments by id (for readers), the active one, the spares — empty segments built ahead, used in
 * order by the next rolls — and the next spare being built in the background, so that a roll seldom waits for a file
 * to be created.
 *
 * Thread-safety: [get] from any thread. [active], [roll] and [rollBackTo] belong to the writer (the writer coroutine,
 * or an inline caller holding the writer's lock: one thread at a time). [syncAndRelease] from the thread that
 * finishes groups. [close] once, after the writer has stopped.
 */
internal class SegmentSet(
    private val files: SegmentFiles,
    /** The size of the segments it makes: today's [dev.kwal.WalOptions.segmentSize], every spare's too. */
    val segmentSize: Int,
    private val logId: Long,
    /** The segments recovery kept, in order: all but the last sealed and released, the last the active one. */
    recovered: List<Segment>,
    spares: List<Segment>,
    /** Where spares are built and sealed segments synced. */
    private val background: Executor,
) {
    private val byId = ConcurrentHashMap<Int, Segment>()
    private val spares = ArrayDeque(spares)
    private var preparing: CompletableFuture<Segment>? = null

    /** The segment being written. Writer only. */
    @Volatile var active: Segment = recovered.last()
        private set

    /** The active segment's id, from any thread (retention's): it only grows but for an undone roll. */
    val activeId: Int get() = active.id

    /**
     * Where the writer's data ends in the active segment, as of its last group: set by the writer, read by the spare
     * being built to pace itself ([pace]).
     */
    @Volatile var activeTail: Int = 0

    init {
        for (s in recovered) {
            check(s === active || s.state == SegmentState.RELEASED) { "recovered $s is ${s.state}" }
            byId[s.id] = s
        }
        active.state = SegmentState.ACTIVE
    }

    /** Builds segment [id] in the background, as the next spare. */
    private fun prepare(id: Int) {
        hurry = false
        preparing = CompletableFuture.supplyAsync({ files.create(id, segmentSize, logId, ::pace) }, background)
    }

    /**
     * Waits, before the spare's next slice of zeros, while the spare is ahead of the active segment: it may be built
     * to at most twice the active segment's fill plus a tenth, so it is done by the time the active one is about half
     * full, and its writes and syncs are spread over that time instead of crowding the log's own syncs in a burst
     * right after the roll. A log filling fast builds it at full speed, and so does a roll that has to wait for it.
     */
    private fun pace(built: Double) {
        while (true) {
            // Closing: give up the spare (its temporary file is deleted) rather than hold close up.
            if (closed) throw java.io.InterruptedIOException("the log is closing")
            if (hurry) return
            val fill = activeTail.toDouble() / active.size
            if (built <= minOf(1.0, 2 * fill + 0.1)) return
            Thread.sleep(PACE_MILLIS)
        }
    }

    /** The segment [id] of the log (sealed, released or active), or null if the log has none such (any more). */
    operator fun get(id: Int): Segment? = byId[id]

    /** The oldest segment's id: retention deletes segments from the oldest on ([deleteBelow]). */
    @Volatile var first: Int = recovered.first().id
        private set

    /**
     * Deletes the segments below [id] — each released (sealed and durable; the active one never), oldest first, up to
     * the first that is not — and then syncs the directory once; returns how many it deleted. A segment leaves
     * [get] before its file goes: readers that borrow its mapping read on (the mapping outlives the file's name), and
     * its idle mapping is unmapped. Retention's (one thread); the manifest must already say the log starts at [id].
     */
    @Synchronized
    fun deleteBelow(id: Int): Int {
        var deleted = 0
        try {
            while (first < id && !closed) {
                val s = byId[first] ?: break
                if (s.state != SegmentState.RELEASED) break
                byId.remove(s.id)
                s.state = SegmentState.DELETED
                files.mappings.retire(listOf(s))
                files.delete(s.id)
                deleted++
                first = s.id + 1
            }
        } finally {
            if (deleted > 0) files.syncDirectory()
        }
        return deleted
    }

    /**
     * Seals the active segment and makes the next one active: a spare, the one being built (waiting for it), or a new
     * one. Returns the segment sealed. If no next segment can be had (the disk is full), throws and changes nothing.
     */
    fun roll(): Segment {
        val next = nextSegment()
        val sealed = active
        sealed.state = SegmentState.SEALED
        next.state = SegmentState.ACTIVE
        byId[next.id] = next
        active = next
        if (spares.isEmpty() && preparing == null) prepare(next.id + 1)
        return sealed
    }

    /**
     * Undoes the rolls made since [segment] was active: it is active again, and the segments after it are spares
     * again, in order, for the next rolls.
     */
    fun rollBackTo(segment: Segment) {
        for (id in active.id downTo segment.id + 1) {
            byId.remove(id)?.let {
                it.state = SegmentState.SPARE
                spares.addFirst(it)
            }
        }
        segment.state = SegmentState.ACTIVE
        active = segment
    }

    /** The spare, or the one being built (waiting for it, blocking), or a new one. */
    private fun nextSegment(): Segment {
        val id = active.id + 1
        spares.removeFirstOrNull()?.let {
            check(it.id == id) { "spare ${it.id} is not segment $id" }
            return it
        }
        preparing?.let { p ->
            preparing = null
            hurry = true // the roll waits for it: no more pacing

            val s = runCatching { p.get() }.getOrNull()
            if (s != null && s.id == id) return s
            s?.file?.close()
        }
        return files.create(id, segmentSize, logId)
    }

    /**
     * Syncs sealed segment [s] and then releases it (closes its file: nothing writes a sealed segment, and readers map
     * it by path), on the background executor. The future fails if the sync does; [s] then stays sealed.
     */
    fun syncAndRelease(s: Segment): CompletableFuture<Void?> {
        check(s.state == SegmentState.SEALED) { "$s is ${s.state}, not sealed" }
        val sync = CompletableFuture.runAsync({
            s.file.force()
            s.release()
            onReleased?.invoke(s)
        }, background)
        releasing.add(sync)
        sync.whenComplete { _, _ -> releasing.remove(sync) }
        return sync
    }

    /** Called with each segment [syncAndRelease] made durable and released (the summary builder listens). */
    @Volatile var onReleased: ((Segment) -> Unit)? = null

    /** Set when a roll waits for the spare being built: it is then built at full speed. */
    @Volatile private var hurry = false

    /** Set by [close]: nothing is deleted after, and a spare being built stops waiting. */
    @Volatile private var closed = false

    /** Background syncs under way, which [close] waits for: it must not close a file under one. */
    private val releasing: MutableSet<CompletableFuture<Void?>> = ConcurrentHashMap.newKeySet()

    /**
     * Closes every file the log holds — its segments', the spares' and the one being built — and retires every mapping
     * (see [MappingCache.retire]): readers still inside the log keep what they borrow and map by path what they reach
     * next. Once, after the writer has stopped (closing a file also unmaps the mapping inline appends store through).
     */
    fun close() {
        closed = true
        closeFiles()
    }

    @Synchronized
    private fun closeFiles() {
        for (sync in ArrayList(releasing)) runCatching { sync.join() } // a copy by toArray: the set changes meanwhile
        for (s in byId.values) runCatching { s.closeFile() }
        for (s in spares) runCatching { s.file.close() }
        preparing?.let { p -> runCatching { p.join().file.close() } } // uninterruptible: close keeps the interrupt
        files.mappings.retire(byId.values)
    }

    private companion object {
        /** How long a paced spare waits before it looks at the active segment again. */
        const val PACE_MILLIS = 20L
    }
}
