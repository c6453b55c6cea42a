package dev.kwal.typed

import dev.kwal.Record
import java.util.concurrent.Flow.Publisher
import java.util.concurrent.Flow.Subscriber
import java.util.concurrent.Flow.Subscription

/**
 * [records] (a publisher of [AsyncWal][dev.kwal.AsyncWal]) with each record decoded by [topic]. One value per record,
 * so the subscriber's demand and cancellation pass through to [records] unchanged, and every signal comes on the
 * thread [records] signals on. A record that cannot be decoded cancels [records] and ends the subscriber with the
 * [RecordDecodingException]; anything [records] signals after that (it may, Reactive Streams rule 2.8) is dropped.
 */
internal class DecodingPublisher<T>(private val records: Publisher<Record>, private val topic: TypedTopic<T>) :
    Publisher<Typed<T>> {
    override fun subscribe(subscriber: Subscriber<in Typed<T>>) {
        records.subscribe(Decoding(subscriber, topic))
    }

    private class Decoding<T>(private val downstream: Subscriber<in Typed<T>>, private val topic: TypedTopic<T>) :
        Subscriber<Record> {
        // Signals are serial (rule 1.3), so plain fields are enough; volatile for the subscription, which the
        // subscriber may use from any thread.
        @Volatile
        private var upstream: Subscription? = null
        private var done = false

        override fun onSubscribe(subscription: Subscription) {
            upstream = subscription
            downstream.onSubscribe(subscription)
        }

        override fun onNext(item: Record) {
            if (done) return
            val value = try {
                topic.decode(item)
            } catch (e: RecordDecodingException) {
                done = true
                upstream?.cancel()
                downstream.onError(e)
                return
            }
            downstream.onNext(value)
        }

        override fun onError(throwable: Throwable) {
            if (done) return
            done = true
            downstream.onError(throwable)
        }

        override fun onComplete() {
            if (done) return
            done = true
            downstream.onComplete()
        }
    }
}
