package dev.kwal.engine.commit

import dev.kwal.engine.storage.LogLifecycle
import dev.kwal.engine.storage.TopicTable
import kotlinx.coroutines.channels.SendChannel
import org.slf4j.LoggerFactory

/**
 * The first stage of group commit, one coroutine on the log's writer thread: it takes requests and routes groups.
 *
 * It takes the first queued request, drains whatever else is queued up to [maxGroupBytes] into one [Group], has the
 * [GroupWriter] write it, and routes it on: to the [GroupAcknowledger], which syncs and completes it while this loop
 * writes the next group, or — when the acknowledger has nothing in flight and either the group needs no sync or no
 * request is waiting — to the [Completer] right here, one thread hop less. A group that could not be written (it was
 * undone) fails its callers; the loop goes on.
 *
 * When the queue ends (the log is closing, or stopped) it routes one last barrier, so that everything written is
 * synced before close returns, and closes the channel to the acknowledger. If it fails itself (a bug, not an I/O
 * error), it stops the log and fails every request it holds or that is still queued.
 */
internal class CommitLoop(
    private val maxGroupBytes: Int,
    private val queue: RequestQueue,
    private val table: TopicTable,
    private val writer: GroupWriter,
    private val completer: Completer,
    private val toAcknowledger: SendChannel<Group>,
    private val lifecycle: LogLifecycle,
) {
    private val log = LoggerFactory.getLogger(CommitLoop::class.java)

    suspend fun run() {
        var carry: Request? = null
        try {
            while (true) {
                val first = carry ?: queue.receive() ?: break
                carry = null
                writer.lock.lock()
                val group = Group()
                try {
                    group.take(first, table)
                    while (group.frameBytes < maxGroupBytes) group.take(queue.tryReceive() ?: break, table)
                    val error = writer.write(group)
                    if (error == null) {
                        // Counted off only now, under the lock: until the group has its sequences, an inline append
                        // (which waits for an idle queue) must not overtake any request in it.
                        queue.taken(group.taken, group.takenBytes)
                        carry = queue.tryReceive()
                        route(group, idle = carry == null)
                    } else {
                        group.failWaiters(error)
                        queue.taken(group.taken, group.takenBytes)
                    }
                } catch (e: Throwable) {
                    // A bug, not an I/O error (those are undone by the writer): fail this group's callers too.
                    lifecycle.stop(e)
                    group.failWaiters(lifecycle.unavailable())
                    throw e
                } finally {
                    writer.lock.unlock()
                }
            }
            // Closing (or stopped): one last barrier, so that close() syncs everything written.
            writer.lock.lock()
            try {
                route(Group().apply { needsSync = true }, idle = true)
            } finally {
                writer.lock.unlock()
            }
        } catch (e: Throwable) {
            log.error("kwal writer stopped", e)
            lifecycle.stop(e)
            val error = lifecycle.unavailable()
            carry?.fail(error)
            while (true) (queue.tryReceive() ?: break).fail(error)
            throw e
        } finally {
            toAcknowledger.close()
        }
    }

    private suspend fun route(group: Group, idle: Boolean) {
        if (completer.inFlight.get() == 0 && (idle || !group.needsSync)) {
            completer.finishAlone(group)
        } else {
            completer.inFlight.incrementAndGet()
            toAcknowledger.send(group)
        }
    }
}
