package dev.kwal.engine.storage

import dev.kwal.engine.format.ControlRecord
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.update

/**
 * One topic's state.
 *
 * [reserved] and [groupSlot] are the writer's (the writer coroutine, or an inline caller holding the writer's lock:
 * one thread at a time): the next sequence it will assign, including records written but not yet acknowledged.
 * [acked] and [index] are published by whichever thread finishes a group (see `commit.Completer`: one at a time, in
 * order) after the records below [acked] are durable under their durability; readers never look past [acked].
 */
internal class Topic(val id: Int, val name: String) {
    /** Writer only. */
    var reserved: Long = 0

    /** Writer only: the index of this topic's run in the group being built, or -1 if it has none there. */
    var groupSlot: Int = -1

    @Volatile var acked: Long = 0

    /**
     * The first readable sequence: records below it were truncated ([raiseFirst]). Never decreases; at most
     * [acked].
     */
    @Volatile var first: Long = 0
        private set

    /** Raises [first] to [sequence], if that is higher. Any thread. */
    fun raiseFirst(sequence: Long) {
        synchronized(this) { if (sequence > first) first = sequence }
    }

    /** Whether this is the engine's own control topic, which users can neither see nor write. */
    val internal: Boolean get() = name == ControlRecord.TOPIC

    /**
     * False once a rolled-back registration removed this topic from its table: a caller that looked it up
     * before then must look the name up again, or it would write under an id that another topic may take.
     */
    @Volatile var registered: Boolean = true

    val index = BlockIndex(id)

    /** Bumped by [wake]; made when the first follower waits, so a topic nobody follows costs nothing to wake. */
    @Volatile private var signal: MutableStateFlow<Long>? = null

    /**
     * What a follower waits on: it changes after [acked] advances (and when the log stops). Read its value, then
     * [acked], then wait for a change: a wake-up in between is not missed.
     */
    fun signal(): StateFlow<Long> = signal ?: synchronized(this) { signal ?: MutableStateFlow(0L).also { signal = it } }

    /** Wakes this topic's followers, if any. Call after publishing [acked]. */
    fun wake() {
        signal?.update { it + 1 }
    }

    override fun toString(): String = "topic $id '$name'"
}
