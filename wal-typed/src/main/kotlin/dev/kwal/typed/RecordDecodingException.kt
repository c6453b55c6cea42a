package dev.kwal.typed

import dev.kwal.WalException

/**
 * Record [sequence] of [topic] is in the log, intact (its checksum holds), but its payload is not a value the
 * topic's [TopicCodec] can decode: written by an incompatible version of the type, by another format, or as raw bytes.
 *
 * A typed read never skips such a record: [TypedTopic.replay] and [TypedTopic.follow] end with this error at it,
 * after the records before it; [TypedTopic.read] throws it. To go past it, read on from `sequence + 1` (or commit a
 * consumer's position past it), or read the raw bytes with [dev.kwal.Wal.read]. [cause] is the codec's error.
 */
public class RecordDecodingException(public val topic: String, public val sequence: Long, cause: Throwable) :
    WalException("record $sequence of topic \"$topic\" cannot be decoded: $cause", cause)
