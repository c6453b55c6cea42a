package dev.kwal

import dev.kwal.engine.Kwal
import dev.kwal.engine.KwalEngine
import dev.kwal.engine.io.FaultyFileIo
import dev.kwal.engine.io.FaultyFileIo.Op
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.ints.shouldBeLessThanOrEqual
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldNotStartWith
import io.kotest.matchers.types.shouldBeInstanceOf
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import java.io.File
import java.nio.file.Files
import java.nio.file.Path
import java.util.Collections
import java.util.concurrent.CompletableFuture
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import kotlin.time.Duration.Companion.seconds

/**
 * Defects found at the platform's sharp edges (the correctness issue's list), each held by a test that failed before
 * its fix: interrupted caller threads, user callbacks on kwal's threads, segments piling up without syncs, one
 * caller's pipelined calls reordered, and a follower that did not hear of a failure.
 */
class PlatformEdgesSpec :
    FunSpec({
        val newDir = Contract.dirs(this)

        /**
         * Runs [block] in a coroutine on a fresh thread of its own whose interrupt flag is set first; clears it after.
         */
        suspend fun <T> onInterruptedThread(block: suspend () -> T): Pair<Result<T>, Boolean> {
            val executor = Executors.newSingleThreadExecutor { r -> Thread(r, "interrupted-caller") }
            try {
                return withContext(executor.asCoroutineDispatcher()) {
                    Thread.currentThread().interrupt()
                    val result = runCatching { block() }
                    result to Thread.interrupted()
                }
            } finally {
                executor.shutdown()
            }
        }

        // ---- interrupts (FileChannel operations on callers' threads closed channels the whole log shares) ----

        test("a replay on an interrupted thread maps the active segment without closing anything the log shares") {
            Kwal.open(TestLogs.small(newDir())).use { wal ->
                // Sync: nobody has mapped the segment
                repeat(50) { wal.append("t", TestLogs.payload("t", it.toLong())) }
                val (result, stillInterrupted) = onInterruptedThread { wal.replay("t").toList() }
                withClue("the interrupted reader's own call: $result") {
                    result.getOrNull()?.size shouldBe 50
                    stillInterrupted shouldBe true
                }
                wal.append("t", byteArrayOf(1)) shouldBe 50L
                wal.replay("t").toList().size shouldBe 51
            }
        }

        test("AsyncWal.forEach whose action interrupts its thread reads on into an unmapped segment and harms no one") {
            val dir = newDir()
            AsyncWal.of(Kwal.open(TestLogs.small(dir))).use { wal ->
                // 3,000 B records: about 20 fill a 64 KiB segment, so 30 end in the active one, which no one has
                // mapped.
                for (i in 0 until 30) wal.append("t", TestLogs.payload("t", i.toLong(), 3000)).get(30, TimeUnit.SECONDS)
                val seen = ArrayList<Long>()
                val error = runCatching {
                    wal.forEach("t", 0) { r ->
                        seen += r.sequence
                        Thread.currentThread().interrupt()
                    }
                }.exceptionOrNull()
                Thread.interrupted()
                withClue("forEach's own result: $error") {
                    error shouldBe null
                    seen shouldBe (0L until 30).toList()
                }
                wal.append("t", byteArrayOf(1)).get(30, TimeUnit.SECONDS) shouldBe 30L
            }
            Kwal.open(TestLogs.small(dir)).use { it.nextSequence("t") shouldBe 31L }
        }

        test("an interrupted Durability.None append, stored by its caller through a new mapping, stops nothing") {
            val io = FaultyFileIo()
            val dir = newDir()
            KwalEngine.open(TestLogs.small(dir), io).use { wal ->
                wal.append("t", byteArrayOf(0)) shouldBe 0L // Sync, queued: registers the topic, maps nothing
                wal.sync()
                delay(100) // the writer lets go of its lock: the next append is written inline, by its caller
                val stores = io.count(Op.STORE)
                val (result, stillInterrupted) = onInterruptedThread {
                    wal.append("t", byteArrayOf(1), Durability.None)
                }
                withClue("the append went through the caller's first store into the segment") {
                    io.count(Op.STORE) shouldBe stores + 1
                }
                withClue("the interrupted caller's own call: $result") {
                    result.getOrNull() shouldBe 1L
                    stillInterrupted shouldBe true
                }
                wal.append("t", byteArrayOf(2)) shouldBe 2L
                wal.append("t", byteArrayOf(3), Durability.None) shouldBe 3L
            }
            Kwal.open(TestLogs.small(dir)).use { wal ->
                wal.replay("t").toList().map { it.payload[0].toInt() } shouldBe listOf(0, 1, 2, 3)
            }
        }

        test("close() from an interrupted thread closes the log completely and keeps the interrupt") {
            val dir = newDir()
            val wal = Kwal.open(TestLogs.small(dir))
            wal.append("t", byteArrayOf(1))
            val (result, stillInterrupted) = onInterruptedThread { wal.close() }
            result.isSuccess shouldBe true
            stillInterrupted shouldBe true
            Kwal.open(TestLogs.small(dir)).use { it.nextSequence("t") shouldBe 1L } // the lock was released
        }

        /**
         * 4 MiB segments; [fill] appends batches of 16 records of 60 KB: after five the log has rolled once, and the next
         * segment's background build is paced behind the new active one's fill, so it is still being built.
         */
        fun spareInProgress(dir: Path) = TestLogs.small(
            dir,
            Durability.None,
        ).toBuilder().segmentSize(4 shl 20).blockSize(128 shl 10).maxRecordSize(64 shl 10).maxGroupBytes(1 shl 20)
            .build()

        suspend fun Wal.fill(batches: Int) {
            for (b in 0 until batches) {
                appendBatch("t", List(16) { TestLogs.payload("t", 16L * b + it, 60_000) })
            }
        }

        test("close() from an interrupted thread while a spare is being built keeps the interrupt") {
            // It waited for the spare with an interruptible get(), which threw at once and cleared the flag.
            val dir = newDir()
            val wal = Kwal.open(spareInProgress(dir))
            wal.fill(5)
            LogFiles.dataSegments(dir) shouldBe listOf(1, 2)
            val (result, stillInterrupted) = onInterruptedThread { wal.close() }
            withClue("close's own result: $result") {
                result.isSuccess shouldBe true
                stillInterrupted shouldBe true
            }
            Kwal.open(spareInProgress(dir)).use { it.nextSequence("t") shouldBe 80L }
        }

        // ---- Java callbacks (futures completed on kwal's threads ran user code there) ----

        test("a future's callback may append and wait, or close the log, without stalling it").config(
            timeout = 60.seconds,
        ) {
            val dir = newDir()
            val wal = AsyncWal.of(Kwal.open(TestLogs.small(dir)))
            val threads = Collections.synchronizedList(ArrayList<String>())
            // Sync appends are completed by the log's writer or sync thread: their callbacks must run elsewhere.
            val chained = wal.append("c", byteArrayOf(1)).thenApply { first ->
                threads += Thread.currentThread().name
                first to wal.append("c", byteArrayOf(2)).join()
            }
            chained.get(10, TimeUnit.SECONDS) shouldBe (0L to 1L)
            val many = (0 until 200).map { i ->
                wal.append("c", byteArrayOf(i.toByte())).thenApply {
                    threads += Thread.currentThread().name
                    it
                }
            }
            CompletableFuture.allOf(*many.toTypedArray()).get(10, TimeUnit.SECONDS)
            for (name in threads) name shouldNotStartWith "kwal-"
            val closedInCallback = wal.append("c", byteArrayOf(3)).thenRun { wal.close() }
            closedInCallback.get(10, TimeUnit.SECONDS)
            shouldThrow<WalClosedException> {
                runCatching { wal.append("c", byteArrayOf(4)).join() }.exceptionOrNull()?.cause?.let { throw it }
            }
            Kwal.open(TestLogs.small(dir)).use { it.nextSequence("c") shouldBe 203L }
        }

        // ---- sealed segments under Durability.None (never synced, never released) ----

        test("under Durability.None sealed segments are synced and released in the background: descriptors stay few")
            .config(enabled = File("/proc/self/fd").isDirectory) {
                val dir = newDir().toRealPath()
                Kwal.open(TestLogs.small(dir, Durability.None)).use { wal ->
                    // 1,000 records of 3,000 B: about 50 segments of 64 KiB.
                    repeat(1000) { wal.append("n", TestLogs.payload("n", it.toLong(), 3000)) }
                    val segments =
                        Files.list(dir).use { s -> s.filter { it.fileName.toString().endsWith(".kwal") }.count() }
                    withClue("segments written: $segments") { (segments >= 40) shouldBe true }
                    var open = openIn(dir)
                    withTimeout(30_000) {
                        while (open > 5) {
                            delay(20)
                            open = openIn(dir)
                        }
                    }
                    open shouldBeLessThanOrEqual 5 // lock, active and spare segments (and one being prepared)
                    wal.replay("n").toList().size shouldBe 1000
                }
            }

        // ---- one caller's pipelined calls ----

        test("appends one thread makes without waiting keep their order, whatever their durability") {
            AsyncWal.of(Kwal.open(TestLogs.small(newDir()))).use { wal ->
                var reordered = 0
                repeat(300) { i ->
                    val a = wal.append("p", TestLogs.payload("p", 2L * i), Durability.Sync)
                    val b = wal.append("p", TestLogs.payload("p", 2L * i + 1), Durability.None)
                    if (b.get(30, TimeUnit.SECONDS) < a.get(30, TimeUnit.SECONDS)) reordered++
                }
                withClue("pairs whose second append got the earlier sequence") { reordered shouldBe 0 }
                val futures = (0 until 2000).map { i ->
                    wal.append(
                        "q",
                        TestLogs.payload("q", i.toLong()),
                        if (i % 3 ==
                            0
                        ) {
                            Durability.Sync
                        } else {
                            Durability.None
                        },
                    )
                }
                futures.map { it.get(30, TimeUnit.SECONDS) } shouldBe (0L until 2000).toList()
            }
        }

        // ---- memory ----

        test("the encode buffer grown for one large batch is let go once groups are small again") {
            KwalEngine.open(WalOptions(newDir(), maxGroupBytes = 1 shl 20), FaultyFileIo()).use { wal ->
                fun field(of: Any, name: String): Any =
                    of.javaClass.getDeclaredField(name).apply { isAccessible = true }.get(of)
                val encoder = field(field(field(wal, "inline"), "writer"), "encoder")
                fun capacity() = (field(encoder, "buffer") as java.nio.ByteBuffer).capacity()
                wal.append("b", ByteArray(10))
                val base = capacity()
                wal.appendBatch("b", List(40) { ByteArray(1 shl 20) }) // 40 MiB in one group
                (capacity() > base) shouldBe true
                wal.append("b", ByteArray(10))
                capacity() shouldBe base
            }
        }

        // ---- follow and failures ----

        test("an acknowledgement wakes only the followers of its own topic") {
            KwalEngine.open(TestLogs.small(newDir()), FaultyFileIo()).use { wal ->
                wal.append("x", byteArrayOf(0))
                val table = KwalEngine::class.java.getDeclaredField("table").apply { isAccessible = true }.get(wal)
                    as dev.kwal.engine.storage.TopicTable
                withContext(Dispatchers.Default) {
                    val follower = async { wal.follow("x").take(2).toList() }
                    val x = table["x"]!!
                    // the follower waits on x now
                    while ((x.signal() as kotlinx.coroutines.flow.MutableStateFlow<Long>).subscriptionCount.value ==
                        0
                    ) {
                        delay(5)
                    }
                    val before = x.signal().value
                    repeat(100) { wal.append("y", byteArrayOf(it.toByte())) }
                    withClue("appends to another topic woke x's follower") { x.signal().value shouldBe before }
                    wal.append("x", byteArrayOf(1))
                    withTimeout(10_000) { follower.await().size shouldBe 2 }
                }
            }
        }

        test("follow ends with the failure when the log fails, not normally") {
            val io = FaultyFileIo()
            KwalEngine.open(TestLogs.small(newDir()), io).use { wal ->
                wal.append("f", byteArrayOf(0))
                withContext(Dispatchers.Default) {
                    val follower = async { runCatching { wal.follow("f").toList() } }
                    val other = async { runCatching { wal.follow("not-yet").toList() } }
                    delay(100)
                    io.failNth(Op.FORCE, 1)
                    shouldThrow<WalFailedException> { wal.append("f", byteArrayOf(1)) }
                    withTimeout(10_000) {
                        follower.await().exceptionOrNull().shouldBeInstanceOf<WalFailedException>()
                        other.await().exceptionOrNull().shouldBeInstanceOf<WalFailedException>()
                    }
                }
            }
        }
    }) {
    companion object {
        fun openIn(dir: Path): Int = File("/proc/self/fd").listFiles()!!.count { fd ->
            runCatching { Files.readSymbolicLink(fd.toPath()).startsWith(dir) }.getOrDefault(false)
        }
    }
}
