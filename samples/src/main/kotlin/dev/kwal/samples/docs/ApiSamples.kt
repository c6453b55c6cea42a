// The functions the API docs show as `@sample`s (Dokka reads this directory: see wal-api/pom.xml). They use only
// wal-api and the JDK, are compiled with the samples, and ApiSamplesSpec runs each against a real log.
package dev.kwal.samples.docs

import dev.kwal.AsyncWal
import dev.kwal.BatchPositions
import dev.kwal.Durability
import dev.kwal.Record
import java.util.concurrent.CompletableFuture
import java.util.concurrent.Flow
import java.util.concurrent.TimeUnit

/** Two appends through [AsyncWal]: futures, started together, that complete once each record is durable. */
public fun javaStyleAppends(wal: AsyncWal): List<Long> {
    val durable = wal.append("orders", "order 1".encodeToByteArray()) // the log's default: Sync
    val fast = wal.append("orders", "order 2".encodeToByteArray(), Durability.None) // acknowledged once written
    return listOf(durable.join(), fast.join()) // [n, n + 1]: one thread's calls keep their order
}

/** A batch through [AsyncWal]: all-or-nothing, at consecutive positions. */
public fun batchPositions(wal: AsyncWal): BatchPositions {
    val payloads = listOf("refund 1", "refund 2", "refund 3").map { it.encodeToByteArray() }
    val at: BatchPositions = wal.appendBatch("refunds", payloads).join()
    check(at.count == 3 && at.last == at.first + 2 && at.end == at.first + 3)
    return at
}

/** Replays [topic] as a `Flow.Publisher`, requesting one record at a time; returns the records, in order. */
public fun replayOneAtATime(wal: AsyncWal, topic: String): List<Record> {
    val done = CompletableFuture<List<Record>>()
    wal.replay(topic, 0).subscribe(
        object : Flow.Subscriber<Record> {
            private val records = ArrayList<Record>() // signals come one at a time: no lock needed
            private lateinit var subscription: Flow.Subscription

            override fun onSubscribe(subscription: Flow.Subscription) {
                this.subscription = subscription
                subscription.request(1) // nothing is read before this
            }

            override fun onNext(item: Record) { // on AsyncWal's callback executor
                records += item
                subscription.request(1) // the next record is read only now
            }

            override fun onError(throwable: Throwable) {
                done.completeExceptionally(throwable)
            }

            override fun onComplete() {
                done.complete(records)
            }
        },
    )
    return done.get(30, TimeUnit.SECONDS)
}

/** Follows [topic] live from [from] until [count] records have arrived, then cancels; returns their sequences. */
public fun followUntilCancelled(wal: AsyncWal, topic: String, from: Long, count: Int): CompletableFuture<List<Long>> {
    val done = CompletableFuture<List<Long>>()
    wal.follow(topic, from).subscribe(
        object : Flow.Subscriber<Record> {
            private val sequences = ArrayList<Long>()
            private lateinit var subscription: Flow.Subscription

            override fun onSubscribe(subscription: Flow.Subscription) {
                this.subscription = subscription
                subscription.request(count.toLong()) // at most count records, then it waits: no buffering
            }

            override fun onNext(item: Record) {
                sequences += item.sequence
                if (sequences.size == count) {
                    subscription.cancel() // stops following and releases the reader
                    done.complete(sequences)
                }
            }

            override fun onError(throwable: Throwable) {
                done.completeExceptionally(throwable)
            }

            override fun onComplete() {
                done.complete(sequences) // the log closed first
            }
        },
    )
    return done
}
