package dev.kwal.engine.commit

import dev.kwal.WalClosedException
import dev.kwal.WalException
import dev.kwal.WalFailedException
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.storage.Segment
import kotlinx.coroutines.flow.MutableStateFlow
import java.util.concurrent.ConcurrentHashMap

/** State shared by the writer, the acknowledger and readers of one open log. */
internal class LogState(initialFrontier: LogPosition) {
    /** Every byte before this position is durable. Advanced by the acknowledger after each sync. */
    @Volatile var durableFrontier: LogPosition = initialFrontier

    /** The failure that stopped the log, if any. Once set, never cleared. */
    @Volatile var failure: Throwable? = null
        private set

    @Volatile var closed: Boolean = false

    /** Every open segment by id. */
    val segments = ConcurrentHashMap<Int, Segment>()

    /** Bumped after each acknowledged batch of groups and on close; followers wait on it. */
    val ackVersion = MutableStateFlow(0L)

    fun fail(cause: Throwable): Boolean {
        synchronized(this) {
            if (failure != null) return false
            failure = cause
            return true
        }
    }

    /** The error for a call that cannot proceed because the log failed or closed. */
    fun unavailable(): WalException = failure?.let { WalFailedException("Wal stopped after a failure: $it", it) }
        ?: WalClosedException()
}
