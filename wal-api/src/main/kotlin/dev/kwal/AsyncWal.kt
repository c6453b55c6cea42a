package dev.kwal

import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.DelicateCoroutinesApi
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.GlobalScope
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.future.future
import kotlinx.coroutines.jdk9.asPublisher
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.yield
import java.nio.file.Path
import java.time.Instant
import java.util.concurrent.CompletableFuture
import java.util.concurrent.Executor
import java.util.concurrent.Flow.Publisher
import java.util.concurrent.Semaphore
import java.util.function.Consumer

/**
 * A [Wal] for Java: every suspending call becomes a [CompletableFuture], replay and follow a
 * [java.util.concurrent.Flow.Publisher] (or a blocking loop, or a callback), and no signature uses a Kotlin type.
 *
 * ```java
 * try (AsyncWal wal = AsyncWal.of(Kwal.open(WalOptions.builder(dir).build()))) {
 *     long seq = wal.append("orders", bytes).join();
 *     BatchPositions batch = wal.appendBatch("orders", List.of(a, b)).join(); // batch.first(), batch.last()
 *     wal.forEach("orders", 0, record -> System.out.println(record.getSequence()));
 *     wal.follow("orders", seq).subscribe(subscriber); // a Flow.Publisher: demand-driven, cancellable
 * }
 * ```
 *
 * The futures complete exactly when the suspending calls of [Wal] would return, with the same
 * exceptions (wrapped in [java.util.concurrent.CompletionException] by `join`). Cancelling a future
 * cancels the call as [Wal.append] describes. Closing it closes the underlying log.
 *
 * ### Thread-safety
 * Every method may be called from any thread, concurrently, including from inside a callback, a dependent action of
 * a future or a subscriber's `onNext` (which may append and wait, or close the log).
 *
 * ### Where callbacks run
 * Everything this facade calls back runs on the *callback executor* given to [of] (by default [Dispatchers.IO]),
 * never on one of the log's own threads (its writer and sync threads):
 * - a future completes there, so its dependent actions (`thenRun`, `thenApply`, ...) added before it completes run
 *   there: they may block, append and wait, or close the log without stalling it. A call that completes at once (an
 *   append written by the calling thread itself, see [Durability], a [read], a call that fails its checks) returns a
 *   completed future, whose dependents run on the thread that adds them, as with any `CompletableFuture`;
 * - the action given to [follow] runs there, one call at a time;
 * - a [Publisher] from [replay] or [follow] reads the log and calls `onNext`, `onError` and `onComplete` there, one
 *   signal at a time (`onSubscribe` runs on the thread that calls `subscribe`, as the Reactive Streams rules allow).
 *
 * [forEach] is the exception by design: it runs on, and blocks, the calling thread.
 *
 * ### Back-pressure
 * A [Publisher] from [replay] or [follow] is cold and demand-driven: each `subscribe` starts its own reading of the
 * topic, which starts only at the subscriber's first `request`. A subscriber that requests nothing gets nothing;
 * after `request(n)` it gets at most `n` more records. Nothing is buffered between the log and the subscriber: the
 * publisher (`kotlinx.coroutines.jdk9.asPublisher`, no buffer, capacity 0) reads the next record only once the
 * previous one was handed to `onNext` and demand remains, and otherwise waits, holding no thread and no record — so
 * a slow subscriber makes the reading wait, never the log buffer. `Subscription.cancel()` stops the reading (and a
 * follow's wait for new records) and releases what it holds, from the callback executor, soon after; a log closed
 * meanwhile is not held up.
 *
 * ### Order
 * Calls one thread makes one after another keep their order, waited for or not: an append gets a later sequence
 * than an append to the same topic the same thread called before it.
 *
 * ### Memory
 * The futures that have not completed yet hold their payloads. This facade bounds them: at most `maxPendingBytes`
 * (given to [of]; payloads plus about 512 bytes per call) may be pending at once. A call that would go past the bound
 * waits for room, blocking its thread, by default ([WhenFull.WAIT]), or returns a future failed with
 * [WalOverloadedException] ([WhenFull.FAIL]). A call larger than the bound on its own waits until nothing is pending.
 * Reads and publishers hold at most the record being handed over, and are not counted.
 *
 * ### What it does not do
 * It does not retry a failed call, time out a call, or make [read] and [seek] asynchronous (they run on the calling
 * thread, as [Wal.read] does). It does not serialize your calls across threads beyond the order above. A [Publisher]
 * ignores `request(n)` with `n <= 0` rather than failing the subscription (what `asPublisher` does), and a subscriber
 * that stops requesting keeps its subscription, and the part of the log it reads, until it requests or cancels.
 * [close] does not wait for followers or subscribers: a follow ends after the last acknowledged record, a replay
 * runs to its end (see [Wal.close]).
 *
 * @sample dev.kwal.samples.docs.javaStyleAppends
 */
@OptIn(DelicateCoroutinesApi::class)
public class AsyncWal private constructor(
    /**
     * The log this wraps, for Kotlin code (its calls suspend; from Java use this facade's counterparts, which
     * cover all of them).
     */
    public val wal: Wal,
    maxPendingBytes: Long,
    private val whenFull: WhenFull,
    callbackExecutor: Executor?,
) : AutoCloseable {

    /** What a call does when the pending calls already hold `maxPendingBytes` (see [of]). */
    public enum class WhenFull {
        /** Block the calling thread until there is room. An interrupt ends the wait with a failed future. */
        WAIT,

        /** Return a future failed with [WalOverloadedException] at once. */
        FAIL,
    }

    private val permits: Int = maxPendingBytes.coerceIn(1, Int.MAX_VALUE.toLong()).toInt()
    private val room = Semaphore(permits, true)
    private val dispatcher: CoroutineDispatcher = callbackExecutor?.asCoroutineDispatcher() ?: Dispatchers.IO

    /** See [Wal.append]; the log's default durability. */
    public fun append(topic: String, payload: ByteArray): CompletableFuture<Long> = append(topic, payload, null)

    /** See [Wal.append]. */
    public fun append(topic: String, payload: ByteArray, durability: Durability?): CompletableFuture<Long> =
        launch(payload.size.toLong()) { wal.append(topic, payload, durability) }

    /** See [Wal.appendBatch]: the batch's positions, with the log's default durability. */
    public fun appendBatch(topic: String, payloads: List<ByteArray>): CompletableFuture<BatchPositions> =
        appendBatch(topic, payloads, null)

    /**
     * See [Wal.appendBatch]: appends [payloads] to [topic] all-or-nothing, and completes with their consecutive
     * positions (for an empty batch: none, from the topic's next sequence).
     *
     * @sample dev.kwal.samples.docs.batchPositions
     */
    public fun appendBatch(
        topic: String,
        payloads: List<ByteArray>,
        durability: Durability?,
    ): CompletableFuture<BatchPositions> = launch(payloads.sumOf { it.size.toLong() }) {
        val range = wal.appendBatch(topic, payloads, durability)
        BatchPositions(range.first, if (range.isEmpty()) 0 else Math.toIntExact(range.last - range.first + 1))
    }

    /** See [Wal.sync]. */
    public fun sync(): CompletableFuture<Void?> = launch(0) {
        wal.sync()
        null
    }

    /**
     * Calls [action] with every acknowledged record of [topic] from [from], in order, on the calling
     * thread, and returns when the last record acknowledged at the start has been passed (see
     * [Wal.replay]). An exception from [action] stops the loop and is rethrown.
     *
     * @throws WalCorruptedException if a record fails its checks.
     */
    @Throws(WalException::class)
    public fun forEach(topic: String, from: Long, action: Consumer<Record>) {
        runBlocking { wal.replay(topic, from).collect { action.accept(it) } }
    }

    /**
     * Calls [action] with every acknowledged record of [topic] from [from], in order, then with each new one as
     * it is acknowledged (see [Wal.follow]), on the callback executor (see "Where callbacks run"), one call at a
     * time. Cancel the returned future to stop; it completes normally when the log closes, and exceptionally if
     * [action] throws, a record fails its checks or the log fails.
     */
    public fun follow(topic: String, from: Long, action: Consumer<Record>): CompletableFuture<Void?> =
        collectOnCallbacks(wal.follow(topic, from), action)

    /**
     * Like [follow] from [consumer]'s committed position in [topic] (see [Wal.follow] with a consumer): for
     * at-least-once processing, call [commit] after each record or batch.
     */
    public fun follow(topic: String, consumer: String, action: Consumer<Record>): CompletableFuture<Void?> =
        collectOnCallbacks(wal.follow(topic, consumer), action)

    /**
     * See [Wal.replayViews]: calls [action] with a [RecordView] of each acknowledged record of [topic] from [from], in
     * order, every record checked ([RecordChecks.ALL]), on the callback executor (see "Where callbacks run"), one call
     * at a time. A view is valid only while [action] runs on it (see [RecordView]): copy what must outlive it. The
     * future completes after the last record acknowledged when the read started, exceptionally if [action] throws or
     * a record fails its check; cancelling it stops the read (within a block or 1,024 records).
     */
    public fun replayViews(topic: String, from: Long, action: Consumer<RecordView>): CompletableFuture<Void?> =
        replayViews(topic, from, RecordChecks.ALL, action)

    /** Like [replayViews], with the record checks [checks] (see [RecordChecks]). */
    public fun replayViews(
        topic: String,
        from: Long,
        checks: RecordChecks,
        action: Consumer<RecordView>,
    ): CompletableFuture<Void?> = GlobalScope.future(dispatcher) {
        wal.replayViews(topic, from, checks, action::accept)
        null
    }

    /**
     * See [Wal.followViews]: like [replayViews], then with each new record as it is acknowledged, on the callback
     * executor, one call at a time. Cancel the returned future to stop; it completes normally when the log closes,
     * and exceptionally if [action] throws, a record fails its checks or the log fails.
     */
    public fun followViews(topic: String, from: Long, action: Consumer<RecordView>): CompletableFuture<Void?> =
        followViews(topic, from, RecordChecks.ALL, action)

    /** Like [followViews], with the record checks [checks] (see [RecordChecks]). */
    public fun followViews(
        topic: String,
        from: Long,
        checks: RecordChecks,
        action: Consumer<RecordView>,
    ): CompletableFuture<Void?> = GlobalScope.future(dispatcher) {
        wal.followViews(topic, from, checks, action::accept)
        null
    }

    /** See [Wal.truncateBefore]. */
    public fun truncateBefore(topic: String, sequence: Long): CompletableFuture<Void?> = launch(0) {
        wal.truncateBefore(topic, sequence)
        null
    }

    /** See [Wal.firstSequence]. */
    public fun firstSequence(topic: String): Long = wal.firstSequence(topic)

    /** See [Wal.applyRetention]. The future completes with what retention did. */
    public fun applyRetention(): CompletableFuture<RetentionReport> = launch(0) { wal.applyRetention() }

    /** See [Wal.commit]. */
    public fun commit(consumer: String, topic: String, position: Long): CompletableFuture<Void?> = launch(0) {
        wal.commit(consumer, topic, position)
        null
    }

    /** See [Wal.committed]: the position, or null if [consumer] has committed none in [topic]. */
    public fun committed(consumer: String, topic: String): Long? = wal.committed(consumer, topic)

    /** See [Wal.consumers]. */
    public fun consumers(): Set<String> = wal.consumers()

    /** See [Wal.deleteConsumer]. */
    public fun deleteConsumer(consumer: String): CompletableFuture<Void?> = launch(0) {
        wal.deleteConsumer(consumer)
        null
    }

    /**
     * Like [forEach], from the first record stamped at or after [from] (see [Wal.replay] with an [Instant]).
     *
     * @throws WalCorruptedException if a record or block header fails its checks.
     */
    @Throws(WalException::class)
    public fun forEach(topic: String, from: Instant, action: Consumer<Record>) {
        runBlocking { wal.replay(topic, from).collect { action.accept(it) } }
    }

    /**
     * Like [follow], from the first record stamped at or after [from] (see [Wal.follow] with an [Instant]): [action]
     * runs on the callback executor, one call at a time; cancel the future to stop.
     */
    public fun follow(topic: String, from: Instant, action: Consumer<Record>): CompletableFuture<Void?> =
        collectOnCallbacks(wal.follow(topic, from), action)

    /**
     * See [Wal.read]: record [sequence] of [topic], or null past the end or for a topic that does not exist. The read
     * runs on the calling thread (through the log's memory maps: a page fault blocks it), so the future is usually
     * complete when returned; it fails with what [Wal.read] throws (an [IllegalArgumentException] for a negative
     * [sequence]).
     */
    public fun read(topic: String, sequence: Long): CompletableFuture<Record?> = now { wal.read(topic, sequence) }

    /**
     * See [Wal.read] with a bound: up to [maxRecords] records of [topic] from [from], whose payloads total at most
     * [maxBytes] after the first (which is returned alone if larger). Runs on the calling thread, as [read].
     */
    public fun read(topic: String, from: Long, maxRecords: Int, maxBytes: Int): CompletableFuture<List<Record>> =
        now { wal.read(topic, from, maxRecords, maxBytes) }

    /**
     * See [Wal.seek]: the first sequence of [topic] stamped at or after [timestampMillis], or its next sequence if
     * none. Runs on the calling thread, as [read].
     */
    public fun seek(topic: String, timestampMillis: Long): CompletableFuture<Long> =
        now { wal.seek(topic, timestampMillis) }

    /** Collects [records] on the callback executor, calling [action] with each; the future ends with the flow. */
    private fun collectOnCallbacks(records: Flow<Record>, action: Consumer<Record>): CompletableFuture<Void?> =
        GlobalScope.future(dispatcher) {
            records.collect { action.accept(it) }
            null
        }

    /**
     * See [Wal.read] with no bound on bytes: up to [maxRecords] records of [topic] from [from]. Runs on the calling
     * thread, as [read].
     */
    public fun read(topic: String, from: Long, maxRecords: Int): CompletableFuture<List<Record>> =
        read(topic, from, maxRecords, Int.MAX_VALUE)

    /**
     * The acknowledged records of [topic] from [from] as a [Publisher] (see [Wal.replay]): it completes after the last
     * record acknowledged when the subscriber first requested. Demand-driven and unbuffered, signalled on the
     * callback executor (see "Back-pressure" and "Where callbacks run"). Each subscriber reads the log afresh.
     * Errors [Wal.replay] throws when collected ([WalCorruptedException], [WalClosedException], ...) reach `onError`.
     *
     * @sample dev.kwal.samples.docs.replayOneAtATime
     */
    public fun replay(topic: String, from: Long): Publisher<Record> = publisher(wal.replay(topic, from))

    /**
     * Like [replay], from the first record stamped at or after [from] (see [Wal.replay] with an [Instant]).
     */
    public fun replay(topic: String, from: Instant): Publisher<Record> = publisher(wal.replay(topic, from))

    /**
     * The records of [topic] from [from], then each new one as it is acknowledged, as a [Publisher] (see
     * [Wal.follow]): it never completes on its own; it completes when the log closes (after the last acknowledged
     * record the subscriber requested), and signals `onError` with [WalFailedException] if the log fails. Cancel the
     * subscription to stop following. Demand-driven and unbuffered, signalled on the callback executor (see
     * "Back-pressure" and "Where callbacks run").
     *
     * @sample dev.kwal.samples.docs.followUntilCancelled
     */
    public fun follow(topic: String, from: Long): Publisher<Record> = publisher(wal.follow(topic, from))

    /**
     * Like [follow] as a [Publisher], from [consumer]'s committed position in [topic] (see [Wal.follow] with a
     * consumer; the position is read when the subscriber first requests). For at-least-once processing, [commit]
     * after each record or batch.
     */
    public fun follow(topic: String, consumer: String): Publisher<Record> = publisher(wal.follow(topic, consumer))

    /**
     * Like [follow] as a [Publisher], from the first record stamped at or after [from] (see [Wal.follow] with an
     * [Instant]).
     */
    public fun follow(topic: String, from: Instant): Publisher<Record> = publisher(wal.follow(topic, from))

    /** [records] as a demand-driven [Publisher] collected, and signalling its subscriber, on [dispatcher]. */
    private fun publisher(records: Flow<Record>): Publisher<Record> = records.asPublisher(dispatcher)

    /** See [Wal.directory]. */
    public fun directory(): Path = wal.directory

    /** See [Wal.recovery]: what recovery found and did when the log was opened. */
    public fun recovery(): RecoveryReport = wal.recovery

    /** See [Wal.topics]. */
    public fun topics(): Set<String> = wal.topics()

    /** See [Wal.nextSequence]. */
    public fun nextSequence(topic: String): Long = wal.nextSequence(topic)

    /** See [Wal.close]. */
    override fun close(): Unit = wal.close()

    /**
     * Runs [block] for a call carrying [payloadBytes], once the bound allows: started on the calling thread, resumed
     * (and so completed) on [dispatcher] if it suspends.
     */
    private fun <T> launch(payloadBytes: Long, block: suspend () -> T): CompletableFuture<T> {
        val cost = (payloadBytes + CALL_OVERHEAD).coerceAtMost(permits.toLong()).toInt()
        when (whenFull) {
            WhenFull.WAIT -> try {
                room.acquire(cost)
            } catch (e: InterruptedException) {
                Thread.currentThread().interrupt()
                return CompletableFuture.failedFuture(WalException("interrupted while waiting for room to append", e))
            }

            WhenFull.FAIL -> if (!room.tryAcquire(cost)) {
                return CompletableFuture.failedFuture(
                    WalOverloadedException("calls holding more than $permits bytes are pending; retry later"),
                )
            }
        }
        // Room is given back before the future completes, so a dependent action may call again at once.
        return GlobalScope.future(dispatcher, CoroutineStart.UNDISPATCHED) {
            try {
                onCallbackExecutor(block)
            } finally {
                room.release(cost)
            }
        }
    }

    /**
     * Runs [block], a read, on the calling thread (completed on [dispatcher] should it suspend). Reads hold no payload
     * while pending, so they are not counted against the bound: a read never waits behind appends.
     */
    private fun <T> now(block: suspend () -> T): CompletableFuture<T> =
        GlobalScope.future(dispatcher, CoroutineStart.UNDISPATCHED) { onCallbackExecutor(block) }

    /**
     * Runs [block], started on the caller's thread (so one thread's calls reach the log in the order it made them),
     * and returns on the callback executor: a call that finished without suspending (an inline append whose sync was
     * made on the caller's thread, say) is dispatched there before its future completes.
     */
    private suspend fun <T> onCallbackExecutor(block: suspend () -> T): T {
        val caller = Thread.currentThread()
        val result = block()
        if (Thread.currentThread() === caller) yield()
        return result
    }

    public companion object {
        /** The default bound on pending calls' bytes: 32 MiB. */
        public const val DEFAULT_MAX_PENDING_BYTES: Long = 32L shl 20

        /** What a call is counted for besides its payloads: about what its future and request hold. */
        private const val CALL_OVERHEAD = 512L

        /**
         * Wraps [wal]. At most [maxPendingBytes] of calls may be pending at once, and a call past that bound waits
         * or fails as [whenFull] says; futures complete, [follow] actions run and publishers read and signal on
         * [callbackExecutor] (null: [Dispatchers.IO]); see "Where callbacks run".
         */
        @JvmStatic
        @JvmOverloads
        public fun of(
            wal: Wal,
            maxPendingBytes: Long = DEFAULT_MAX_PENDING_BYTES,
            whenFull: WhenFull = WhenFull.WAIT,
            callbackExecutor: Executor? = null,
        ): AsyncWal = AsyncWal(wal, maxPendingBytes, whenFull, callbackExecutor)
    }
}
