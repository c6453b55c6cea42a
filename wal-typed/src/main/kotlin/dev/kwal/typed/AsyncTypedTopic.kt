package dev.kwal.typed

import dev.kwal.AsyncWal
import dev.kwal.BatchPositions
import dev.kwal.Durability
import dev.kwal.Record
import dev.kwal.WalException
import kotlinx.serialization.BinaryFormat
import kotlinx.serialization.KSerializer
import kotlinx.serialization.StringFormat
import java.time.Instant
import java.util.concurrent.CompletableFuture
import java.util.concurrent.Flow.Publisher
import java.util.function.Consumer
import java.util.function.Function

/**
 * A typed topic for Java: [TypedTopic] over an [AsyncWal], with [CompletableFuture]s and callbacks.
 *
 * ```java
 * AsyncTypedTopic<Order> orders = AsyncTypedTopic.of(wal, "orders", Order::toBytes, Order::fromBytes);
 * long seq = orders.append(new Order(1, 250)).join();
 * BatchPositions batch = orders.appendBatch(List.of(a, b)).join();
 * orders.forEach(0, t -> System.out.println(t.getSequence() + ": " + t.getValue()));
 * orders.follow("billing").subscribe(subscriber); // a Flow.Publisher<Typed<Order>>: demand-driven, cancellable
 * ```
 *
 * Values are encoded by a [TopicCodec]: a kotlinx.serialization serializer in ProtoBuf or JSON, or two plain
 * functions. Each call is the [AsyncWal] call of the same name for topic [name], with its futures, threads and
 * bounds. A value that cannot be encoded gives a failed future and writes nothing; a record that cannot be decoded
 * fails the read with a [RecordDecodingException] naming its topic and sequence (a future completed exceptionally
 * with it, a publisher's `onError`, or, from [forEach], thrown) and is never skipped.
 *
 * @property wal the log.
 * @property name the topic.
 * @property codec how values become payloads and back.
 */
public class AsyncTypedTopic<T> private constructor(
    public val wal: AsyncWal,
    public val name: String,
    public val codec: TopicCodec<T>,
) {
    private val topic = TypedTopic(wal.wal, name, codec)

    /** Appends [value] with the log's default durability; the future gives its sequence (see [AsyncWal.append]). */
    public fun append(value: T): CompletableFuture<Long> = append(value, null)

    /** Appends [value]; the future gives its sequence once durable under [durability] (see [AsyncWal.append]). */
    public fun append(value: T, durability: Durability?): CompletableFuture<Long> {
        val payload = try {
            codec.encode(value)
        } catch (e: Exception) {
            return CompletableFuture.failedFuture(e)
        }
        return wal.append(name, payload, durability)
    }

    /** [appendBatch] with the log's default durability. */
    public fun appendBatch(values: List<T>): CompletableFuture<BatchPositions> = appendBatch(values, null)

    /**
     * Appends [values] all-or-nothing with consecutive sequences through [AsyncWal.appendBatch]: the future gives
     * their [BatchPositions] (value `i` got `first() + i`; for an empty list, `count() == 0` at the topic's next
     * sequence, nothing written). As every call of the facade, it is counted against the [AsyncWal]'s pending bound
     * and completes on its callback executor. A value that cannot be encoded fails the future and writes nothing.
     */
    public fun appendBatch(values: List<T>, durability: Durability?): CompletableFuture<BatchPositions> {
        val payloads = try {
            values.map { codec.encode(it) }
        } catch (e: Exception) {
            return CompletableFuture.failedFuture(e)
        }
        return wal.appendBatch(name, payloads, durability)
    }

    /**
     * Calls [action] with every value from [from], in order, on the calling thread, and returns after the last one
     * acknowledged at the start (see [AsyncWal.forEach]). An exception from [action] stops the loop and is rethrown.
     *
     * @throws RecordDecodingException at a record that cannot be decoded, after the values before it.
     */
    @Throws(WalException::class)
    public fun forEach(from: Long, action: Consumer<Typed<T>>) {
        wal.forEach(name, from) { action.accept(topic.decode(it)) }
    }

    /**
     * Calls [action] with every value from [from], then with each new one, on the callback executor, one at a time
     * (see [AsyncWal.follow]). Cancel the future to stop; it fails with [RecordDecodingException] at a record that
     * cannot be decoded.
     */
    public fun follow(from: Long, action: Consumer<Typed<T>>): CompletableFuture<Void?> =
        wal.follow(name, from) { action.accept(topic.decode(it)) }

    /**
     * [follow] from [consumer]'s committed position: call [commit] with `sequence + 1` after processing each value,
     * for at-least-once processing across restarts.
     */
    public fun follow(consumer: String, action: Consumer<Typed<T>>): CompletableFuture<Void?> =
        wal.follow(name, consumer) { action.accept(topic.decode(it)) }

    /**
     * Like [forEach], from the first value stamped at or after [from] (see [AsyncWal.forEach] with an [Instant]).
     *
     * @throws RecordDecodingException at a record that cannot be decoded, after the values before it.
     */
    @Throws(WalException::class)
    public fun forEach(from: Instant, action: Consumer<Typed<T>>) {
        wal.forEach(name, from) { action.accept(topic.decode(it)) }
    }

    /** Like [follow], from the first value stamped at or after [from] (see [AsyncWal.follow] with an [Instant]). */
    public fun follow(from: Instant, action: Consumer<Typed<T>>): CompletableFuture<Void?> =
        wal.follow(name, from) { action.accept(topic.decode(it)) }

    /**
     * The values from [from] as a [Publisher]: [AsyncWal.replay]'s publisher, each record decoded, so with its
     * promises — cold, demand-driven and unbuffered (`request(n)` gets at most `n` values), signalled on the callback
     * executor, completing after the last record acknowledged when the subscriber first requested. A record that
     * cannot be decoded cancels the reading and reaches `onError` as a [RecordDecodingException] naming it, after the
     * values before it; errors of the log reach `onError` as they are.
     */
    public fun replay(from: Long): Publisher<Typed<T>> = decoded(wal.replay(name, from))

    /** Like [replay], from the first value stamped at or after [from] (see [AsyncWal.replay] with an [Instant]). */
    public fun replay(from: Instant): Publisher<Typed<T>> = decoded(wal.replay(name, from))

    /**
     * The values from [from], then each new one as it is acknowledged, as a [Publisher] (see [AsyncWal.follow]): it
     * completes when the log closes; cancel the subscription to stop following. Decoding as in [replay].
     */
    public fun follow(from: Long): Publisher<Typed<T>> = decoded(wal.follow(name, from))

    /**
     * Like [follow] as a [Publisher], from [consumer]'s committed position (read when the subscriber first
     * requests): [commit] `sequence + 1` after processing each value, or each batch, for at-least-once processing.
     */
    public fun follow(consumer: String): Publisher<Typed<T>> = decoded(wal.follow(name, consumer))

    /** Like [follow] as a [Publisher], from the first value stamped at or after [from]. */
    public fun follow(from: Instant): Publisher<Typed<T>> = decoded(wal.follow(name, from))

    private fun decoded(records: Publisher<Record>): Publisher<Typed<T>> = DecodingPublisher(records, topic)

    /** Value [sequence], or null if there is none (see [AsyncWal.read]). */
    public fun read(sequence: Long): CompletableFuture<Typed<T>?> =
        wal.read(name, sequence).thenApply { r -> r?.let(topic::decode) }

    /** A page of values from [from] (see [AsyncWal.read] with a bound; [maxBytes] counts encoded payloads). */
    public fun read(from: Long, maxRecords: Int, maxBytes: Int): CompletableFuture<List<Typed<T>>> =
        wal.read(name, from, maxRecords, maxBytes).thenApply { page -> page.map(topic::decode) }

    /** The first sequence stamped at or after [timestampMillis] (see [AsyncWal.seek]). */
    public fun seek(timestampMillis: Long): CompletableFuture<Long> = wal.seek(name, timestampMillis)

    /** Records [consumer]'s position: the first sequence it has not processed (see [AsyncWal.commit]). */
    public fun commit(consumer: String, position: Long): CompletableFuture<Void?> = wal.commit(consumer, name, position)

    /** [consumer]'s committed position in this topic, or null if none (see [AsyncWal.committed]). */
    public fun committed(consumer: String): Long? = wal.committed(consumer, name)

    /** The sequence the next value will get (see [AsyncWal.nextSequence]). */
    public fun nextSequence(): Long = wal.nextSequence(name)

    /** The first readable sequence (see [AsyncWal.firstSequence]). */
    public fun firstSequence(): Long = wal.firstSequence(name)

    /** Hides the values below [sequence] (see [AsyncWal.truncateBefore]). */
    public fun truncateBefore(sequence: Long): CompletableFuture<Void?> = wal.truncateBefore(name, sequence)

    override fun toString(): String = "AsyncTypedTopic($name, $codec)"

    public companion object {
        /**
         * Topic [name] of [wal], its values encoded by [codec].
         *
         * @throws dev.kwal.InvalidTopicException if [name] is not a valid topic name.
         */
        @JvmStatic
        public fun <T> of(wal: AsyncWal, name: String, codec: TopicCodec<T>): AsyncTypedTopic<T> =
            AsyncTypedTopic(wal, name, codec)

        /** Topic [name] of [wal], its values encoded by [serializer] in ProtoBuf ([TopicFormats.protoBuf]). */
        @JvmStatic
        public fun <T> of(wal: AsyncWal, name: String, serializer: KSerializer<T>): AsyncTypedTopic<T> =
            of(wal, name, TopicCodec.of(serializer))

        /** Topic [name] of [wal], its values encoded by [serializer] in [format]. */
        @JvmStatic
        public fun <T> of(
            wal: AsyncWal,
            name: String,
            serializer: KSerializer<T>,
            format: BinaryFormat,
        ): AsyncTypedTopic<T> = of(wal, name, TopicCodec.of(serializer, format))

        /** Topic [name] of [wal], its values encoded by [serializer] in [format] (JSON: [TopicFormats.json]). */
        @JvmStatic
        public fun <T> of(
            wal: AsyncWal,
            name: String,
            serializer: KSerializer<T>,
            format: StringFormat,
        ): AsyncTypedTopic<T> = of(wal, name, TopicCodec.of(serializer, format))

        /** Topic [name] of [wal], its values encoded by [encode] and decoded by [decode]. */
        @JvmStatic
        public fun <T> of(
            wal: AsyncWal,
            name: String,
            encode: Function<T, ByteArray>,
            decode: Function<ByteArray, T>,
        ): AsyncTypedTopic<T> = of(wal, name, TopicCodec.of(encode, decode))
    }
}
