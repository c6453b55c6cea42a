package dev.kwal

import java.nio.ByteBuffer

/**
 * A record read in place: the record [Wal.replayViews] or [Wal.followViews] is handing to its action, read from the
 * log's memory (a segment's mapping, or a decompressed block) without copying its payload into an array of its own.
 *
 * ### Validity
 * A view is valid only while the action it was passed to runs. The reader reuses one view object for every record of
 * a read: when the action returns, the same object moves on to the next record. Do not keep a view, or hand it to
 * another thread: to keep a record, copy it ([toRecord], [copyPayloadTo]). Once the read has ended — returned, thrown
 * or been cancelled — every member of the view throws [IllegalStateException]. During the read the check cannot tell
 * one call of the action from the next: a reference kept from one call shows the record of the later call.
 *
 * ### Checks
 * The record was checked before the action was called, as [Wal.replay] checks it (its CRC32C, bound to its topic and
 * sequence), unless [RecordChecks.SKIP_SEALED] was asked for and the record lies in a sealed segment. A record that
 * fails its check is never shown.
 *
 * ### Thread-safety
 * None: a view belongs to the thread running the action it was passed to.
 *
 * ### What it deliberately does not do
 * It hands out no [ByteBuffer] or array over the log's memory. Such a buffer kept past the action could outlive the
 * mapping it points into (the log unmaps segments no reader holds), and reading an unmapped buffer crashes the JVM
 * rather than throwing. Read the payload through [get], or copy it — into a reused array or buffer, which allocates
 * nothing.
 *
 * Implemented by the engine; not meant to be implemented elsewhere.
 */
public interface RecordView {
    /** The topic the record belongs to. */
    public val topic: String

    /** The record's position in its topic (see [Record.sequence]). */
    public val sequence: Long

    /** The time its group was written (see [Record.timestampMillis]). */
    public val timestampMillis: Long

    /** The payload's length in bytes. */
    public val payloadSize: Int

    /**
     * The payload's byte at [index].
     *
     * @throws IndexOutOfBoundsException if [index] is not in `0 until payloadSize`.
     */
    public operator fun get(index: Int): Byte

    /**
     * Copies the payload into [destination] from [destinationOffset] on: [payloadSize] bytes. Allocates nothing.
     *
     * @throws IndexOutOfBoundsException if they do not fit there; nothing is copied.
     */
    public fun copyPayloadTo(destination: ByteArray, destinationOffset: Int)

    /**
     * Copies the payload into [destination] at its position, which moves past it: [payloadSize] bytes. Allocates
     * nothing.
     *
     * @throws java.nio.BufferOverflowException if [destination] has fewer bytes remaining; nothing is copied.
     * @throws java.nio.ReadOnlyBufferException if [destination] is read-only.
     */
    public fun copyPayloadTo(destination: ByteBuffer)

    /** A [Record] with a copy of this one's payload, owned by the caller and valid for good. */
    public fun toRecord(): Record
}
