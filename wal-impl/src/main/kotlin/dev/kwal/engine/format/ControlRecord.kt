package dev.kwal.engine.format

import java.nio.ByteBuffer

/*
 * A control record: the payload of a record of the control topic, "kwal/control" (a name no user topic can have:
 * user names may not contain '/'). Control records change the log's state the way appends do — durably, in log
 * order, through group commit — and recovery's state is rebuilt by reading them in sequence order at open.
 *
 *   offset size field
 *   0      1    kind: 1 = truncate, 2 = commit, 3 = delete consumer
 *   kind 1, truncate: records of a topic below a sequence are no longer readable
 *   1      2    topic name length t, then t bytes of UTF-8
 *   3+t    8    the topic's new first sequence
 *   kind 2, commit: a consumer's position in a topic (the first sequence it has not processed)
 *   1      2    consumer name length c, then c bytes of UTF-8
 *   3+c    2    topic name length t, then t bytes of UTF-8
 *   5+c+t  8    the position
 *   kind 3, delete consumer: every position of a consumer is forgotten
 *   1      2    consumer name length c, then c bytes of UTF-8
 *
 * Integers are big-endian. The record's frame CRC covers the payload like any other record's.
 */
internal sealed class ControlRecord {
    /** Records of [topic] below [firstSequence] are no longer readable. */
    data class Truncate(val topic: String, val firstSequence: Long) : ControlRecord()

    /** [consumer]'s position in [topic]: the first sequence it has not processed. */
    data class Commit(val consumer: String, val topic: String, val position: Long) : ControlRecord()

    /** Every position of [consumer] is forgotten. */
    data class DeleteConsumer(val consumer: String) : ControlRecord()

    fun encode(): ByteArray {
        val out = ByteBuffer.allocate(size())
        when (this) {
            is Truncate -> {
                out.put(TRUNCATE)
                putName(out, topic)
                out.putLong(firstSequence)
            }

            is Commit -> {
                out.put(COMMIT)
                putName(out, consumer)
                putName(out, topic)
                out.putLong(position)
            }

            is DeleteConsumer -> {
                out.put(DELETE_CONSUMER)
                putName(out, consumer)
            }
        }
        return out.array()
    }

    private fun size(): Int = when (this) {
        is Truncate -> 1 + 2 + utf8(topic).size + 8
        is Commit -> 1 + 2 + utf8(consumer).size + 2 + utf8(topic).size + 8
        is DeleteConsumer -> 1 + 2 + utf8(consumer).size
    }

    companion object {
        /** The control topic's name. */
        const val TOPIC = "kwal/control"

        private const val TRUNCATE: Byte = 1
        private const val COMMIT: Byte = 2
        private const val DELETE_CONSUMER: Byte = 3

        private fun utf8(s: String) = s.encodeToByteArray()

        private fun putName(out: ByteBuffer, name: String) {
            val bytes = utf8(name)
            out.putShort(bytes.size.toShort())
            out.put(bytes)
        }

        /** The control record [payload] holds, or null if it is none (an unknown kind, or malformed). */
        fun decode(payload: ByteArray): ControlRecord? = try {
            val b = ByteBuffer.wrap(payload)
            val record = when (b.get()) {
                TRUNCATE -> Truncate(name(b), b.getLong())
                COMMIT -> Commit(name(b), name(b), b.getLong())
                DELETE_CONSUMER -> DeleteConsumer(name(b))
                else -> null
            }
            record.takeIf { !b.hasRemaining() }
        } catch (e: java.nio.BufferUnderflowException) {
            null
        } catch (e: CharacterCodingException) {
            null
        }

        private fun name(b: ByteBuffer): String {
            val n = b.getShort().toInt() and 0xFFFF
            if (n > b.remaining()) throw java.nio.BufferUnderflowException()
            val bytes = ByteArray(n)
            b.get(bytes)
            return bytes.decodeToString(throwOnInvalidSequence = true)
        }
    }
}
