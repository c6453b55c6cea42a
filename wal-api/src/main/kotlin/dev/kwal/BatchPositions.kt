package dev.kwal

/**
 * The positions a batch got in its topic: [count] consecutive sequences from [first]. What
 * [AsyncWal.appendBatch] returns, a plain Java value in place of Kotlin's `LongRange` (which [Wal.appendBatch]
 * returns).
 *
 * ```java
 * BatchPositions at = wal.appendBatch("orders", payloads).join();
 * for (long seq = at.first(); seq < at.end(); seq++) { ... }
 * ```
 *
 * An empty batch has [count] 0 and [first] the topic's next sequence when it was called (so [end] == [first] and
 * [last] == `first - 1`). Immutable and thread-safe; two are equal when [first] and [count] are.
 *
 * @param first the sequence of the batch's first record; at least 0.
 * @param count how many records the batch holds; at least 0.
 * @throws IllegalArgumentException if [first] or [count] is negative, or `first + count` overflows.
 */
public class BatchPositions(first: Long, count: Int) {
    init {
        require(first >= 0) { "first must not be negative: $first" }
        require(count >= 0) { "count must not be negative: $count" }
        require(first <= Long.MAX_VALUE - count) { "first + count overflows: $first + $count" }
    }

    /** The sequence of the batch's first record (for an empty batch: the topic's next sequence at the time). */
    @get:JvmName("first")
    public val first: Long = first

    /** How many records the batch holds. */
    @get:JvmName("count")
    public val count: Int = count

    /** The sequence of the batch's last record: `first + count - 1`, so `first - 1` for an empty batch. */
    @get:JvmName("last")
    public val last: Long get() = first + count - 1

    /** The sequence after the batch's last record (exclusive end): `first + count`. */
    @get:JvmName("end")
    public val end: Long get() = first + count

    /** Whether the batch held no record. */
    @get:JvmName("isEmpty")
    public val isEmpty: Boolean get() = count == 0

    /** Whether [sequence] is one of the batch's positions: `first <= sequence < end`. */
    public fun contains(sequence: Long): Boolean = sequence in first until end

    override fun equals(other: Any?): Boolean = other is BatchPositions && first == other.first && count == other.count

    override fun hashCode(): Int = first.hashCode() * 31 + count

    /** `BatchPositions(first=3, count=2)`: the batch at sequences 3 and 4. */
    override fun toString(): String = "BatchPositions(first=$first, count=$count)"
}
