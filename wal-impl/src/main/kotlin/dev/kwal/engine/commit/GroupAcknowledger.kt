package dev.kwal.engine.commit

import dev.kwal.WalFailedException
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.storage.Segment
import dev.kwal.engine.storage.SegmentFiles
import kotlinx.coroutines.channels.ReceiveChannel
import kotlinx.coroutines.channels.SendChannel
import org.slf4j.LoggerFactory
import kotlin.coroutines.resume
import kotlin.coroutines.resumeWithException

/**
 * The second stage of group commit, one coroutine on the log's sync thread, where a blocking `fsync` stalls
 * no caller.
 *
 * It takes every group the writer has finished, syncs once for all of them if any asks for it (forcing
 * each segment written since the last sync), then, in order, publishes each group's blocks to readers and
 * resumes its callers. A record is therefore visible only once its group is acknowledged.
 *
 * A failed sync stops the log for good (see [WalFailedException]): the kernel may have dropped the dirty
 * pages it could not write, so a retry that succeeds proves nothing. Every waiting caller gets the error.
 */
internal class GroupAcknowledger(
    private val state: LogState,
    private val written: ReceiveChannel<Group>,
    private val requests: SendChannel<Request>,
) {
    private val log = LoggerFactory.getLogger(GroupAcknowledger::class.java)
    private val dirty = ArrayList<Segment>()
    private val batch = ArrayList<Group>()

    suspend fun run() {
        while (true) {
            val first = written.receiveCatching().getOrNull() ?: break
            batch.clear()
            batch.add(first)
            while (true) batch.add(written.tryReceive().getOrNull() ?: break)
            var needsSync = false
            for (g in batch) {
                for (r in g.regions) if (dirty.lastOrNull() !== r.segment && r.segment !in dirty) dirty.add(r.segment)
                needsSync = needsSync || g.needsSync
            }
            if (needsSync && state.failure == null && dirty.isNotEmpty()) {
                try {
                    for (s in dirty) s.file.force()
                    dirty.clear()
                    state.durableFrontier = batch.last().end
                } catch (e: Throwable) {
                    log.error("fsync failed; the log stops accepting appends", e)
                    if (state.fail(e)) requests.close(WalFailedException("fsync failed: $e", e))
                }
            }
            try {
                val failed = state.failure != null
                for (g in batch) if (failed) fail(g) else complete(g)
            } catch (e: Throwable) {
                // A bug: stop the log rather than leave callers waiting.
                log.error("kwal acknowledger failed", e)
                if (state.fail(e)) requests.close(WalFailedException("internal error: $e", e))
                for (g in batch) runCatching { fail(g) }
            }
            state.ackVersion.value++
        }
    }

    private fun complete(g: Group) {
        val info = g.blockInfo
        for (i in 0 until g.blockCount) {
            val topic = g.blockTopics[i]
            val firstSeq = info[3 * i]
            val end = firstSeq + info[3 * i + 1]
            if (topic.id != 0) topic.index.add(firstSeq, LogPosition(info[3 * i + 2]))
            topic.acked = end
        }
        for (r in g.appends) r.cont.resume(r.firstSeq)
        for (s in g.syncs) s.cont?.resume(Unit)
    }

    private fun fail(g: Group) {
        // None of this group was acknowledged. Erase it, best effort, so that a reopen does not bring back
        // records whose callers were told they failed (unless the disk already had them and the erase is lost).
        for (r in g.regions) {
            runCatching {
                SegmentFiles.writeZeros(r.segment.file, r.fileOffset.toLong(), (r.fileOffset + r.bufferEnd - r.bufferStart).toLong())
            }
        }
        val error = state.unavailable()
        for (r in g.appends) r.cont.resumeWithException(error)
        for (s in g.syncs) s.cont?.resumeWithException(error)
    }
}
