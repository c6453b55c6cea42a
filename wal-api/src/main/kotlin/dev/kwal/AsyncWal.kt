package dev.kwal

import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.DelicateCoroutinesApi
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.GlobalScope
import kotlinx.coroutines.future.future
import kotlinx.coroutines.runBlocking
import java.util.concurrent.CompletableFuture
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
 */
@OptIn(DelicateCoroutinesApi::class)
public class AsyncWal private constructor(
    /** The log this wraps. */
    public val wal: Wal,
) : AutoCloseable {

    /** See [Wal.append]; the log's default durability. */
    public fun append(topic: String, payload: ByteArray): CompletableFuture<Long> = append(topic, payload, null)

    /** See [Wal.append]. */
    public fun append(topic: String, payload: ByteArray, durability: Durability?): CompletableFuture<Long> =
        launch { wal.append(topic, payload, durability) }

    /** See [Wal.appendBatch]; the log's default durability. */
    public fun appendBatch(topic: String, payloads: List<ByteArray>): CompletableFuture<LongRange> =
        appendBatch(topic, payloads, null)

    /** See [Wal.appendBatch]. */
    public fun appendBatch(topic: String, payloads: List<ByteArray>, durability: Durability?): CompletableFuture<LongRange> =
        launch { wal.appendBatch(topic, payloads, durability) }

    /** See [Wal.sync]. */
    public fun sync(): CompletableFuture<Void?> = launch { wal.sync(); null }

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
     * it is acknowledged (see [Wal.follow]), on a thread of [Dispatchers.IO], one call at a time. Cancel the
     * returned future to stop; it completes normally when the log closes, and exceptionally if [action] throws
     * or a record fails its checks.
     */
    public fun follow(topic: String, from: Long, action: Consumer<Record>): CompletableFuture<Void?> =
        GlobalScope.future(Dispatchers.IO) { wal.follow(topic, from).collect { action.accept(it) }; null }

    /** See [Wal.topics]. */
    public fun topics(): Set<String> = wal.topics()

    /** See [Wal.nextSequence]. */
    public fun nextSequence(topic: String): Long = wal.nextSequence(topic)

    /** See [Wal.close]. */
    override fun close(): Unit = wal.close()

    private fun <T> launch(block: suspend () -> T): CompletableFuture<T> =
        GlobalScope.future(Dispatchers.Unconfined, CoroutineStart.UNDISPATCHED) { block() }

    public companion object {
        /** Wraps [wal]. */
        @JvmStatic public fun of(wal: Wal): AsyncWal = AsyncWal(wal)
    }
}
