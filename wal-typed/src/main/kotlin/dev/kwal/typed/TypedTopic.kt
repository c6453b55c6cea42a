package dev.kwal.typed

import dev.kwal.Durability
import dev.kwal.Record
import dev.kwal.TopicNames
import dev.kwal.Wal
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.map
import kotlinx.serialization.BinaryFormat
import kotlinx.serialization.KSerializer
import kotlinx.serialization.StringFormat
import kotlinx.serialization.serializer
import java.time.Instant

/**
 * One topic of a [Wal] whose records are values of [T], encoded by [codec] (ProtoBuf by default, see [TopicFormats]).
 *
 * ```kotlin
 * @Serializable data class Order(val id: Long, val total: Long, val note: String = "")
 *
 * val orders = wal.topic<Order>("orders")              // or wal.topic("orders", Order.serializer(), TopicFormats.json)
 * val seq = orders.append(Order(1, 250))               // suspends until durable, like Wal.append
 * orders.replay(from = 0).collect { println("${it.sequence}: ${it.value}") }
 * orders.follow(consumer = "billing").collect { bill(it.value); orders.commit("billing", it.sequence + 1) }
 * ```
 *
 * Every call is the [Wal] call of the same name for topic [name], with values in place of payloads, and keeps its
 * promises (durability, order, visibility, batches all-or-nothing, cancellation) and its exceptions. A value that
 * cannot be encoded fails its call with the codec's exception (kotlinx.serialization's `SerializationException`) and
 * nothing is written. A record that cannot be decoded is never skipped: the read fails with
 * [RecordDecodingException] naming its topic and sequence.
 *
 * Thread-safe, and holds nothing but its arguments: make as many as convenient; closing the log is the log's business.
 *
 * @property wal the log.
 * @property name the topic, a valid name (see [TopicNames]).
 * @property codec how values become payloads and back.
 * @throws dev.kwal.InvalidTopicException if [name] is not a valid topic name.
 */
public class TypedTopic<T>(public val wal: Wal, public val name: String, public val codec: TopicCodec<T>) {
    init {
        TopicNames.validate(name)
    }

    /** Appends [value]; returns its sequence once durable under [durability] (see [Wal.append]). */
    public suspend fun append(value: T, durability: Durability? = null): Long =
        wal.append(name, codec.encode(value), durability)

    /**
     * Appends [values] all-or-nothing with consecutive sequences, and returns them (see [Wal.appendBatch]). Every
     * value is encoded before anything is written: one that cannot be encoded fails the call and writes nothing.
     */
    public suspend fun appendBatch(values: List<T>, durability: Durability? = null): LongRange =
        wal.appendBatch(name, values.map { codec.encode(it) }, durability)

    /** The values from [from], to the last acknowledged when collection starts (see [Wal.replay]). */
    public fun replay(from: Long = 0): Flow<Typed<T>> = wal.replay(name, from).map(::decode)

    /** The values from the first stamped at or after [from] (see [Wal.replay] with an [Instant]). */
    public fun replay(from: Instant): Flow<Typed<T>> = wal.replay(name, from).map(::decode)

    /** The values from [from], then each new one as it is acknowledged, until cancelled (see [Wal.follow]). */
    public fun follow(from: Long = 0): Flow<Typed<T>> = wal.follow(name, from).map(::decode)

    /**
     * [follow] from [consumer]'s committed position (see [Wal.follow] with a consumer): [commit] `sequence + 1` after
     * processing each value for at-least-once processing across restarts.
     */
    public fun follow(consumer: String): Flow<Typed<T>> = wal.follow(name, consumer).map(::decode)

    /** [follow] from the first value stamped at or after [from] (see [Wal.follow] with an [Instant]). */
    public fun follow(from: Instant): Flow<Typed<T>> = wal.follow(name, from).map(::decode)

    /** Value [sequence], or null if there is none (see [Wal.read]). */
    public suspend fun read(sequence: Long): Typed<T>? = wal.read(name, sequence)?.let(::decode)

    /** A page of values from [from] (see [Wal.read] with a bound; [maxBytes] counts encoded payloads). */
    public suspend fun read(from: Long, maxRecords: Int, maxBytes: Int = Int.MAX_VALUE): List<Typed<T>> =
        wal.read(name, from, maxRecords, maxBytes).map(::decode)

    /** The first sequence stamped at or after [timestampMillis] (see [Wal.seek]). */
    public suspend fun seek(timestampMillis: Long): Long = wal.seek(name, timestampMillis)

    /** Records [consumer]'s position in this topic: the first sequence it has not processed (see [Wal.commit]). */
    public suspend fun commit(consumer: String, position: Long): Unit = wal.commit(consumer, name, position)

    /** [consumer]'s committed position in this topic, or null if none (see [Wal.committed]). */
    public fun committed(consumer: String): Long? = wal.committed(consumer, name)

    /** The sequence the next value will get: the number of values appended (see [Wal.nextSequence]). */
    public fun nextSequence(): Long = wal.nextSequence(name)

    /** The first readable sequence (see [Wal.firstSequence]). */
    public fun firstSequence(): Long = wal.firstSequence(name)

    /** Hides the values below [sequence] (see [Wal.truncateBefore]). */
    public suspend fun truncateBefore(sequence: Long): Unit = wal.truncateBefore(name, sequence)

    /**
     * [record] decoded, for code that reads the raw [Wal] (it need not be of this topic).
     *
     * @throws RecordDecodingException if [codec] cannot decode its payload.
     */
    public fun decode(record: Record): Typed<T> {
        val value = try {
            codec.decode(record.payload)
        } catch (e: Exception) {
            throw RecordDecodingException(record.topic, record.sequence, e)
        }
        return Typed(record.topic, record.sequence, record.timestampMillis, value)
    }

    override fun toString(): String = "TypedTopic($name, $codec)"
}

/** Topic [name] of this log, its values encoded by [serializer] in [format] (ProtoBuf unless given). */
public fun <T> Wal.topic(
    name: String,
    serializer: KSerializer<T>,
    format: BinaryFormat = TopicFormats.protoBuf,
): TypedTopic<T> = TypedTopic(this, name, TopicCodec.of(serializer, format))

/** Topic [name] of this log, its values encoded by [serializer] in [format] (JSON: [TopicFormats.json]), as UTF-8. */
public fun <T> Wal.topic(name: String, serializer: KSerializer<T>, format: StringFormat): TypedTopic<T> =
    TypedTopic(this, name, TopicCodec.of(serializer, format))

/** Topic [name] of this log, its values encoded by [codec]. */
public fun <T> Wal.topic(name: String, codec: TopicCodec<T>): TypedTopic<T> = TypedTopic(this, name, codec)

/** Topic [name] of this log, its values of the `@Serializable` type [T] in [format] (ProtoBuf unless given). */
public inline fun <reified T> Wal.topic(name: String, format: BinaryFormat = TopicFormats.protoBuf): TypedTopic<T> =
    topic(name, format.serializersModule.serializer<T>(), format)

/** Topic [name] of this log, its values of the `@Serializable` type [T] in [format] (JSON), as UTF-8. */
public inline fun <reified T> Wal.topic(name: String, format: StringFormat): TypedTopic<T> =
    topic(name, format.serializersModule.serializer<T>(), format)
