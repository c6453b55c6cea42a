package dev.kwal

import dev.kwal.engine.Kwal
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.types.shouldBeInstanceOf
import java.util.concurrent.CompletableFuture
import java.util.concurrent.CompletionException
import java.util.concurrent.ExecutionException
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.function.Consumer

/** [AsyncWal], the Java facade: futures complete like the suspending calls, forEach loops, close closes. */
class AsyncWalSpec :
    FunSpec({
        val newDir = Contract.dirs(this)

        fun <T> CompletableFuture<T>.await(): T = get(30, TimeUnit.SECONDS)

        test("append and appendBatch futures complete with sequences; forEach reads them back") {
            val dir = newDir()
            AsyncWal.of(Kwal.open(TestLogs.small(dir))).use { wal ->
                wal.append("j", "a".encodeToByteArray()).await() shouldBe 0L
                wal.append("j", "b".encodeToByteArray(), Durability.None).await() shouldBe 1L
                wal.appendBatch("j", listOf("c".encodeToByteArray(), "d".encodeToByteArray())).await() shouldBe
                    BatchPositions(2, 2)
                wal.appendBatch("j", listOf("e".encodeToByteArray()), Durability.interval(10)).await() shouldBe
                    BatchPositions(4, 1)
                wal.appendBatch("j", emptyList()).await().let {
                    it.isEmpty shouldBe true
                    it.first shouldBe 5L
                }
                wal.append("j", "f".encodeToByteArray(), Durability.Sync).await() shouldBe 5L
                wal.sync().await()
                wal.topics() shouldBe setOf("j")
                wal.nextSequence("j") shouldBe 6L
                wal.nextSequence("none") shouldBe 0L
                val seen = ArrayList<String>()
                wal.forEach("j", 0, Consumer { seen += "${it.sequence}:${it.payload.decodeToString()}" })
                seen shouldBe listOf("0:a", "1:b", "2:c", "3:d", "4:e", "5:f")
                val tail = ArrayList<Long>()
                wal.forEach("j", 4) { tail += it.sequence }
                tail shouldBe listOf(4L, 5L)
                wal.forEach("none", 0) { error("no records expected") }
            }
            AsyncWal.of(Kwal.open(TestLogs.small(dir))).use { wal ->
                val seen = ArrayList<String>()
                wal.forEach("j", 0) { seen += it.payload.decodeToString() }
                seen shouldBe listOf("a", "b", "c", "d", "e", "f")
            }
        }

        test("read, read a page, seek, forEach and follow from an Instant: futures and loops as the Wal calls") {
            AsyncWal.of(Kwal.open(TestLogs.small(newDir()))).use { wal ->
                wal.appendBatch("r", List(20) { "$it".encodeToByteArray() }).await()
                val stamp = wal.read("r", 7).await()!!.let {
                    it.sequence shouldBe 7L
                    it.payload.decodeToString() shouldBe "7"
                    it.timestampMillis
                }
                wal.read("r", 20).await() shouldBe null
                wal.read("none", 0).await() shouldBe null
                wal.read("r", 5, 3, Int.MAX_VALUE).await().map { it.sequence } shouldBe listOf(5L, 6L, 7L)
                wal.read("r", 5, 100, 1).await().map { it.sequence } shouldBe listOf(5L) // the first alone
                wal.read("r", 20, 3, 100).await() shouldBe emptyList()
                shouldThrow<ExecutionException> { wal.read("r", -1).await() }
                    .cause.shouldBeInstanceOf<IllegalArgumentException>()
                shouldThrow<ExecutionException> { wal.read("r", 0, 0, 1).await() }
                    .cause.shouldBeInstanceOf<IllegalArgumentException>()
                shouldThrow<ExecutionException> { wal.seek("../r", 0).await() }
                    .cause.shouldBeInstanceOf<InvalidTopicException>()
                wal.seek("r", stamp).await() shouldBe 0L // one group: every record has its stamp
                wal.seek("r", stamp + 1).await() shouldBe 20L
                wal.seek("r", Long.MIN_VALUE).await() shouldBe 0L
                val seen = ArrayList<Long>()
                wal.forEach("r", java.time.Instant.ofEpochMilli(stamp)) { seen += it.sequence }
                seen shouldBe (0L until 20).toList()
                wal.forEach("r", java.time.Instant.ofEpochMilli(stamp + 1)) { error("no records expected") }
                // A follower from a time after every record gets only the ones appended later, and ends at close.
                val live = java.util.concurrent.CopyOnWriteArrayList<Long>()
                val following = wal.follow("r", java.time.Instant.ofEpochMilli(stamp + 1)) { live.add(it.sequence) }
                // Appends until one is stamped after `stamp` (the clock moved on): seek then stops meeting the end.
                while (wal.seek("r", stamp + 1).await() == wal.nextSequence("r")) {
                    wal.append("r", byteArrayOf(1)).await()
                }
                val last = wal.nextSequence("r")
                val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30)
                while (live.lastOrNull() != last - 1 && System.nanoTime() < deadline) Thread.sleep(5)
                live.first() shouldBe wal.seek("r", stamp + 1).await()
                live.toList() shouldBe (live.first() until last).toList()
                wal.close()
                following.get(30, TimeUnit.SECONDS) shouldBe null
            }
        }

        test("futures from many threads get dense sequences") {
            val dir = newDir()
            val pool = Executors.newFixedThreadPool(4)
            try {
                AsyncWal.of(Kwal.open(TestLogs.small(dir))).use { wal ->
                    val futures = (0 until 4).map { t ->
                        CompletableFuture.supplyAsync({
                            (0 until 250).map { i ->
                                wal.append("mt", "$t-$i".encodeToByteArray())
                            }.map { it.get(30, TimeUnit.SECONDS) }
                        }, pool)
                    }
                    val seqs = futures.flatMap { it.await() }
                    seqs.sorted() shouldBe (0L until 1000).toList()
                    var count = 0L
                    wal.forEach("mt", 0) {
                        it.sequence shouldBe count
                        count++
                    }
                    count shouldBe 1000L
                }
            } finally {
                pool.shutdownNow()
            }
        }

        test("errors complete the futures exceptionally with the Wal's exceptions") {
            AsyncWal.of(Kwal.open(TestLogs.small(newDir()))).use { wal ->
                val bad = wal.append("../x", byteArrayOf(1))
                shouldThrow<ExecutionException> { bad.await() }.cause.shouldBeInstanceOf<InvalidTopicException>()
                shouldThrow<CompletionException> { bad.join() }.cause.shouldBeInstanceOf<InvalidTopicException>()
                shouldThrow<ExecutionException> {
                    wal.append("t", ByteArray(1 shl 20)).await()
                }.cause.shouldBeInstanceOf<RecordTooLargeException>()
                shouldThrow<ExecutionException> {
                    wal.appendBatch("", listOf(byteArrayOf(1))).await()
                }.cause.shouldBeInstanceOf<InvalidTopicException>()
                shouldThrow<InvalidTopicException> { wal.forEach("a/b", 0) { } }
                wal.nextSequence("t") shouldBe 0L
            }
        }

        test("an exception from the forEach action stops the loop and is rethrown") {
            AsyncWal.of(Kwal.open(TestLogs.small(newDir()))).use { wal ->
                wal.appendBatch("t", List(10) { byteArrayOf(it.toByte()) }).await()
                val seen = ArrayList<Long>()
                val e = shouldThrow<IllegalStateException> {
                    wal.forEach("t", 0) {
                        seen += it.sequence
                        if (it.sequence == 3L) throw IllegalStateException("stop")
                    }
                }
                e.message shouldBe "stop"
                seen shouldBe listOf(0L, 1L, 2L, 3L)
            }
        }

        test("close closes the underlying Wal; later futures fail with WalClosedException") {
            val dir = newDir()
            val inner = Kwal.open(TestLogs.small(dir))
            val wal = AsyncWal.of(inner)
            wal.wal shouldBe inner
            wal.append("t", byteArrayOf(1)).await()
            wal.close()
            shouldThrow<ExecutionException> {
                wal.append("t", byteArrayOf(2)).await()
            }.cause.shouldBeInstanceOf<WalClosedException>()
            shouldThrow<ExecutionException> {
                wal.appendBatch("t", listOf(byteArrayOf(2))).await()
            }.cause.shouldBeInstanceOf<WalClosedException>()
            shouldThrow<ExecutionException> { wal.sync().await() }.cause.shouldBeInstanceOf<WalClosedException>()
            wal.close()
            // the lock was released: the directory opens again, with the one record
            AsyncWal.of(Kwal.open(TestLogs.small(dir))).use { again -> again.nextSequence("t") shouldBe 1L }
        }
    })
