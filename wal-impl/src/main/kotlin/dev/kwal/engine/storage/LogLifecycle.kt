package dev.kwal.engine.storage

import dev.kwal.WalClosedException
import dev.kwal.WalException
import dev.kwal.WalFailedException
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.CountDownLatch
import java.util.concurrent.atomic.AtomicReference

/**
 * The lifecycle of one open log, and its one owner: a single [State] — the phase (open, closing, closed) and, once the
 * log has failed, the cause — changed only here, and one path, [stop], by which any part of the engine stops the log
 * after a failure.
 *
 * ```
 *   OPEN ──close()──▶ CLOSING ──writer and acknowledger done──▶ CLOSED
 *     └──────────── stop(cause), in any phase: the failure is recorded, once ────────┘
 * ```
 *
 * A failure stops the log for good: every later call fails with [WalFailedException], and it stays so after close.
 * [stop] wakes every follower and runs the stop actions the engine registered ([onStop]: fail the request queue), on
 * the stopping thread.
 *
 * Thread-safety: every member is safe from any thread.
 */
internal class LogLifecycle(private val table: TopicTable) {
    enum class Phase { OPEN, CLOSING, CLOSED }

    /** The phase, and the failure that stopped the log, if any (set once, never cleared). */
    class State(val phase: Phase, val failure: Throwable?)

    private val state = AtomicReference(State(Phase.OPEN, null))
    private val stopActions = CopyOnWriteArrayList<(WalException) -> Unit>()
    private val closed = CountDownLatch(1)

    /** The failure that stopped the log, if any. */
    val failure: Throwable? get() = state.get().failure

    /** Whether the log takes new calls: open, and not failed. */
    val isAccepting: Boolean get() = state.get().let { it.phase == Phase.OPEN && it.failure == null }

    /** Whether the log has closed: its writer has stopped and its files are closed. */
    val isClosed: Boolean get() = state.get().phase == Phase.CLOSED

    /** Runs [action] with the error calls get from now on, when the log stops after a failure. */
    fun onStop(action: (WalException) -> Unit) {
        stopActions.add(action)
    }

    /**
     * Stops the log after [cause], in whatever phase it is, unless it has failed already: records the failure, wakes
     * every follower, and runs the stop actions. Returns whether this call recorded it.
     */
    fun stop(cause: Throwable): Boolean {
        while (true) {
            val s = state.get()
            if (s.failure != null) return false
            if (state.compareAndSet(s, State(s.phase, cause))) break
        }
        table.wakeAll()
        val error = unavailable()
        for (action in stopActions) action(error)
        return true
    }

    /** Moves from open to closing; false if closing began already (the first caller closes). */
    fun beginClose(): Boolean {
        while (true) {
            val s = state.get()
            if (s.phase != Phase.OPEN) return false
            if (state.compareAndSet(s, State(Phase.CLOSING, s.failure))) return true
        }
    }

    /**
     * The log has closed (its writer and acknowledger are done): followers end once they have read what was
     * acknowledged, then [release] lets go of the log's resources, then [awaitClosed] returns.
     */
    fun closed(release: () -> Unit) {
        while (true) {
            val s = state.get()
            if (state.compareAndSet(s, State(Phase.CLOSED, s.failure))) break
        }
        table.wakeAll()
        try {
            release()
        } finally {
            closed.countDown()
        }
    }

    /** Waits until [closed], not cut short by an interrupt (the thread's interrupt status is kept). */
    fun awaitClosed() {
        var interrupted = false
        while (true) {
            try {
                closed.await()
                break
            } catch (e: InterruptedException) {
                interrupted = true
            }
        }
        if (interrupted) Thread.currentThread().interrupt()
    }

    /** The error for a call that cannot proceed because the log failed or closed. */
    fun unavailable(): WalException = failure?.let { WalFailedException("Wal stopped after a failure: $it", it) }
        ?: WalClosedException()
}
