package dev.kwal.engine.commit

import dev.kwal.WalFailedException
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.storage.Segment
import kotlinx.coroutines.channels.SendChannel
import org.slf4j.LoggerFactory
import java.util.concurrent.atomic.AtomicInteger
import kotlin.coroutines.resume

/**
 * The end of group commit: syncs written groups when any of them asks for it, then, in order, publishes each
 * group's blocks to readers and resumes its callers — or fails them all if the log has stopped.
 *
 * Two threads finish groups: the [GroupAcknowledger] (on the sync thread, so the writer can write the next
 * group meanwhile) and, when nothing is in flight there, the [GroupWriter] itself (one thread hop less for a
 * lone appender). They never do so at once: the writer finishes a group only while [inFlight] is 0, and every
 * change the acknowledger made is visible to it then. So groups finish in the order they were written.
 *
 * A failed sync stops the log for good (see [WalFailedException]): the kernel may have dropped the dirty pages it
 * could not write, so a retry that succeeds proves nothing. Every waiting caller gets the error.
 */
internal class Completer(private val state: LogState, private val requests: SendChannel<Request>) {
    private val log = LoggerFactory.getLogger(Completer::class.java)

    /** Segments written since the last sync. */
    private val dirty = ArrayList<Segment>()

    /** Groups handed to the acknowledger and not finished yet. */
    val inFlight = AtomicInteger()

    fun finish(groups: List<Group>) {
        var needsSync = false
        for (g in groups) {
            for (r in g.regions) if (dirty.lastOrNull() !== r.segment && r.segment !in dirty) dirty.add(r.segment)
            needsSync = needsSync || g.needsSync
        }
        if (needsSync && state.failure == null && dirty.isNotEmpty()) {
            try {
                for (s in dirty) s.file.force()
                dirty.clear()
                state.durableFrontier = groups.last().end
            } catch (e: Throwable) {
                log.error("fsync failed; the log stops accepting appends", e)
                if (state.fail(e)) requests.close(WalFailedException("fsync failed: $e", e))
            }
        }
        try {
            val failed = state.failure != null
            for (g in groups) if (failed) fail(g) else complete(g)
            if (!failed) releaseSealed(groups)
        } catch (e: Throwable) {
            // A bug: stop the log rather than leave callers waiting.
            log.error("kwal failed while acknowledging", e)
            if (state.fail(e)) requests.close(WalFailedException("internal error: $e", e))
            for (g in groups) runCatching { fail(g) }
        }
        state.ackVersion.value++
    }

    /**
     * Closes the files of segments that finished groups sealed, once they are durable (not [dirty]): no group
     * writes a segment after the one that sealed it, and readers use the mapping. Only segments sealed by
     * *finished* groups: the writer may meanwhile be writing, and then sealing, the next one.
     */
    private fun releaseSealed(groups: List<Group>) {
        for (g in groups) sealedNotReleased.addAll(g.sealed)
        if (sealedNotReleased.isEmpty()) return
        val it = sealedNotReleased.iterator()
        while (it.hasNext()) {
            val s = it.next()
            if (s !in dirty) { s.release(); it.remove() }
        }
    }

    /** Segments sealed by finished groups whose files are still open: they await a sync. */
    private val sealedNotReleased = ArrayList<Segment>()

    private fun complete(g: Group) {
        val info = g.blockInfo
        for (i in 0 until g.blockCount) {
            val topic = g.blockTopics[i]
            val firstSeq = info[3 * i]
            val end = firstSeq + info[3 * i + 1]
            if (topic.id != 0) topic.index.add(firstSeq, LogPosition(info[3 * i + 2]))
            topic.acked = end
        }
        for (r in g.appends) r.succeed()
        for (s in g.syncs) s.cont?.resume(Unit)
    }

    private fun fail(g: Group) {
        // None of this group was acknowledged. Erase it, best effort, so that a reopen does not bring back
        // records whose callers were told they failed (unless the disk already had them and the erase is lost).
        runCatching { g.eraseRegions() }
        g.failWaiters(state.unavailable())
    }
}
