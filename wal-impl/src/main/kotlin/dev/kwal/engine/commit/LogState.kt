package dev.kwal.engine.commit

import dev.kwal.WalClosedException
import dev.kwal.WalException
import dev.kwal.WalFailedException
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.storage.Segment
import dev.kwal.engine.storage.TopicTable
import java.util.concurrent.ConcurrentHashMap

/** State shared by the writer, the acknowledger and readers of one open log. */
internal class LogState(initialFrontier: LogPosition, private val table: TopicTable) {
    /** Every byte before this position is durable. Advanced by the acknowledger after each sync. */
    @Volatile var durableFrontier: LogPosition = initialFrontier

    /** The failure that stopped the log, if any. Once set, never cleared. */
    @Volatile var failure: Throwable? = null
        private set

    /** Set once by [markClosed]. */
    @Volatile var closed: Boolean = false
        private set

    /** Every open segment by id. */
    val segments = ConcurrentHashMap<Int, Segment>()

    /** Records [cause] as the failure that stopped the log, unless one is recorded already; wakes every follower. */
    fun fail(cause: Throwable): Boolean {
        synchronized(this) {
            if (failure != null) return false
            failure = cause
        }
        table.wakeAll()
        return true
    }

    /** The log is closed: followers end once they have read what was acknowledged. */
    fun markClosed() {
        closed = true
        table.wakeAll()
    }

    /** The error for a call that cannot proceed because the log failed or closed. */
    fun unavailable(): WalException = failure?.let { WalFailedException("Wal stopped after a failure: $it", it) }
        ?: WalClosedException()
}
