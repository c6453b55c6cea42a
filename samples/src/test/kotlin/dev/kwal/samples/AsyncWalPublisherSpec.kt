package dev.kwal.samples

import dev.kwal.AsyncWal
import dev.kwal.Record
import dev.kwal.Wal
import dev.kwal.WalOptions
import dev.kwal.engine.Kwal
import dev.kwal.samples.docs.batchPositions
import dev.kwal.samples.docs.followUntilCancelled
import dev.kwal.samples.docs.javaStyleAppends
import dev.kwal.samples.docs.replayOneAtATime
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.onCompletion
import kotlinx.coroutines.flow.onEach
import java.nio.file.Files
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.Flow as JFlow

/**
 * What the Java tests cannot see from outside: how far AsyncWal's publishers read the log ahead of their subscribers
 * (not at all: no buffer), and that a cancelled subscription ends the underlying follow. A [Wal] that counts what its
 * flows emit sits under the facade. Also runs the API docs' `@sample` functions (samples/.../docs) on a real log.
 */
class AsyncWalPublisherSpec :
    FunSpec({
        fun small() = WalOptions.builder(Files.createTempDirectory("kwal-publisher")).segmentSize(1 shl 20)
            .blockSize(64 shl 10).maxRecordSize(16 shl 10).maxGroupBytes(256 shl 10).build()

        /** Counts the records the log's flows emit, and completes [ended] when a follow ends. */
        class CountingWal(private val inner: Wal) : Wal by inner {
            val emitted = AtomicInteger()
            val ended = CompletableFuture<Throwable?>()

            private fun Flow<Record>.counted() =
                onEach { emitted.incrementAndGet() }.onCompletion { ended.complete(it) }

            override fun replay(topic: String, from: Long): Flow<Record> = inner.replay(topic, from).counted()

            override fun follow(topic: String, from: Long): Flow<Record> = inner.follow(topic, from).counted()
        }

        /** Holds its subscription; requests only what the test asks. */
        class Holder : JFlow.Subscriber<Record> {
            val got = AtomicInteger()

            @Volatile lateinit var subscription: JFlow.Subscription

            override fun onSubscribe(subscription: JFlow.Subscription) {
                this.subscription = subscription
            }

            override fun onNext(item: Record) {
                got.incrementAndGet()
            }

            override fun onError(throwable: Throwable) = Unit

            override fun onComplete() = Unit
        }

        fun eventually(what: String, check: () -> Boolean) {
            val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30)
            while (!check()) {
                check(System.nanoTime() < deadline) { "timed out waiting for $what" }
                Thread.sleep(5)
            }
        }

        test("a slow subscriber makes the replay wait: the log is read only as far as the demand") {
            val counting = CountingWal(Kwal.open(small()))
            AsyncWal.of(counting).use { wal ->
                wal.appendBatch("slow", List(1_000) { ByteArray(100) }).join()
                val s = Holder()
                wal.replay("slow", 0).subscribe(s)
                Thread.sleep(200)
                counting.emitted.get() shouldBe 0 // no request, no read
                s.subscription.request(3)
                eventually("3 records") { s.got.get() == 3 }
                Thread.sleep(200)
                s.got.get() shouldBe 3
                counting.emitted.get() shouldBe 3 // not one record read ahead, of the 1,000 there
                s.subscription.request(Long.MAX_VALUE)
                eventually("all records") { s.got.get() == 1_000 }
                counting.ended.get(30, TimeUnit.SECONDS) shouldBe null
            }
        }

        test("cancelling a follow's subscription ends the follow, waiting for demand or for records") {
            for (waitingFor in listOf("demand", "records")) {
                val counting = CountingWal(Kwal.open(small()))
                AsyncWal.of(counting).use { wal ->
                    wal.appendBatch("c", List(10) { ByteArray(10) }).join()
                    val s = Holder()
                    wal.follow("c", 0).subscribe(s)
                    s.subscription.request(if (waitingFor == "demand") 2L else 100L)
                    eventually("records") { s.got.get() == (if (waitingFor == "demand") 2 else 10) }
                    counting.ended.isDone shouldBe false
                    s.subscription.cancel()
                    // The follow ends (cancelled), from the callback executor, while the log is still open.
                    val cause = counting.ended.get(30, TimeUnit.SECONDS)
                    (cause is java.util.concurrent.CancellationException) shouldBe true
                    wal.append("c", ByteArray(1)).join()
                    Thread.sleep(100)
                    s.got.get() shouldBe (if (waitingFor == "demand") 2 else 10)
                }
            }
        }

        test("the API docs' samples run") {
            AsyncWal.of(Kwal.open(small())).use { wal ->
                javaStyleAppends(wal) shouldBe listOf(0L, 1L)
                val at = batchPositions(wal)
                (at.first to at.count) shouldBe (0L to 3)
                replayOneAtATime(wal, "orders").map { it.payload.decodeToString() } shouldBe
                    listOf("order 1", "order 2")
                val follow = followUntilCancelled(wal, "refunds", 1, 3)
                wal.append("refunds", "refund 4".encodeToByteArray()).join()
                follow.get(30, TimeUnit.SECONDS) shouldBe listOf(1L, 2L, 3L)
            }
        }
    })
