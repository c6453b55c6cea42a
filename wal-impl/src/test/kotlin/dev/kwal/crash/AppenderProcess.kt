package dev.kwal.crash

import dev.kwal.Durability
import dev.kwal.RecordTooLargeException
import dev.kwal.Wal
import dev.kwal.WalOptions
import dev.kwal.engine.Kwal
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import java.io.BufferedOutputStream
import java.io.FileDescriptor
import java.io.FileOutputStream
import java.io.PrintStream
import java.nio.file.Path
import kotlin.random.Random
import kotlin.system.exitProcess

/** The options every crash child and the parent use: small segments and blocks, so blocks split and segments roll. */
object CrashOptions {
    val TOPICS = listOf("alpha", "beta", "gamma", "delta", "epsilon")

    fun of(dir: Path) = WalOptions(
        directory = dir,
        segmentSize = 64 shl 10,
        blockSize = 8 shl 10,
        maxRecordSize = 4 shl 10,
        maxGroupBytes = 16 shl 10,
        durability = Durability.Sync,
    )

    /** Mostly small records, some spanning half a block, a few near the maximum. */
    fun size(r: Random, topic: String): Int {
        val min = CrashPayloads.minSize(topic)
        return when (r.nextInt(10)) {
            in 0..5 -> r.nextInt(min, 200)
            in 6..8 -> r.nextInt(200, 3000)
            else -> r.nextInt(3000, (4 shl 10) + 1)
        }
    }

    /** The child exits when its stdin closes, so a dead parent leaves no orphan behind. */
    fun exitWhenParentGoes() {
        Thread({
            try {
                while (System.`in`.read() != -1) continue
            } catch (_: Throwable) {}
            Runtime.getRuntime().halt(3)
        }, "parent-watch").apply { isDaemon = true }.start()
    }

    /** Stdout, one write per line: every println is flushed as a whole. */
    fun out(): PrintStream =
        PrintStream(BufferedOutputStream(FileOutputStream(FileDescriptor.out), 1 shl 16), true, Charsets.UTF_8)
}

/**
 * Child-process main for [dev.kwal.KillSpec] and [dev.kwal.torture.KillTorture]:
 * `AppenderProcess <dir> <seed> [writers] [sync|none|mixed] [options] [facade|plain] [retention]`.
 *
 * Opens the log in `dir`, prints `READY`, then runs `writers` coroutines that append forever, mixing
 * [dev.kwal.Wal.append] and [dev.kwal.Wal.appendBatch] over [CrashOptions.TOPICS] with mixed sizes.
 * Every acknowledged record is reported as soon as its call returns, one line each:
 * `ACK <topic> <seq> <crc32 hex>` (the CRC32 of the whole payload). It runs until killed. A batch's payloads
 * carry their batch (see [CrashPayloads.batchWriter]), so the parent can check batches are all-or-nothing.
 *
 * `sync` and `none` give every call that durability; `mixed` gives each call the log's default, Sync, None or
 * Interval at random. `options` ([TortureOptions.encode]) replaces [CrashOptions.of]: record sizes are then chosen
 * relative to its block ([TortureOptions.recordSize]), batches fit a segment (now and then a long one, of up to
 * 2,047 records, see [TortureOptions.longBatch]; and now and then one that fills a segment to its last byte,
 * which must be accepted, or one a few bytes larger, which must be refused: see [edgeBatch]), and recovery must
 * not have found corruption (a kill damages nothing). `facade` adds the Java
 * facade ([FacadeLoad]): dependent appends in callbacks and a thread pipelining appends without waiting.
 *
 * A writer checks that the sequences it gets for one topic grow; any broken expectation prints `ERROR <what>`
 * and ends the child, which the parent reports.
 */
object AppenderProcess {
    @JvmStatic
    fun main(args: Array<String>) {
        val dir = Path.of(args[0])
        val seed = args[1].toLong()
        val writers = args.getOrNull(2)?.toInt() ?: 32
        // Under "none" every append is acknowledged once in the page cache (a lone writer: the inline path).
        val mode = args.getOrNull(3) ?: "sync"
        val torture = args.getOrNull(4)?.takeIf { it != "-" }?.let { TortureOptions.decode(it) }
        val facade = args.getOrNull(5) == "facade"
        val retention = torture != null && args.getOrNull(6) == "retention"
        val out = CrashOptions.out()
        CrashOptions.exitWhenParentGoes()
        try {
            val wal = Kwal.open(torture?.of(dir) ?: CrashOptions.of(dir))
            if (torture != null && wal.recovery.corruption != null) {
                fatal(out, "recovery after a SIGKILL found corruption (nothing was damaged): ${wal.recovery}")
            }
            out.println("READY ${wal.recovery}")
            if (facade) FacadeLoad(wal, seed, torture ?: TortureOptions.CLASSIC, out).start()
            runBlocking(Dispatchers.Default) {
                if (retention) launch { retentionLoop(wal, Random(seed * 17 + 5), out) }
                repeat(writers) { w ->
                    launch {
                        val r = Random(seed * 31 + w)
                        var n = 0L
                        val last = HashMap<String, Long>()
                        fun sequenceGrows(topic: String, first: Long, lastSeq: Long) {
                            val prev = last[topic]
                            if (prev != null &&
                                first <= prev
                            ) {
                                fatal(
                                    out,
                                    "writer $w got $topic/$first after $topic/$prev: its own appends out of order",
                                )
                            }
                            last[topic] = lastSeq
                        }
                        while (true) {
                            val topic = CrashOptions.TOPICS[r.nextInt(CrashOptions.TOPICS.size)]
                            val durability = durability(mode, r)
                            val min = CrashPayloads.minSize(topic)
                            if (r.nextInt(4) == 0) {
                                val k = r.nextInt(1, 9)
                                if (torture != null && r.nextInt(40) == 0 &&
                                    edgeBatch(wal, torture, topic, seed, w, r, out)
                                ) {
                                    continue
                                }
                                val sizes = when {
                                    torture == null -> List(k) { CrashOptions.size(r, topic) }

                                    r.nextInt(30) == 0 -> torture.longBatch(r, min, maxBytes = 1 shl 20)

                                    else -> torture.fitBatch(
                                        List(k) {
                                            torture.recordSize(r, min)
                                        },
                                        maxBytes = 1 shl 20,
                                    )
                                }
                                val payloads = sizes.mapIndexed { i, size ->
                                    CrashPayloads.make(
                                        topic,
                                        seed,
                                        CrashPayloads.batchWriter(w, i, sizes.size),
                                        n++,
                                        size,
                                    )
                                }
                                val range = wal.appendBatch(topic, payloads, durability)
                                check(range.last - range.first + 1 == payloads.size.toLong()) {
                                    "range $range for ${payloads.size} payloads"
                                }
                                payloads.forEachIndexed { i, p -> ack(out, topic, range.first + i, p) }
                                sequenceGrows(topic, range.first, range.last)
                            } else {
                                val size = torture?.recordSize(r, min) ?: CrashOptions.size(r, topic)
                                val p = CrashPayloads.make(topic, seed, w, n++, size)
                                val seq = wal.append(topic, p, durability)
                                ack(out, topic, seq, p)
                                sequenceGrows(topic, seq, seq)
                            }
                        }
                    }
                }
            }
        } catch (e: Throwable) {
            out.println("ERROR $e")
            e.printStackTrace()
            System.err.flush()
            exitProcess(2)
        }
    }

    /**
     * With a seventh argument `retention`: every few milliseconds, a truncation of a topic (up to half of what it
     * holds), a commit of consumer `k` (its positions only grow), or an application of retention, under the drawn
     * options' [TortureOptions.topicRetention]. Each is announced before the call (`ACK TRUNC?:<topic> <seq> 0`,
     * `ACK COMMIT?:k:<topic> <position> 0`, `ACK RET? 0 0`) and acknowledged after it (`ACK TRUNC:<topic> <seq> 0`,
     * `ACK COMMIT:k:<topic> <position> 0`, `ACK RET <segments deleted> <blocks copied, hex>` and a `TRUNC` line per
     * topic it truncated), so the parent knows what may have been done and what was.
     */
    private suspend fun retentionLoop(wal: Wal, r: Random, out: PrintStream) {
        val committed = HashMap<String, Long>()
        while (true) {
            kotlinx.coroutines.delay(r.nextLong(1, 30))
            val topic = CrashOptions.TOPICS[r.nextInt(CrashOptions.TOPICS.size)]
            when (r.nextInt(3)) {
                0 -> {
                    val first = wal.firstSequence(topic)
                    val to = first + r.nextLong(0, (wal.nextSequence(topic) - first) / 2 + 1)
                    out.println("ACK TRUNC?:$topic $to 0")
                    wal.truncateBefore(topic, to)
                    out.println("ACK TRUNC:$topic $to 0")
                }

                1 -> {
                    val from = committed[topic] ?: wal.committed("k", topic) ?: 0
                    val next = wal.nextSequence(topic)
                    if (from > next) continue
                    val position = from + r.nextLong(0, next - from + 1)
                    committed[topic] = position
                    out.println("ACK COMMIT?:k:$topic $position 0")
                    wal.commit("k", topic, position)
                    out.println("ACK COMMIT:k:$topic $position 0")
                }

                else -> {
                    out.println("ACK RET? 0 0")
                    val report = wal.applyRetention()
                    for ((t, first) in report.truncated) out.println("ACK TRUNC:$t $first 0")
                    out.println("ACK RET ${report.segmentsDeleted} %x".format(report.blocksCopied))
                }
            }
        }
    }

    /** The durability of one call: the mode's, or under `mixed` the log's default (mostly), Sync, None or Interval. */
    fun durability(mode: String, r: Random): Durability? = when (mode) {
        "none" -> Durability.None

        "mixed" -> when (r.nextInt(10)) {
            in 0..5 -> null
            6, 7 -> Durability.Sync
            8 -> Durability.None
            else -> Durability.Interval(5)
        }

        else -> Durability.Sync
    }

    /**
     * A batch at the edge of a segment ([TortureOptions.exactBatch]): one that fills an empty segment to its last
     * byte must be accepted, one a few bytes larger must be refused with [RecordTooLargeException] and change
     * nothing. Returns whether one was tried (none can be made for some options).
     */
    private suspend fun edgeBatch(
        wal: Wal,
        o: TortureOptions,
        topic: String,
        seed: Long,
        w: Int,
        r: Random,
        out: PrintStream,
    ): Boolean {
        val delta = if (r.nextBoolean()) 0 else r.nextInt(1, 65)
        val sizes = o.exactBatch(r, CrashPayloads.minSize(topic), delta, maxBytes = 2L shl 20) ?: return false
        val what =
            "a batch of ${sizes.size} records (${sizes.toSortedSet().take(
                3,
            )} bytes) taking ${o.unitBytes(sizes)} bytes with its headers, " +
                "for segments of ${o.segmentSize} (room ${o.segmentSize - TortureOptions.SEGMENT_HEADER}), under [$o]"
        if (delta == 0) {
            val first = edgeN.getAndAdd(sizes.size.toLong())
            val payloads = sizes.mapIndexed { i, size ->
                CrashPayloads.make(
                    topic,
                    seed,
                    CrashPayloads.batchWriter(w, i, sizes.size),
                    first + i,
                    size,
                )
            }
            val range = try {
                wal.appendBatch(topic, payloads)
            } catch (e: RecordTooLargeException) {
                fatal(out, "$what fits exactly but was refused: $e")
            }
            payloads.forEachIndexed { i, p -> ack(out, topic, range.first + i, p) }
            return true
        }
        // Writer -1 - w: never acknowledged, so never expected; refused, so never found.
        val payloads = sizes.mapIndexed { i, size -> CrashPayloads.make(topic, seed, -1 - w, i.toLong(), size) }
        try {
            val range = wal.appendBatch(topic, payloads)
            fatal(out, "$what cannot fit a segment but was accepted as $range")
        } catch (e: RecordTooLargeException) {
            return true
        }
    }

    /** The `n` of exactly fitting batches' payloads: apart from the writers' own counters. */
    private val edgeN = java.util.concurrent.atomic.AtomicLong(1L shl 40)

    /** Prints `ERROR <msg>` and ends the process: an expectation of the child itself failed. */
    fun fatal(out: PrintStream, msg: String): Nothing {
        out.println("ERROR $msg")
        out.flush()
        System.err.println(msg)
        System.err.flush()
        Runtime.getRuntime().halt(2)
        throw IllegalStateException(msg)
    }

    fun ack(out: PrintStream, topic: String, seq: Long, payload: ByteArray) {
        out.println("ACK $topic $seq %08x".format(CrashPayloads.crc(payload)))
    }
}

/**
 * Child-process main for [dev.kwal.CrossProcessLockSpec]: `LockHolderProcess <dir>`. Opens the log,
 * appends one record to topic `held` (and prints `ACK held <seq> <crc>`), prints `READY`, and sleeps
 * holding the directory until killed.
 */
object LockHolderProcess {
    @JvmStatic
    fun main(args: Array<String>) {
        val out = CrashOptions.out()
        CrashOptions.exitWhenParentGoes()
        try {
            val wal = Kwal.open(CrashOptions.of(Path.of(args[0])))
            val p = CrashPayloads.make("held", 0, 0, System.nanoTime(), 100)
            val seq = runBlocking { wal.append("held", p) }
            out.println("ACK held $seq %08x".format(CrashPayloads.crc(p)))
            out.println("READY")
            while (true) Thread.sleep(60_000)
        } catch (e: Throwable) {
            out.println("ERROR $e")
            e.printStackTrace()
            System.err.flush()
            exitProcess(2)
        }
    }
}
