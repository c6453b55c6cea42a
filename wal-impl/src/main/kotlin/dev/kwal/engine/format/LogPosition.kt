package dev.kwal.engine.format

/**
 * A place in the log: a segment id and a byte offset in it, packed into one `Long` as
 * `segmentId shl 32 or offset` so that positions compare in log order.
 */
@JvmInline
internal value class LogPosition(val packed: Long) : Comparable<LogPosition> {
    constructor(segmentId: Int, offset: Int) : this((segmentId.toLong() shl 32) or (offset.toLong() and 0xFFFF_FFFFL))

    val segmentId: Int get() = (packed ushr 32).toInt()
    val offset: Int get() = packed.toInt()

    override fun compareTo(other: LogPosition): Int = packed.compareTo(other.packed)
    override fun toString(): String = "segment $segmentId offset $offset"

    companion object {
        val ZERO = LogPosition(0L)
    }
}
