package dev.kwal.crash

import dev.kwal.AsyncWal
import dev.kwal.Durability
import dev.kwal.Wal
import java.io.PrintStream
import java.util.concurrent.CompletableFuture
import java.util.concurrent.Executor
import java.util.concurrent.Executors
import java.util.concurrent.Semaphore
import kotlin.random.Random

/**
 * The Java facade under a crash, run by [AppenderProcess] next to its coroutine writers: an [AsyncWal] over the
 * child's log (its bound on pending calls and its callback executor drawn from the seed) and
 * - a **pipeliner** thread that appends to its own topic [PIPE] without waiting (singles and batches): calls one
 *   thread makes keep their order, so its k-th call must get the sequence `nextSequence(PIPE)` at start plus the
 *   records of the calls before it. Each future, when it completes, checks its sequence and prints its acks;
 * - two **chainer** threads whose appends have dependents that append again: `append(..).thenCompose { append(..) }`,
 *   `appendBatch(..).thenCompose { .. }` and `thenRun { append(..).join() }` (blocking in a callback, which the
 *   facade allows: its callbacks never run on the log's own threads). A dependent append to the same topic was
 *   called after its predecessor was acknowledged, so its sequence must be larger.
 *
 * Every acknowledged record is printed as `ACK`, as the coroutine writers' are; a broken expectation or a failed
 * call (there is no failure before the kill) prints `ERROR` and ends the process.
 */
class FacadeLoad(
    private val wal: Wal,
    private val seed: Long,
    private val o: TortureOptions,
    private val out: PrintStream,
) {
    private val setup = Random(seed * 131 + 7)
    private val executor: Executor? = if (setup.nextBoolean()) {
        null
    } else {
        Executors.newCachedThreadPool { r ->
            Thread(r, "facade-callback").apply {
                isDaemon =
                    true
            }
        }
    }
    private val maxPending: Long = when (setup.nextInt(4)) {
        0 -> 4L shl 10
        1 -> 256L shl 10
        else -> 4L shl 20
    }
    private val aw = AsyncWal.of(wal, maxPending, AsyncWal.WhenFull.WAIT, executor)

    fun start() {
        thread("pipeliner") { pipeliner(Random(seed * 131 + 11)) }
        for (i in 0 until 2) thread("chainer-$i") { chainer(i, Random(seed * 131 + 13 + i)) }
    }

    private fun thread(name: String, body: () -> Unit) = Thread({
        try {
            body()
        } catch (e: Throwable) {
            AppenderProcess.fatal(out, "$name threw $e")
        }
    }, name).apply {
        isDaemon = true
        start()
    }

    private fun durability(r: Random): Durability? = AppenderProcess.durability("mixed", r)

    private fun fail(msg: String): Nothing = AppenderProcess.fatal(out, msg)

    private fun pipeliner(r: Random) {
        val topic = PIPE
        val min = CrashPayloads.minSize(topic)
        var expect = wal.nextSequence(topic)
        var n = 0L
        while (true) {
            if (r.nextInt(8) == 0) {
                val sizes = o.fitBatch(List(r.nextInt(1, 6)) { o.recordSize(r, min) }, maxBytes = 256L shl 10)
                val payloads = sizes.mapIndexed { i, s ->
                    CrashPayloads.make(topic, seed, CrashPayloads.batchWriter(PIPE_WRITER, i, sizes.size), n++, s)
                }
                val want = expect until expect + payloads.size
                expect += payloads.size
                aw.appendBatch(topic, payloads, durability(r)).whenComplete { range, e ->
                    if (e != null) fail("pipelined batch $want failed: $e")
                    payloads.forEachIndexed { i, p -> AppenderProcess.ack(out, topic, range.first + i, p) }
                    if (range.first until range.end != want) {
                        fail("pipelined batch got $range, but its call order gives $want")
                    }
                }
            } else {
                val p = CrashPayloads.make(topic, seed, PIPE_WRITER, n++, o.recordSize(r, min))
                val want = expect++
                aw.append(topic, p, durability(r)).whenComplete { seq, e ->
                    if (e != null) fail("pipelined append $want failed: $e")
                    AppenderProcess.ack(out, topic, seq, p)
                    if (seq != want) fail("pipelined append got $topic/$seq, but its call order gives $want")
                }
            }
        }
    }

    private fun chainer(i: Int, r: Random) {
        val writer = CHAIN_WRITER + i
        val outstanding = Semaphore(4)
        var n = 0L
        fun topic() = CrashOptions.TOPICS[r.nextInt(CrashOptions.TOPICS.size)]
        fun single(topic: String) =
            CrashPayloads.make(topic, seed, writer, n++, o.recordSize(r, CrashPayloads.minSize(topic)))
        fun batch(topic: String): List<ByteArray> {
            val sizes = o.fitBatch(
                List(r.nextInt(1, 5)) { o.recordSize(r, CrashPayloads.minSize(topic)) },
                maxBytes =
                256L shl 10,
            )
            return sizes.mapIndexed { k, s ->
                CrashPayloads.make(topic, seed, CrashPayloads.batchWriter(writer, k, sizes.size), n++, s)
            }
        }
        fun after(what: String, topic: String, prev: Long, next: Long) {
            if (next <=
                prev
            ) {
                fail("chainer $i: $what to $topic got $next, not after $prev, acknowledged before it was called")
            }
        }
        while (true) {
            outstanding.acquire()
            // Everything a chain appends is drawn here, on this thread: the callbacks run elsewhere.
            val t1 = topic()
            val t2 = if (r.nextBoolean()) t1 else topic()
            val kind = r.nextInt(3)
            val d1 = durability(r)
            val d2 = durability(r)
            val d3 = durability(r)
            val chain: CompletableFuture<*> = when (kind) {
                0 -> {
                    // append, then append again from the callback, then a blocking append in a callback
                    val p1 = single(t1)
                    val p2 = single(t2)
                    val p3 = single(t1)
                    aw.append(t1, p1, d1).thenCompose { s1 ->
                        AppenderProcess.ack(out, t1, s1, p1)
                        aw.append(t2, p2, d2).thenApply { s2 ->
                            AppenderProcess.ack(out, t2, s2, p2)
                            if (t2 == t1) after("a dependent append", t2, s1, s2)
                            s1
                        }
                    }.thenAccept { s1 ->
                        val s3 = aw.append(t1, p3, d3).join()
                        AppenderProcess.ack(out, t1, s3, p3)
                        after("a blocking append in a callback", t1, s1, s3)
                    }
                }

                1 -> {
                    // a batch whose dependent appends a batch
                    val b1 = batch(t1)
                    val b2 = batch(t2)
                    aw.appendBatch(t1, b1, d1).thenCompose { r1 ->
                        b1.forEachIndexed { k, p -> AppenderProcess.ack(out, t1, r1.first + k, p) }
                        aw.appendBatch(t2, b2, d2).thenAccept { r2 ->
                            b2.forEachIndexed { k, p -> AppenderProcess.ack(out, t2, r2.first + k, p) }
                            if (t2 == t1) after("a dependent batch", t2, r1.last, r2.first)
                        }
                    }
                }

                else -> {
                    // thenRun: the dependent does not use the result, it only appends when the first is acknowledged
                    val p1 = single(t1)
                    val p2 = single(t2)
                    val first = aw.append(t1, p1, d1)
                    first.thenRun {
                        val s1 = first.join()
                        AppenderProcess.ack(out, t1, s1, p1)
                        val s2 = aw.append(t2, p2, d2).join()
                        AppenderProcess.ack(out, t2, s2, p2)
                        if (t2 == t1) after("an append in thenRun", t2, s1, s2)
                    }
                }
            }
            chain.whenComplete { _, e ->
                outstanding.release()
                if (e != null) fail("chainer $i: a chain failed: $e")
            }
        }
    }

    companion object {
        /** The topic only the pipeliner appends to (in the child). */
        const val PIPE = "pipe"
        private const val PIPE_WRITER = 200
        private const val CHAIN_WRITER = 300
    }
}
