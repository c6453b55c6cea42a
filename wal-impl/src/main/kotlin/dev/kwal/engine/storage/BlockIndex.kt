package dev.kwal.engine.storage

import dev.kwal.engine.format.LogPosition
import java.lang.invoke.MethodHandles

/**
 * Where a topic's blocks are: for each block, in sequence order, its first sequence, its [LogPosition], and the bytes
 * (headers included) of the topic's blocks before it, so that the bytes from any block to the end are one subtraction
 * (retention by size).
 *
 * Entries have stable numbers, 0, 1, 2, … in sequence order. Retention drops the entries of truncated blocks from the
 * front ([dropBelow]): numbers below [base] are then gone, and reading one throws [Dropped] — a reader that meets it
 * skips to the topic's first sequence, as for a block whose segment was deleted.
 *
 * Changes ([add], [move], [dropBelow]) are serialized (the thread finishing groups adds and moves; retention drops);
 * any number of readers look up concurrently, without locks. Entries below [size] never change but for their position
 * ([move], to a copy retention made: the old place stays readable until its segment is deleted, which happens only
 * after the move), and a reader that reads [size] first sees every entry below it.
 */
internal class BlockIndex {
    /**
     * Entries [base] onwards: firstSeq, pos, bytesBefore for each, 3 longs apart, bytesBefore's sign bit set if the
     * position is a copy ([move]). Replaced whole when it changes size.
     */
    private class Entries(val base: Int, val data: LongArray)

    @Volatile private var entries = Entries(0, LongArray(3 * 4))

    @Volatile var size: Int = 0
        private set

    /** The bytes of every block indexed. */
    @Volatile var bytes: Long = 0
        private set

    /** The first entry still held; entries below it were dropped. */
    val base: Int get() = entries.base

    /** Adds the block of [length] bytes at [position] whose first record is [firstSeq]. */
    @Synchronized
    fun add(firstSeq: Long, position: LogPosition, length: Int) {
        var e = entries
        val n = size
        val k = n - e.base
        if (3 * k + 3 > e.data.size) {
            e = Entries(e.base, e.data.copyOf(maxOf(12, e.data.size * 2)))
            entries = e
        }
        e.data[3 * k] = firstSeq
        e.data[3 * k + 1] = position.packed
        e.data[3 * k + 2] = bytes
        bytes += length
        size = n + 1
    }

    /**
     * Points the entry of the block whose first record is [firstSeq] at [position], a copy of it; returns whether
     * there was such an entry.
     */
    @Synchronized
    fun move(firstSeq: Long, position: LogPosition): Boolean {
        val n = size
        val e = entries
        if (n <= e.base) return false
        val i = find(firstSeq, n) - e.base
        if (e.data[3 * i] != firstSeq) return false
        e.data[3 * i + 2] = e.data[3 * i + 2] or COPY
        POSITIONS.setRelease(e.data, 3 * i + 1, position.packed)
        return true
    }

    /** Drops the entries below [i] (retention: their blocks hold only truncated records). Keeps at least one. */
    @Synchronized
    fun dropBelow(i: Int) {
        val e = entries
        val n = size
        val to = minOf(i, n - 1)
        if (to <= e.base) return
        val keep = n - to
        val data = LongArray(maxOf(12, 3 * keep + 3 * (keep / 2)))
        System.arraycopy(e.data, 3 * (to - e.base), data, 0, 3 * keep)
        entries = Entries(to, data)
    }

    /**
     * Replaces every entry (recovery only, before readers exist): [firstSeqs], [positions] and [lengths] in order, the
     * first [copies] of them relocated copies.
     */
    fun replaceAll(firstSeqs: LongArray, positions: LongArray, lengths: IntArray, copies: Int) {
        val e = LongArray(maxOf(12, 3 * firstSeqs.size))
        var b = 0L
        for (i in firstSeqs.indices) {
            e[3 * i] = firstSeqs[i]
            e[3 * i + 1] = positions[i]
            e[3 * i + 2] = if (i < copies) b or COPY else b
            b += lengths[i]
        }
        entries = Entries(0, e)
        bytes = b
        size = firstSeqs.size
    }

    fun firstSeq(i: Int): Long = entries.let { it.data[3 * at(it, i)] }

    fun position(i: Int): LogPosition =
        entries.let { LogPosition(POSITIONS.getAcquire(it.data, 3 * at(it, i) + 1) as Long) }

    /** The bytes of the blocks before block [i]; [i] may be [size] (all of them). */
    fun bytesBefore(i: Int): Long = entries.let { if (i >= size) bytes else it.data[3 * at(it, i) + 2] and COPY.inv() }

    /**
     * Whether block [i]'s position is a copy retention made ([move]) rather than where the block was written. A topic's
     * copies hold its oldest live records: once an entry is not a copy, no later one is, and the later ones lie in
     * log order.
     */
    fun isCopy(i: Int): Boolean = entries.let { it.data[3 * at(it, i) + 2] < 0 }

    /** The bytes of block [i]. */
    fun length(i: Int): Int = (bytesBefore(i + 1) - bytesBefore(i)).toInt()

    /** Where entry [i] is in [e]'s data, or [Dropped]. */
    private fun at(e: Entries, i: Int): Int = if (i >= e.base) i - e.base else throw Dropped

    /**
     * The index of the block holding [seq] (the last block whose first sequence is at most [seq]; the first held, if
     * none), given [n] = a [size] read earlier.
     */
    fun find(seq: Long, n: Int): Int {
        val e = entries
        val d = e.data
        var lo = e.base
        var hi = n - 1
        var found = e.base
        while (lo <= hi) {
            val mid = (lo + hi) ushr 1
            if (d[3 * (mid - e.base)] <= seq) {
                found = mid
                lo = mid + 1
            } else {
                hi = mid - 1
            }
        }
        return found
    }

    /** The first index from [base] whose [bytesBefore] is at least [bytes], below [n]; [n] if none. */
    fun firstWithBytesBefore(bytes: Long, n: Int): Int {
        val e = entries
        var lo = e.base
        var hi = n
        while (lo < hi) {
            val mid = (lo + hi) ushr 1
            if (e.data[3 * (mid - e.base) + 2] and COPY.inv() >= bytes) hi = mid else lo = mid + 1
        }
        return lo
    }

    /** An entry below [base] was asked for: it was dropped. */
    object Dropped : RuntimeException("block index entry dropped") {
        private fun readResolve(): Any = Dropped
        override fun fillInStackTrace(): Throwable = this
    }

    private companion object {
        const val COPY = Long.MIN_VALUE
        val POSITIONS = MethodHandles.arrayElementVarHandle(LongArray::class.java)
    }
}
