package dev.kwal.engine.commit

import kotlinx.coroutines.channels.Channel
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicLong

/**
 * The requests callers hand to the writer: an unbounded channel behind a bound on the bytes it holds.
 *
 * A request is admitted to the channel while the bytes queued there (payloads plus a fixed overhead per request,
 * see [Request.queuedBytes]) stay within [maxBytes], or when the channel holds nothing (so a request larger than
 * the bound still goes through, alone). Otherwise it is *parked*: kept, in order, and moved into the channel by
 * [taken] as the writer makes room. Its caller stays suspended meanwhile, exactly as if it were queued; parking costs
 * no thread. Requests enter the channel in the order they were offered, parked or not, so calls one caller makes
 * one after another without waiting keep their order.
 *
 * [isIdle] is false from the moment a request is offered until the writer has taken it into a group (and, under the
 * writer's lock, given it its sequence numbers): the inline path writes only when nothing is outstanding, and so
 * never overtakes a request offered before it.
 *
 * Thread-safe: any thread offers; the writer receives and calls [taken].
 */
internal class RequestQueue(private val maxBytes: Long) {
    private val channel = Channel<Request>(Channel.UNLIMITED)

    /** Requests offered and not yet taken by the writer, parked ones included. */
    private val outstanding = AtomicInteger()

    /** Bytes of the requests in [channel] (and taken but not yet counted off by [taken]). */
    private val queuedBytes = AtomicLong()

    /** Requests waiting for room, oldest first. Guarded by `this`. */
    private val parked = ArrayDeque<Request>()

    /** [parked]'s size, readable without the lock; raised before a parker's last look at [queuedBytes]. */
    @Volatile private var parkedCount = 0

    /** Set by [close]: no new request is accepted; the channel closes once [parked] is empty. Guarded by `this`. */
    private var closing = false

    /** Whether no request is outstanding: every request offered so far has been taken into a group. */
    val isIdle: Boolean get() = outstanding.get() == 0

    /** Queues [request], parking it if there is no room; false if the queue no longer accepts requests. */
    fun offer(request: Request): Boolean {
        outstanding.incrementAndGet()
        val bytes = request.queuedBytes
        if (parkedCount == 0 && tryReserve(bytes)) {
            if (channel.trySend(request).isSuccess) return true
            unreserve(bytes)
            outstanding.decrementAndGet()
            return false
        }
        synchronized(this) {
            if (closing) {
                outstanding.decrementAndGet()
                return false
            }
            // Announce the parker before the last look at the bytes: a concurrent [taken] either sees it and moves it,
            // or released its bytes before this look, which then succeeds.
            parkedCount++
            if (parked.isEmpty() && tryReserve(bytes)) {
                parkedCount--
                if (channel.trySend(request).isSuccess) return true
                unreserve(bytes)
                outstanding.decrementAndGet()
                return false
            }
            parked.addLast(request)
        }
        return true
    }

    /** The next request, suspending until one comes; null once the queue is closed and empty. */
    suspend fun receive(): Request? = channel.receiveCatching().getOrNull()

    /** The next request if one is queued, else null. */
    fun tryReceive(): Request? = channel.tryReceive().getOrNull()

    /**
     * The writer has taken [count] requests of [bytes] in all into a group (and assigned their sequences): they no
     * longer count as outstanding, and their room goes to parked requests, oldest first.
     */
    fun taken(count: Int, bytes: Long) {
        if (count == 0) return
        unreserve(bytes)
        outstanding.addAndGet(-count)
        if (parkedCount == 0) return
        synchronized(this) {
            while (parked.isNotEmpty() && tryReserve(parked.first().queuedBytes)) {
                val r = parked.removeFirst()
                parkedCount--
                channel.trySend(r) // the channel stays open while anything is parked
            }
            if (closing && parked.isEmpty()) channel.close()
        }
    }

    /**
     * Refuses new requests; the writer still gets every request offered before, parked ones included, then the
     * channel ends.
     */
    fun close() {
        synchronized(this) {
            closing = true
            if (parked.isEmpty()) channel.close()
        }
    }

    /**
     * Refuses new requests and ends the channel with [error] after what it holds; fails every parked request with
     * [error]. The writer fails what the channel still holds.
     */
    fun fail(error: Throwable) {
        val failed: List<Request>
        synchronized(this) {
            closing = true
            failed = parked.toList()
            parked.clear()
            parkedCount = 0
            channel.close(error)
        }
        for (r in failed) r.fail(error)
    }

    private fun tryReserve(bytes: Long): Boolean {
        while (true) {
            val used = queuedBytes.get()
            if (used > 0 && used + bytes > maxBytes) return false
            if (queuedBytes.compareAndSet(used, used + bytes)) return true
        }
    }

    private fun unreserve(bytes: Long) {
        queuedBytes.addAndGet(-bytes)
    }
}
