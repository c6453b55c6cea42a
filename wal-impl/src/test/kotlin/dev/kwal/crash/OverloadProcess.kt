package dev.kwal.crash

import dev.kwal.AsyncWal
import dev.kwal.Durability
import dev.kwal.WalOptions
import dev.kwal.WalOverloadedException
import dev.kwal.engine.Kwal
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import java.nio.file.Path
import java.util.concurrent.CompletionException
import java.util.concurrent.CountDownLatch
import java.util.concurrent.atomic.AtomicLong
import kotlin.concurrent.thread

/**
 * A child JVM (started with `-Xmx256m` by [ChildJvm]) that offers far more than it has memory for, without waiting:
 * `main(dir, scenario, count)` prints `RESULT scenario=.. offered=.. acked=.. refused=.. other=..` when every call
 * has been answered, or `ERROR ..` (an `OutOfMemoryError` included) and exits 1.
 *
 * Scenarios:
 * - `java-wait`: 4 threads, [count] un-awaited 100 B appends through [AsyncWal] (which blocks them for room).
 * - `java-fail`: the same through an [AsyncWal] that refuses calls past 1 MiB pending ([AsyncWal.WhenFull.FAIL]).
 * - `java-mib`: 8 threads, [count] un-awaited 1 MiB appends, each with a payload of its own.
 * - `kotlin-mib`: [count] concurrent coroutines appending one shared 1 MiB payload (the log's own queue bound).
 */
object OverloadProcess {
    @JvmStatic
    fun main(args: Array<String>) {
        val dir = Path.of(args[0])
        val scenario = args[1]
        val count = args[2].toLong()
        val acked = AtomicLong()
        val refused = AtomicLong()
        val other = AtomicLong()
        var firstOther: Throwable? = null
        try {
            Kwal.open(WalOptions(dir, segmentSize = 256 shl 20)).use { wal ->
                val answered = CountDownLatch(1)
                val pending = AtomicLong(count)
                fun answer(e: Throwable?) {
                    val cause = (e as? CompletionException)?.cause ?: e
                    when (cause) {
                        null -> acked.incrementAndGet()

                        is WalOverloadedException -> refused.incrementAndGet()

                        else -> {
                            other.incrementAndGet()
                            if (firstOther == null) firstOther = cause
                        }
                    }
                    if (pending.decrementAndGet() == 0L) answered.countDown()
                }
                when (scenario) {
                    "java-wait", "java-fail", "java-mib" -> {
                        val async = if (scenario == "java-fail") {
                            AsyncWal.of(wal, 1L shl 20, AsyncWal.WhenFull.FAIL)
                        } else {
                            AsyncWal.of(wal)
                        }
                        val threads = if (scenario == "java-mib") 8 else 4
                        val size = if (scenario == "java-mib") 1 shl 20 else 100
                        (0 until threads).map { t ->
                            thread(name = "offer-$t") {
                                val n = count / threads + if (t < count % threads) 1 else 0
                                for (i in 0 until n) {
                                    val payload = ByteArray(size) { (it + i).toByte() }
                                    val durability = if (i % 4 == 0L) Durability.None else Durability.Sync
                                    async.append("t$t", payload, durability).whenComplete { _, e -> answer(e) }
                                }
                            }
                        }.forEach { it.join() }
                    }

                    "kotlin-mib" -> {
                        val payload = ByteArray(1 shl 20) { it.toByte() }
                        runBlocking(Dispatchers.Default) {
                            for (i in 0 until count) {
                                launch {
                                    val e = runCatching { wal.append("k${i % 8}", payload) }.exceptionOrNull()
                                    answer(e)
                                }
                            }
                        }
                    }

                    else -> error("unknown scenario $scenario")
                }
                answered.await()
            }
            println(
                "RESULT scenario=$scenario offered=$count acked=${acked.get()} " +
                    "refused=${refused.get()} other=${other.get()}" +
                    (firstOther?.let { " first_other=${it.toString().replace('\n', ' ')}" } ?: ""),
            )
            System.out.flush()
        } catch (e: Throwable) {
            println("ERROR $e")
            System.out.flush()
            Runtime.getRuntime().halt(1)
        }
    }
}
