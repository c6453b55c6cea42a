package dev.kwal.engine.commit

import kotlinx.coroutines.channels.ReceiveChannel

/**
 * The second stage of group commit, one coroutine on the log's sync thread, where a blocking `fsync` stalls
 * no caller and not the writer: it takes every group the writer has handed over and finishes them together
 * (one sync for all, see [Completer]), while the writer writes the next ones.
 */
internal class GroupAcknowledger(private val completer: Completer, private val written: ReceiveChannel<Group>) {
    private val batch = ArrayList<Group>()

    suspend fun run() {
        while (true) {
            val first = written.receiveCatching().getOrNull() ?: break
            batch.clear()
            batch.add(first)
            while (true) batch.add(written.tryReceive().getOrNull() ?: break)
            completer.finish(batch)
            completer.inFlight.addAndGet(-batch.size)
            batch.clear() // finished groups hold their callers' payloads: let them go now, not at the next batch
        }
    }
}
