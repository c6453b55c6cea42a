package dev.kwal

import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.DelicateCoroutinesApi
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.GlobalScope
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.future.future
import kotlinx.coroutines.runBlocking
import java.time.Instant
import java.util.concurrent.CompletableFuture
import java.util.concurrent.Executor
import java.util.concurrent.Semaphore
import java.util.function.Consumer

/**
 * A [Wal] for Java: every suspending call becomes a [CompletableFuture], replay a blocking loop.
 *
 * ```java
 * try (AsyncWal wal = AsyncWal.of(Kwal.open(WalOptions.builder(dir).build()))) {
 *     long seq = wal.append("orders", bytes).join();
 *     wal.forEach("orders", 0, record -> System.out.println(record.getSequence()));
 * }
 * ```
 *
 * The futures complete exactly when the suspending calls of [Wal] would return, with the same
 * exceptions (wrapped in [java.util.concurrent.CompletionException] by `join`). Cancelling a future
 * cancels the call as [Wal.append] describes. Thread-safe. Closing it closes the underlying log.
 *
 * ### Where callbacks run
 * A future completes on a thread of the callback executor given to [of] (by default [Dispatchers.IO]), never on one
 * of the log's own threads: a dependent action (`thenRun`, `thenApply`, ...) may block, append and wait, or close the
 * log without stalling it. A call that completes at once (an append written by the calling thread itself, see
 * [Durability]) returns a completed future, whose dependents run on the thread that adds them, as usual.
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
 */
@OptIn(DelicateCoroutinesApi::class)
public class AsyncWal private constructor(
    /** The log this wraps. */
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

    /** See [Wal.appendBatch]; the log's default durability. */
    public fun appendBatch(topic: String, payloads: List<ByteArray>): CompletableFuture<LongRange> =
        appendBatch(topic, payloads, null)

    /** See [Wal.appendBatch]. */
    public fun appendBatch(
        topic: String,
        payloads: List<ByteArray>,
        durability: Durability?,
    ): CompletableFuture<LongRange> =
        launch(payloads.sumOf { it.size.toLong() }) { wal.appendBatch(topic, payloads, durability) }

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

    /** See [Wal.truncateBefore]. */
    public fun truncateBefore(topic: String, sequence: Long): CompletableFuture<Void?> = launch(0) {
        wal.truncateBefore(topic, sequence)
        null
    }

    /** See [Wal.firstSequence]. */
    public fun firstSequence(topic: String): Long = wal.firstSequence(topic)

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
                block()
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
        GlobalScope.future(dispatcher, CoroutineStart.UNDISPATCHED) { block() }

    public companion object {
        /** The default bound on pending calls' bytes: 32 MiB. */
        public const val DEFAULT_MAX_PENDING_BYTES: Long = 32L shl 20

        /** What a call is counted for besides its payloads: about what its future and request hold. */
        private const val CALL_OVERHEAD = 512L

        /**
         * Wraps [wal]. At most [maxPendingBytes] of calls may be pending at once, and a call past that bound waits
         * or fails as [whenFull] says; futures complete on [callbackExecutor] (null: [Dispatchers.IO]).
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
