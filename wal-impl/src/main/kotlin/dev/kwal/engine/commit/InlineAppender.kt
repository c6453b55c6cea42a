package dev.kwal.engine.commit

import dev.kwal.engine.storage.LogLifecycle
import dev.kwal.engine.storage.TopicTable

/**
 * The inline path: an append that needs no sync, made while the log is idle, written by its caller, on its own thread.
 *
 * Such an append does not need group commit: there is nothing to group it with and no sync to share. Handing it to the
 * [CommitLoop] and back would cost two thread wake-ups, tens of microseconds each, for a copy into the page cache of
 * well under a microsecond. So the caller writes it as a group of its own, through the same [GroupWriter] and under the
 * same lock the loop holds, and finishes it through the same [Completer]: it keeps every promise a queued append
 * keeps. The bytes are stored through the segment's shared mapping ([dev.kwal.engine.io.LogFile.store]): no system
 * call, unless a page is touched for the first time.
 *
 * Thread-safe: any number of callers; one at a time gets the writer's lock.
 */
internal class InlineAppender(
    private val writer: GroupWriter,
    private val completer: Completer,
    private val queue: RequestQueue,
    private val table: TopicTable,
    private val lifecycle: LogLifecycle,
    private val blockSize: Int,
) {
    /** The group [append] reuses: it is finished and cleared before the lock is released, so nothing keeps it. */
    private val group = Group()

    /**
     * Writes [request], which needs no sync and has no continuation, and returns its first sequence once it is
     * acknowledged; throws the error it failed with (it was undone). Returns [NOT_WRITTEN], having done nothing, if the
     * log is not idle — a group being written, one waiting for its sync, a request queued — or the request needs what
     * is not cheap (a new topic, a segment roll), or the log is closing or stopped: the caller then queues it as usual.
     */
    fun append(request: AppendRequest): Long {
        if (!writer.lock.tryLock() && !lockSoon()) return NOT_WRITTEN
        try {
            if (!lifecycle.isAccepting || completer.inFlight.get() != 0 || !queue.isIdle) return NOT_WRITTEN
            if (Group.knownTopic(request, table) == null) return NOT_WRITTEN
            if (!writer.fits(request.bytesBound(blockSize))) return NOT_WRITTEN
            group.add(request, table)
            val error = try {
                writer.store(group) ?: completer.finishAlone(group)
            } catch (e: Throwable) {
                // A bug, as in CommitLoop.run: stop the log.
                lifecycle.stop(e)
                lifecycle.unavailable()
            } finally {
                group.clear() // it holds the caller's payload
            }
            if (error != null) throw error
            return request.firstSeq
        } finally {
            writer.lock.unlock()
        }
    }

    /**
     * Tries the lock again for a moment while nothing is queued: a caller whose previous append was queued is resumed
     * while the loop still holds the lock, and would otherwise find it held and queue again.
     */
    private fun lockSoon(): Boolean {
        repeat(LOCK_SPINS) {
            if (!queue.isIdle) return false
            Thread.onSpinWait()
            if (writer.lock.tryLock()) return true
        }
        return false
    }

    companion object {
        /** What [append] returns when it wrote nothing. */
        const val NOT_WRITTEN = -1L

        /** About a few microseconds of spinning: the tail of a group the loop is finishing, no more. */
        private const val LOCK_SPINS = 64
    }
}
