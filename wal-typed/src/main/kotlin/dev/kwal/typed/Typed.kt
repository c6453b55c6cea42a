package dev.kwal.typed

/**
 * One record of a [TypedTopic] (or an [AsyncTypedTopic]), decoded: where it is in the log and the value it holds.
 *
 * @property topic the topic the record belongs to.
 * @property sequence its position in the topic: dense, from 0 (see [dev.kwal.Record.sequence]).
 * @property timestampMillis when the log wrote it, ms since the epoch (see [dev.kwal.Record.timestampMillis]).
 * @property value the decoded value.
 */
public class Typed<out T>(
    public val topic: String,
    public val sequence: Long,
    public val timestampMillis: Long,
    public val value: T,
) {
    override fun equals(other: Any?): Boolean = other is Typed<*> && topic == other.topic &&
        sequence == other.sequence && timestampMillis == other.timestampMillis && value == other.value

    override fun hashCode(): Int =
        ((topic.hashCode() * 31 + sequence.hashCode()) * 31 + timestampMillis.hashCode()) * 31 + value.hashCode()

    override fun toString(): String =
        "Typed(topic=$topic, sequence=$sequence, timestampMillis=$timestampMillis, value=$value)"
}
