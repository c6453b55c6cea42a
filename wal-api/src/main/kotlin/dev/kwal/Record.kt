package dev.kwal

/**
 * One record of a topic, as read back by [Wal.replay], [Wal.follow] or [Wal.read].
 *
 * @property topic the topic the record belongs to.
 * @property sequence its position in the topic: dense, from 0.
 * @property timestampMillis the wall-clock time (ms since the epoch) at which the log wrote the group
 *   that holds the record, or the previous group's time if the clock has stepped back since: timestamps never
 *   decrease in log order, across topics and reopens (see [Wal.seek]).
 * @property payload the bytes that were appended. Each read returns a fresh copy that the caller owns.
 */
public class Record(
    public val topic: String,
    public val sequence: Long,
    public val timestampMillis: Long,
    public val payload: ByteArray,
) {
    override fun equals(other: Any?): Boolean = other is Record && topic == other.topic && sequence == other.sequence &&
        timestampMillis == other.timestampMillis && payload.contentEquals(other.payload)

    override fun hashCode(): Int =
        ((topic.hashCode() * 31 + sequence.hashCode()) * 31 + timestampMillis.hashCode()) * 31 +
            payload.contentHashCode()

    override fun toString(): String =
        "Record(topic=$topic, sequence=$sequence, timestampMillis=$timestampMillis, payload=${payload.size} bytes)"
}
