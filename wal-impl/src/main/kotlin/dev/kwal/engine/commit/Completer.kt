package dev.kwal.engine.commit

import dev.kwal.WalFailedException
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.storage.Segment
import org.slf4j.LoggerFactory
import java.util.concurrent.CompletableFuture
import java.util.concurrent.Executor
import java.util.concurrent.atomic.AtomicInteger

/**
 * The end of group commit: syncs written groups when any of them asks for it, then, in order, publishes each
 * group's blocks to readers and resumes its callers — or fails them all if the log has stopped.
 *
 * Two threads finish groups: the [GroupAcknowledger] (on the sync thread, so the writer can write the next
 * group meanwhile) and, when nothing is in flight there, the [GroupWriter] itself (one thread hop less for a
 * lone appender), or an inline caller holding the writer's lock. They never do so at once: the writer finishes a
 * group only while [inFlight] is 0, and every change the acknowledger made is visible to it then. So groups finish
 * in the order they were written.
 *
 * A failed sync stops the log for good (see [WalFailedException]): the kernel may have dropped the dirty pages it
 * could not write, so a retry that succeeds proves nothing. Every waiting caller gets the error.
 *
 * ### Sealed segments
 * A segment that a finished group sealed is never written again. It is synced and its file closed in the
 * background, on [background] ([Segment.release]: readers map it by path), whatever the durability: a log whose
 * appends never ask for a sync must not keep a descriptor and a dirty file per sealed segment. A later sync waits
 * for those background syncs before it advances [LogState.durableFrontier], which claims every byte before it
 * durable. The cost is one task per sealed segment, not a walk over them.
 */
internal class Completer(
    private val state: LogState,
    private val queue: RequestQueue,
    private val background: Executor,
) {
    private val log = LoggerFactory.getLogger(Completer::class.java)

    /** Segments written since the last sync and not handed to a background sync. */
    private val dirty = ArrayList<Segment>()

    /** Background syncs of sealed segments not yet known to be done, oldest first. */
    private val sealing = ArrayDeque<CompletableFuture<Void?>>()

    /** Groups handed to the acknowledger and not finished yet. */
    val inFlight = AtomicInteger()

    fun finish(groups: List<Group>) {
        var needsSync = false
        for (g in groups) {
            for (r in g.regions) if (dirty.lastOrNull() !== r.segment && r.segment !in dirty) dirty.add(r.segment)
            needsSync = needsSync || g.needsSync
        }
        if (needsSync && state.failure == null) {
            try {
                while (sealing.isNotEmpty()) sealing.first().join().also { sealing.removeFirst() }
                for (s in dirty) s.file.force()
                dirty.clear()
                // A barrier that wrote nothing (close's last group) has no end of its own: the frontier never moves back.
                val end = groups.last().end
                if (end > state.durableFrontier) state.durableFrontier = end
            } catch (e: Throwable) {
                val cause = (e as? java.util.concurrent.CompletionException)?.cause ?: e
                log.error("fsync failed; the log stops accepting appends", cause)
                stop(WalFailedException("fsync failed: $cause", cause))
            }
        }
        try {
            val failed = state.failure != null
            for (g in groups) if (failed) fail(g) else complete(g)
            if (!failed) for (g in groups) for (s in g.sealed) syncInBackground(s)
        } catch (e: Throwable) {
            // A bug: stop the log rather than leave callers waiting.
            log.error("kwal failed while acknowledging", e)
            stop(WalFailedException("internal error: $e", e))
            for (g in groups) runCatching { fail(g) }
        }
    }

    /**
     * Syncs sealed segment [s] and closes its file on [background] (which also unmaps the mapping inline appends stored
     * through: nothing stores into a sealed segment). It leaves [dirty] now: nothing writes it again,
     * and the next sync waits for this one instead.
     */
    private fun syncInBackground(s: Segment) {
        dirty.remove(s)
        while (sealing.isNotEmpty() && sealing.first().isDone && !sealing.first().isCompletedExceptionally) sealing.removeFirst()
        sealing.addLast(
            CompletableFuture.runAsync({
                try {
                    s.file.force()
                } catch (e: Throwable) {
                    log.error("fsync of sealed {} failed; the log stops accepting appends", s, e)
                    stop(WalFailedException("fsync failed: $e", e))
                    throw e
                }
                s.release()
            }, background),
        )
    }

    private fun stop(error: WalFailedException) {
        if (state.fail(error.cause ?: error)) queue.fail(error)
    }

    private fun complete(g: Group) {
        val info = g.blockInfo
        for (i in 0 until g.blockCount) {
            val topic = g.blockTopics[i]
            val firstSeq = info[3 * i]
            val end = firstSeq + info[3 * i + 1]
            if (topic.id != 0) topic.index.add(firstSeq, LogPosition(info[3 * i + 2]))
            topic.acked = end
            topic.wake()
        }
        for (r in g.appends) r.succeed()
        for (s in g.syncs) s.succeed()
    }

    private fun fail(g: Group) {
        // None of this group was acknowledged. Erase it, best effort, so that a reopen does not bring back
        // records whose callers were told they failed (unless the disk already had them and the erase is lost).
        runCatching { g.eraseRegions() }
        g.failWaiters(state.unavailable())
    }
}
