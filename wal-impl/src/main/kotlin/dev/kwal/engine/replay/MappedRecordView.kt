package dev.kwal.engine.replay

import dev.kwal.Record
import dev.kwal.RecordView
import java.nio.BufferOverflowException
import java.nio.ByteBuffer
import java.util.Objects

/**
 * The one [RecordView] of a [TopicReader.readViews]: the reader points it at each checked frame's payload in turn
 * ([show]); it is valid from the read's start until its end ([end]). Every member checks [valid] first (one field
 * read), so a view kept past the read throws instead of reading a buffer that may be unmapped by then.
 */
internal class MappedRecordView(private val topicName: String) : RecordView {
    /** Whether the read this view serves is under way. */
    @JvmField var valid = false

    private var buffer: ByteBuffer = EMPTY
    private var offset = 0
    private var length = 0
    private var seq = 0L
    private var timestamp = 0L

    /** Points this view at the [length]-byte payload at [offset] of [buffer], record [seq] stamped [timestamp]. */
    fun show(buffer: ByteBuffer, offset: Int, length: Int, seq: Long, timestamp: Long) {
        this.buffer = buffer
        this.offset = offset
        this.length = length
        this.seq = seq
        this.timestamp = timestamp
    }

    /** Forgets the buffer: nothing may read it once the reader has given its mapping back. */
    fun end() {
        valid = false
        buffer = EMPTY
    }

    private fun checkValid() {
        if (!valid) throw IllegalStateException(INVALID)
    }

    override val topic: String
        get() {
            checkValid()
            return topicName
        }

    override val sequence: Long
        get() {
            checkValid()
            return seq
        }

    override val timestampMillis: Long
        get() {
            checkValid()
            return timestamp
        }

    override val payloadSize: Int
        get() {
            checkValid()
            return length
        }

    override fun get(index: Int): Byte {
        checkValid()
        return buffer.get(offset + Objects.checkIndex(index, length))
    }

    override fun copyPayloadTo(destination: ByteArray, destinationOffset: Int) {
        checkValid()
        Objects.checkFromIndexSize(destinationOffset, length, destination.size)
        buffer.get(offset, destination, destinationOffset, length)
    }

    override fun copyPayloadTo(destination: ByteBuffer) {
        checkValid()
        val at = destination.position()
        if (destination.limit() - at < length) throw BufferOverflowException()
        destination.put(at, buffer, offset, length)
        destination.position(at + length)
    }

    override fun toRecord(): Record {
        checkValid()
        val payload = ByteArray(length)
        buffer.get(offset, payload, 0, length)
        return Record(topicName, seq, timestamp, payload)
    }

    override fun toString(): String = if (valid) {
        "RecordView(topic=$topicName, sequence=$seq, timestampMillis=$timestamp, payload=$length bytes)"
    } else {
        "RecordView(invalid: its read has ended)"
    }

    private companion object {
        val EMPTY: ByteBuffer = ByteBuffer.allocate(0)
        const val INVALID = "a RecordView is valid only while the action it was passed to runs; its read has ended"
    }
}
