package dev.kwal.engine.storage

import dev.kwal.engine.format.LogPosition

/**
 * One block of a topic, as [BlockIndex] found it: a cursor its caller keeps and [BlockIndex.advance]s. Not thread-safe.
 */
internal class BlockRef {
    /** The sequence of the block's first record. */
    var firstSeq: Long = 0
        private set

    /** Its records. */
    var count: Int = 0
        private set

    /** Where it is: where it was written, or the copy retention made of it ([isCopy]). */
    var position: LogPosition = LogPosition.ZERO
        private set

    /** Its bytes, header included. */
    var length: Int = 0
        private set

    /** The bytes of the topic's blocks in place before it (running since the log began); -1 for a copy. */
    var bytesBefore: Long = 0
        private set

    /** The index's sample whose run holds the block; -1 for a copy. */
    internal var sample: Int = -1
        private set

    /** The first sequence after the block. */
    val endSeq: Long get() = firstSeq + count

    /** Whether [position] is a copy retention made ([BlockIndex.move]) rather than where the block was written. */
    val isCopy: Boolean get() = sample < 0

    internal fun set(firstSeq: Long, count: Int, position: LogPosition, length: Int, bytesBefore: Long, sample: Int) {
        this.firstSeq = firstSeq
        this.count = count
        this.position = position
        this.length = length
        this.bytesBefore = bytesBefore
        this.sample = sample
    }

    override fun toString(): String = "block $firstSeq+$count at $position${if (isCopy) " (copy)" else ""}"
}
