package dev.kwal.engine.storage

import dev.kwal.engine.format.LogPosition

/**
 * Where a topic's blocks are: for each block, its first sequence and its [LogPosition], in sequence order.
 *
 * One thread at a time appends (whichever finishes groups, in order: see `commit.Completer`); any number of readers
 * look up concurrently.
 * Entries below [size] never change, and a reader that reads [size] first sees every entry below it.
 */
internal class BlockIndex {
    @Volatile private var entries = LongArray(8)

    // firstSeq0, pos0, firstSeq1, pos1, ...
    @Volatile var size: Int = 0
        private set

    fun add(firstSeq: Long, position: LogPosition) {
        var e = entries
        val n = size
        if (2 * n + 2 > e.size) {
            e = e.copyOf(e.size * 2)
            entries = e
        }
        e[2 * n] = firstSeq
        e[2 * n + 1] = position.packed
        size = n + 1
    }

    /** Drops entries from [newSize] on (recovery only, before readers exist). */
    fun truncate(newSize: Int) {
        size = newSize
    }

    fun firstSeq(i: Int): Long = entries[2 * i]
    fun position(i: Int): LogPosition = LogPosition(entries[2 * i + 1])

    /**
     * The index of the block holding [seq] (the last block whose first sequence is at most [seq]), given [n] = a [size]
     * read earlier.
     */
    fun find(seq: Long, n: Int): Int {
        val e = entries
        var lo = 0
        var hi = n - 1
        var found = 0
        while (lo <= hi) {
            val mid = (lo + hi) ushr 1
            if (e[2 * mid] <= seq) {
                found = mid
                lo = mid + 1
            } else {
                hi = mid - 1
            }
        }
        return found
    }
}
