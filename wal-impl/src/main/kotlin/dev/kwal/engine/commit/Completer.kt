package dev.kwal.engine.commit

import dev.kwal.WalFailedException
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.storage.LogLifecycle
import dev.kwal.engine.storage.Segment
import dev.kwal.engine.storage.SegmentSet
import org.slf4j.LoggerFactory
import java.util.concurrent.CompletableFuture
import java.util.concurrent.CompletionException
import java.util.concurrent.atomic.AtomicInteger

/**
 * The end of group commit: syncs written groups when any of them asks for it, then, in order, publishes each
 * group's blocks to readers and tells its callers — or fails them all if the log has stopped.
 *
 * Three threads may finish groups: the [GroupAcknowledger] (on the sync thread, so the writer can write the next
 * group meanwhile); when nothing is in flight there, the [CommitLoop] itself (one thread hop less for a lone
 * appender); and an [InlineAppender]'s caller. They never do so at once, and groups finish in the order they were
 * written: the loop and an inline caller finish a group only under the writer's lock and while [inFlight] is 0, and
 * every change the acknowledger made is visible to them then.
 *
 * A failed sync stops the log for good (see [WalFailedException]): the kernel may have dropped the dirty pages it
 * could not write, so a retry that succeeds proves nothing. Every waiting caller gets the error.
 *
 * ### Sealed segments
 * A segment that a finished group sealed is never written again. It is synced and released in the background
 * ([SegmentSet.syncAndRelease]), whatever the durability: a log whose appends never ask for a sync must not keep a
 * descriptor and a dirty file per sealed segment. A later sync waits for those background syncs before it advances
 * [durableFrontier], which claims every byte before it durable. The cost is one task per sealed segment, not a walk
 * over them.
 */
internal class Completer(
    private val lifecycle: LogLifecycle,
    private val segments: SegmentSet,
    initialFrontier: LogPosition,
) {
    private val log = LoggerFactory.getLogger(Completer::class.java)

    /** Every byte before this position is durable. Advanced after each sync; read by the encoder for block headers. */
    @Volatile var durableFrontier: LogPosition = initialFrontier
        private set

    /**
     * Where the last completed group ended: every block before it is of a completed group, in its topic's index. Blocks
     * at or after it may belong to groups written and not completed yet — retention must not count their segments
     * free of live blocks (see `retention.Reclaimer`).
     */
    @Volatile var completedThrough: LogPosition = initialFrontier
        private set

    /** Segments written since the last sync and not handed to a background sync. */
    private val dirty = ArrayList<Segment>()

    /** Background syncs of sealed segments not yet known to be done, oldest first. */
    private val sealing = ArrayDeque<CompletableFuture<Void?>>()

    /** Resumes the callers of the groups [finish] completes, in bulk; flushed at the end of each [finish]. */
    private val resumer = Resumer()

    /** Groups handed to the acknowledger and not finished yet. */
    val inFlight = AtomicInteger()

    /** Finishes [group] alone, on this thread; returns null if it was completed, else the error it failed with. */
    fun finishAlone(group: Group): Throwable? {
        single.add(group)
        try {
            return if (finish(single)) null else lifecycle.unavailable()
        } finally {
            single.clear()
        }
    }

    private val single = ArrayList<Group>(1)

    /** Finishes [groups], written in this order; returns whether they were completed (else they were failed). */
    fun finish(groups: List<Group>): Boolean {
        var needsSync = false
        for (g in groups) {
            for (r in g.regions) if (dirty.lastOrNull() !== r.segment && r.segment !in dirty) dirty.add(r.segment)
            needsSync = needsSync || g.needsSync
        }
        if (needsSync && lifecycle.failure == null) {
            try {
                while (sealing.isNotEmpty()) sealing.first().join().also { sealing.removeFirst() }
                for (s in dirty) s.file.force()
                dirty.clear()
                // A barrier that wrote nothing (close's last group) has no end of its own: the frontier never
                // moves back.
                val end = groups.last().end
                if (end > durableFrontier) durableFrontier = end
            } catch (e: Throwable) {
                val cause = (e as? CompletionException)?.cause ?: e
                log.error("fsync failed; the log stops accepting appends", cause)
                lifecycle.stop(cause)
            }
        }
        val failed = lifecycle.failure != null
        try {
            for (g in groups) if (failed) fail(g) else complete(g)
            if (!failed) for (g in groups) for (s in g.sealed) syncInBackground(s)
            resumer.flush() // the last chunk of callers: the others were dispatched as they filled
        } catch (e: Throwable) {
            // A bug: stop the log rather than leave callers waiting.
            log.error("kwal failed while acknowledging", e)
            lifecycle.stop(e)
            resumer.discard() // its callers are failed below
            for (g in groups) runCatching { fail(g) }
            return false
        }
        return !failed
    }

    /**
     * Hands sealed segment [s] to a background sync and release. It leaves [dirty] now: nothing writes it again, and
     * the next sync waits for this one instead. A failed background sync stops the log.
     */
    private fun syncInBackground(s: Segment) {
        dirty.remove(s)
        while (sealing.isNotEmpty() && sealing.first().isDone && !sealing.first().isCompletedExceptionally) {
            sealing.removeFirst()
        }
        val sync = segments.syncAndRelease(s)
        sync.whenComplete { _, e ->
            if (e != null) {
                val cause = (e as? CompletionException)?.cause ?: e
                log.error("fsync of sealed {} failed; the log stops accepting appends", s, cause)
                lifecycle.stop(cause)
            }
        }
        sealing.addLast(sync)
    }

    private fun complete(g: Group) {
        for (i in 0 until g.blockCount()) {
            val topic = g.blockTopic(i)
            if (g.blockRelocated(i)) {
                // A copy of a block already acknowledged: readers go there from now on; nothing new to wake for.
                topic.index.move(g.blockFirstSeq(i), g.blockRecords(i), g.blockPosition(i), g.blockLength(i))
                continue
            }
            if (topic.id != 0) topic.index.add(g.blockFirstSeq(i), g.blockPosition(i), g.blockLength(i))
            topic.acked = g.blockFirstSeq(i) + g.blockRecords(i)
            topic.wake()
        }
        if (g.end > completedThrough) completedThrough = g.end
        g.completeWaiters(resumer)
    }

    private fun fail(g: Group) {
        // None of this group was acknowledged. Erase it, best effort, so that a reopen does not bring back
        // records whose callers were told they failed (unless the disk already had them and the erase is lost).
        runCatching { g.eraseRegions() }
        g.failWaiters(lifecycle.unavailable())
    }
}
