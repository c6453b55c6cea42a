package dev.kwal

import dev.kwal.engine.Kwal
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import java.util.concurrent.CancellationException
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.TimeUnit

class AsyncWalFollowSpec :
    FunSpec({
        test("AsyncWal.follow delivers existing and new records until cancelled, and completes when the log closes") {
            val dir = TestLogs.tempDir()
            val wal = AsyncWal.of(Kwal.open(TestLogs.small(dir)))
            repeat(3) { wal.append("t", byteArrayOf(it.toByte())).join() }
            val seen = CopyOnWriteArrayList<Long>()
            val following = wal.follow("t", 1) { seen.add(it.sequence) }
            val cancelled = wal.follow("t", 0) { }
            repeat(3) { wal.append("t", byteArrayOf(it.toByte())).join() }
            val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10)
            while (seen.size < 5 && System.nanoTime() < deadline) Thread.sleep(5)
            seen.toList() shouldBe listOf(1L, 2L, 3L, 4L, 5L)
            cancelled.cancel(true)
            runCatching { cancelled.get(10, TimeUnit.SECONDS) }.exceptionOrNull().let {
                (it is CancellationException) shouldBe
                    true
            }
            wal.close()
            following.get(10, TimeUnit.SECONDS) shouldBe null
        }

        test("AsyncWal.follow calls its action on the callback executor given to AsyncWal.of") {
            val pool =
                java.util.concurrent.Executors.newFixedThreadPool(2) { r ->
                    Thread(r, "app-callbacks").apply { isDaemon = true }
                }
            try {
                AsyncWal.of(Kwal.open(TestLogs.small(TestLogs.tempDir())), callbackExecutor = pool).use { wal ->
                    wal.append("t", byteArrayOf(1)).join()
                    val threads = java.util.concurrent.LinkedBlockingQueue<String>()
                    val byPosition = wal.follow("t", 0) {
                        threads.add(Thread.currentThread().name.substringBefore(" @"))
                    }
                    val byTime = wal.follow("t", java.time.Instant.EPOCH) {
                        threads.add(Thread.currentThread().name.substringBefore(" @"))
                    }
                    wal.commit("c", "t", 0).join()
                    val byConsumer = wal.follow("t", "c") {
                        threads.add(Thread.currentThread().name.substringBefore(" @"))
                    }
                    List(3) { threads.poll(10, TimeUnit.SECONDS) } shouldBe List(3) { "app-callbacks" }
                    listOf(byPosition, byTime, byConsumer).forEach { it.cancel(true) }
                }
            } finally {
                pool.shutdownNow()
            }
        }
    })
