package dev.kwal.typed

import dev.kwal.AsyncWal
import dev.kwal.BatchPositions
import dev.kwal.Durability
import dev.kwal.Record
import dev.kwal.WalOverloadedException
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.booleans.shouldBeFalse
import io.kotest.matchers.booleans.shouldBeTrue
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.shouldBe
import io.kotest.matchers.types.shouldBeInstanceOf
import java.time.Instant
import java.util.concurrent.CompletableFuture
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.CountDownLatch
import java.util.concurrent.ExecutionException
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import java.util.concurrent.Flow
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger

/** A subscriber that requests only what the test asks for, and remembers what came and on which thread. */
private class Manual<T> : Flow.Subscriber<Typed<T>> {
    val values = CopyOnWriteArrayList<Typed<T>>()
    val threads: MutableSet<String> = java.util.concurrent.ConcurrentHashMap.newKeySet()
    val done = CompletableFuture<Unit>()
    val signalsAfterEnd = AtomicInteger()

    @Volatile
    lateinit var subscription: Flow.Subscription

    override fun onSubscribe(s: Flow.Subscription) {
        subscription = s
    }

    override fun onNext(item: Typed<T>) {
        if (done.isDone) signalsAfterEnd.incrementAndGet()
        threads += Thread.currentThread().name.substringBefore(" @") // without the coroutine debug suffix
        values += item
    }

    override fun onError(t: Throwable) {
        if (done.isDone) signalsAfterEnd.incrementAndGet()
        threads += Thread.currentThread().name.substringBefore(" @") // without the coroutine debug suffix
        done.completeExceptionally(t)
    }

    override fun onComplete() {
        if (done.isDone) signalsAfterEnd.incrementAndGet()
        threads += Thread.currentThread().name.substringBefore(" @") // without the coroutine debug suffix
        done.complete(Unit)
    }

    /** Waits until [n] values have arrived, then a little longer to see that no more come. */
    fun expectExactly(n: Int) {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30)
        while (values.size < n && System.nanoTime() < deadline) Thread.sleep(5)
        Thread.sleep(300)
        values.size shouldBe n
    }

    fun sequences(): List<Long> = values.map { it.sequence }
}

/** A publisher of fixed records that records the demand and the cancellation it gets (for DecodingPublisher alone). */
private class FakeRecords(private val records: List<Record>) : Flow.Publisher<Record> {
    val requested = AtomicInteger()
    val cancelled = AtomicInteger()

    override fun subscribe(subscriber: Flow.Subscriber<in Record>) {
        var next = 0
        subscriber.onSubscribe(
            object : Flow.Subscription {
                override fun request(n: Long) {
                    requested.addAndGet(n.toInt())
                    repeat(n.toInt()) {
                        // Signals on regardless of a cancel, as rule 2.8 allows a publisher to.
                        if (next < records.size) subscriber.onNext(records[next++])
                    }
                    if (next == records.size) subscriber.onComplete()
                }

                override fun cancel() {
                    cancelled.incrementAndGet()
                }
            },
        )
    }
}

/** AsyncTypedTopic's Flow.Publishers (AsyncWal's, decoded) and its appendBatch through the facade's bound. */
class AsyncTypedTopicPublisherSpec :
    FunSpec({
        val points = List(12) { Point(it, it * it) }
        lateinit var pool: ExecutorService
        beforeEach { pool = Executors.newFixedThreadPool(2) { r -> Thread(r, "typed-callbacks") } }
        afterEach { pool.shutdownNow() }

        fun facade(wal: dev.kwal.Wal) =
            AsyncWal.of(wal, AsyncWal.DEFAULT_MAX_PENDING_BYTES, AsyncWal.WhenFull.WAIT, pool)

        test("replay: demand-driven, decoded values in order on the callback executor, then onComplete") {
            TypedLogs.withLog { wal, _ ->
                val topic = AsyncTypedTopic.of(facade(wal), "p", Point.encode, Point.decode)
                topic.appendBatch(points.subList(0, 10)).join() shouldBe BatchPositions(0, 10)
                val s = Manual<Point>()
                topic.replay(2).subscribe(s)
                s.expectExactly(0)
                s.subscription.request(3)
                s.expectExactly(3)
                s.done.isDone.shouldBeFalse()
                s.subscription.request(Long.MAX_VALUE)
                s.done.get(30, TimeUnit.SECONDS)
                s.values.map { it.value } shouldBe points.subList(2, 10)
                s.sequences() shouldBe (2L..9L).toList()
                s.values.all { it.topic == "p" } shouldBe true
                s.threads shouldBe setOf("typed-callbacks")
            }
        }

        test("follow from a sequence, from a consumer's cursor and from an Instant; replay from an Instant") {
            TypedLogs.withLog { wal, _ ->
                val topic = AsyncTypedTopic.of(facade(wal), "f", Point.encode, Point.decode)
                topic.appendBatch(points.subList(0, 4)).join()
                Thread.sleep(20)
                val later = Instant.now()
                Thread.sleep(20)
                topic.appendBatch(points.subList(4, 6)).join() shouldBe BatchPositions(4, 2)
                topic.commit("billing", 3).join()

                val bySeq = Manual<Point>()
                val byConsumer = Manual<Point>()
                val byTime = Manual<Point>()
                val replayByTime = Manual<Point>()
                topic.follow(1).subscribe(bySeq)
                topic.follow("billing").subscribe(byConsumer)
                topic.follow(later).subscribe(byTime)
                topic.replay(later).subscribe(replayByTime)
                for (s in listOf(bySeq, byConsumer, byTime, replayByTime)) s.subscription.request(100)
                replayByTime.done.get(30, TimeUnit.SECONDS)
                replayByTime.sequences() shouldBe listOf(4L, 5L)

                topic.append(points[6]).join() shouldBe 6
                bySeq.expectExactly(6)
                byConsumer.expectExactly(4)
                byTime.expectExactly(3)
                bySeq.sequences() shouldBe (1L..6L).toList()
                byConsumer.sequences() shouldBe (3L..6L).toList()
                byTime.sequences() shouldBe (4L..6L).toList()
                byTime.values.last().value shouldBe points[6]

                bySeq.subscription.cancel()
                topic.append(points[7]).join()
                byConsumer.expectExactly(5)
                bySeq.expectExactly(6) // cancelled: #7 never came
                bySeq.done.isDone.shouldBeFalse()
                wal.close() // a follow completes when the log closes
                byConsumer.done.get(30, TimeUnit.SECONDS)
                byTime.done.get(30, TimeUnit.SECONDS)
            }
        }

        test("a record that cannot be decoded reaches onError as RecordDecodingException, after the values before it") {
            TypedLogs.withLog { wal, _ ->
                val async = facade(wal)
                val topic = AsyncTypedTopic.of(async, "bad", Point.encode, Point.decode)
                topic.appendBatch(points.subList(0, 2)).join()
                async.append("bad", byteArrayOf(9, 9, 9)).join() shouldBe 2
                topic.appendBatch(points.subList(2, 4)).join()

                for (publisher in listOf(topic.replay(0), topic.follow(0))) {
                    val s = Manual<Point>()
                    publisher.subscribe(s)
                    s.subscription.request(Long.MAX_VALUE)
                    val e = shouldThrow<ExecutionException> { s.done.get(30, TimeUnit.SECONDS) }
                    val decoding = e.cause.shouldBeInstanceOf<RecordDecodingException>()
                    decoding.topic shouldBe "bad"
                    decoding.sequence shouldBe 2
                    decoding.cause!!.message shouldBe "a Point is 8 bytes, not 3"
                    s.expectExactly(2) // #0 and #1; never #3 or #4 past the bad record
                    s.signalsAfterEnd.get() shouldBe 0
                }
            }
        }

        test("DecodingPublisher: a decode failure cancels upstream once and drops what upstream signals after") {
            TypedLogs.withLog { wal, _ ->
                val good = Record("t", 0, 1, Point.encode.apply(Point(1, 2)))
                val bad = Record("t", 1, 1, byteArrayOf(1))
                val after = Record("t", 2, 1, Point.encode.apply(Point(3, 4)))
                val upstream = FakeRecords(listOf(good, bad, after))
                val topic = TypedTopic(wal, "t", TopicCodec.of(Point.encode, Point.decode))
                val s = Manual<Point>()
                DecodingPublisher(upstream, topic).subscribe(s)
                s.subscription.request(3) // demand passes through unchanged
                upstream.requested.get() shouldBe 3
                upstream.cancelled.get() shouldBe 1
                s.values.map { it.value } shouldBe listOf(Point(1, 2))
                shouldThrow<ExecutionException> { s.done.get() }.cause.shouldBeInstanceOf<RecordDecodingException>()
                    .sequence shouldBe 1
                s.signalsAfterEnd.get() shouldBe 0 // neither #2 nor the onComplete that followed reached the subscriber

                // Without a bad record it is a plain map: values, then onComplete.
                val clean = Manual<Point>()
                DecodingPublisher(FakeRecords(listOf(good, after)), topic).subscribe(clean)
                clean.subscription.request(2)
                clean.done.isDone.shouldBeTrue()
                clean.values.map { it.value } shouldBe listOf(Point(1, 2), Point(3, 4))
            }
        }

        test("appendBatch goes through AsyncWal: completes on the callback executor, counted against the bound") {
            val open = CountDownLatch(1)
            val gated = Executors.newSingleThreadExecutor { r -> Thread(r, "gated-callbacks") }
            gated.execute { open.await() }
            try {
                TypedLogs.withLog { wal, _ ->
                    val async = AsyncWal.of(wal, 2_000, AsyncWal.WhenFull.FAIL, gated)
                    val topic = AsyncTypedTopic.of(async, "g", Point.encode, Point.decode)
                    val first = topic.appendBatch(points.subList(0, 3), Durability.Sync)
                    first.isDone.shouldBeFalse() // cannot complete while its executor is held
                    val thread = first.thenApply { Thread.currentThread().name.substringBefore(" @") }
                    // 200 values of 8 bytes and 512 for the call, beside the pending batch (536): past 2,000 bytes.
                    val refused = topic.appendBatch(List(200) { Point(it, it) })
                    refused.isCompletedExceptionally.shouldBeTrue()
                    shouldThrow<ExecutionException> { refused.get() }.cause.shouldBeInstanceOf<WalOverloadedException>()
                    open.countDown()
                    thread.get(30, TimeUnit.SECONDS) shouldBe "gated-callbacks"
                    first.join() shouldBe BatchPositions(0, 3)
                    topic.appendBatch(List(200) { Point(it, it) }).get(30, TimeUnit.SECONDS) shouldBe
                        BatchPositions(3, 200)
                    topic.nextSequence() shouldBe 203
                }
            } finally {
                open.countDown()
                gated.shutdownNow()
            }
        }

        test("a subscriber's demand is honoured across a follow's live records") {
            TypedLogs.withLog { wal, _ ->
                val topic = AsyncTypedTopic.of(facade(wal), "d", Point.encode, Point.decode)
                val s = Manual<Point>()
                topic.follow(0).subscribe(s)
                s.subscription.request(2)
                topic.appendBatch(points.subList(0, 5)).join()
                s.expectExactly(2)
                s.subscription.request(10)
                s.expectExactly(5)
                s.values.map { it.value } shouldBe points.subList(0, 5)
                s.signalsAfterEnd.get() shouldBe 0
                s.subscription.cancel()
                s.threads.filter { it != "typed-callbacks" }.shouldBeEmpty()
            }
        }
    })
