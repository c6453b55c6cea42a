package dev.kwal.bench

import com.squareup.tape2.QueueFile
import dev.kwal.Durability
import dev.kwal.RecordChecks
import dev.kwal.Wal
import dev.kwal.WalOptions
import dev.kwal.engine.Kwal
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import net.openhft.chronicle.bytes.Bytes
import net.openhft.chronicle.bytes.SyncMode
import net.openhft.chronicle.queue.ChronicleQueue
import net.openhft.chronicle.queue.ExcerptAppender
import net.openhft.chronicle.queue.impl.single.SingleChronicleQueueBuilder
import org.rocksdb.Options
import org.rocksdb.RocksDB
import org.rocksdb.WriteBatch
import org.rocksdb.WriteOptions
import java.lang.management.ManagementFactory
import java.nio.ByteBuffer
import java.nio.file.Path
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CountDownLatch
import java.util.concurrent.atomic.AtomicLong

/**
 * What one load run did: records acknowledged, elapsed time (the open included, see [Subject.run]), (if asked) every
 * append's latency in ns, the process CPU time spent in the window, the time the open took, and for kwal the
 * segment files the log held at the end of the window.
 */
class LoadResult(
    val records: Long,
    val nanos: Long,
    val latencies: LongArray?,
    val cpuNanos: Long = -1,
    val openNanos: Long = 0,
    val segments: Int = -1,
) {
    val perSecond: Double get() = records * 1e9 / nanos
    val cpuPerRecord: Double get() = if (cpuNanos < 0 || records == 0L) Double.NaN else cpuNanos.toDouble() / records
}

private val osBean = ManagementFactory.getOperatingSystemMXBean() as com.sun.management.OperatingSystemMXBean

/** CPU time used so far by this process, every thread (JIT, GC and the peers' native threads included), in ns. */
fun processCpuNanos(): Long = osBean.processCpuTime

/** The work of one load run: [appenders] concurrent appenders, each appending [payload] until [seconds] pass. */
class Load(
    val appenders: Int,
    val payload: ByteArray,
    val seconds: Double,
    /** Topic of the k-th append of appender a; one topic unless given. */
    val topic: (a: Int, k: Long) -> String = { _, _ -> "t" },
    val latencies: Boolean = false,
    /** >1: each append is a batch of this many records from one appender. */
    val batch: Int = 1,
)

/**
 * A log under test. Opened for one mode ([durable] or not) in a fresh directory, loaded, replayed, closed.
 * Peers without coroutines get one platform thread per concurrent appender.
 */
abstract class Subject(val name: String, val durable: Boolean) : AutoCloseable {
    abstract fun open(dir: Path)

    /** One append, blocking until acknowledged under this subject's mode. Thread-safe. */
    abstract fun append(topic: String, payload: ByteArray)

    /** Appends [payloads] as one unit where the system has one, else one by one. */
    open fun appendBatch(topic: String, payloads: List<ByteArray>) {
        for (p in payloads) append(topic, p)
    }

    /** Reads every record of [topic] back; returns the count and the payload bytes read. */
    abstract fun replay(topic: String): Pair<Long, Long>

    /**
     * Called on each appender thread once the log is open, inside the timed window (Chronicle creates its
     * per-thread appender here).
     */
    open fun threadInit() {}

    /**
     * Opens this subject in [dir] and runs [load]. The clock starts before [open], so every system's open (kwal's
     * first segment, the peers' first files) is inside the timed window, and the load then runs for
     * [Load.seconds]. The default uses one platform thread per appender, created before the clock starts.
     */
    open fun run(load: Load, dir: Path): LoadResult = runThreads(load, { open(dir) }, ::threadInit) { a, k ->
        val t = load.topic(a, k)
        if (load.batch > 1) appendBatch(t, List(load.batch) { load.payload }) else append(t, load.payload)
    }
}

/**
 * Runs [load] on [Load.appenders] platform threads (created and parked before the clock starts): the clock
 * starts, [open] runs, then each thread runs [init] and calls [op] until the deadline, [Load.seconds] after the
 * open returned.
 */
fun runThreads(load: Load, open: () -> Unit, init: () -> Unit = {}, op: (a: Int, k: Long) -> Unit): LoadResult {
    val n = load.appenders
    val counts = LongArray(n)
    val lats = arrayOfNulls<LongList>(n)
    val ready = CountDownLatch(n)
    val go = CountDownLatch(1)
    val errors = ConcurrentHashMap.newKeySet<Throwable>()
    val deadlineRef = AtomicLong()
    val threads = List(n) { a ->
        Thread {
            val lat = if (load.latencies) LongList() else null
            lats[a] = lat
            ready.countDown()
            go.await()
            var k = 0L
            try {
                init()
                val deadline = deadlineRef.get()
                while (System.nanoTime() < deadline) {
                    val t0 = System.nanoTime()
                    op(a, k++)
                    lat?.add(System.nanoTime() - t0)
                }
            } catch (e: Throwable) {
                errors += e
            }
            counts[a] = k
        }.apply {
            isDaemon = true
            start()
        }
    }
    ready.await()
    val cpu0 = processCpuNanos()
    val start = System.nanoTime()
    try {
        open()
    } catch (e: Throwable) {
        go.countDown()
        threads.forEach { it.join() }
        throw e
    }
    val opened = System.nanoTime()
    deadlineRef.set(opened + (load.seconds * 1e9).toLong())
    go.countDown()
    threads.forEach { it.join() }
    val elapsed = System.nanoTime() - start
    val cpu = processCpuNanos() - cpu0
    errors.firstOrNull()?.let { throw it }
    return LoadResult(
        counts.sum() * load.batch,
        elapsed,
        if (load.latencies) LongList.concat(lats.filterNotNull()) else null,
        cpu,
        opened - start,
    )
}

class LongList {
    var a = LongArray(1024)
    var n = 0
    fun add(v: Long) {
        if (n == a.size) a = a.copyOf(n * 2)
        a[n++] = v
    }
    companion object {
        fun concat(ls: List<LongList>): LongArray {
            val out = LongArray(ls.sumOf { it.n })
            var i = 0
            for (l in ls) {
                System.arraycopy(l.a, 0, out, i, l.n)
                i += l.n
            }
            return out
        }
    }
}

/**
 * kwal through its public API; concurrent appenders are coroutines on [Dispatchers.Default]. [segmentSize] null
 * = the default (64 MiB); a small one makes segment rolls happen inside short windows (a labelled variant; its
 * maxRecordSize is a quarter of the segment, at most 1 MiB, as a block must fit in a segment).
 */
class KwalSubject(durable: Boolean, private val segmentSize: Int? = null, name: String = "kwal") :
    Subject(name, durable) {
    lateinit var wal: Wal
    private lateinit var dir: Path
    private val durability = if (durable) Durability.Sync else Durability.None

    override fun open(dir: Path) {
        this.dir = dir
        wal = Kwal.open(
            // a block must hold the largest record, and blocks fit in a segment: small segments take smaller records
            // (at most the default 1 MiB)
            segmentSize?.let {
                WalOptions(dir, segmentSize = it, maxRecordSize = minOf(it / 4, 1 shl 20), durability = durability)
            }
                ?: WalOptions(dir, durability = durability),
        )
    }

    /** Segment files in the log's directory now (the active one, sealed ones, and any spare built ahead). */
    fun segmentFiles(): Int = dir.toFile().list()?.count { it.startsWith("seg-") && it.endsWith(".kwal") } ?: -1

    override fun append(topic: String, payload: ByteArray) {
        runBlocking { wal.append(topic, payload, durability) }
    }

    override fun appendBatch(topic: String, payloads: List<ByteArray>) {
        runBlocking { wal.appendBatch(topic, payloads, durability) }
    }

    override fun replay(topic: String): Pair<Long, Long> = runBlocking {
        var n = 0L
        var bytes = 0L
        wal.replay(topic).collect {
            n++
            bytes += it.payload.size
        }
        n to bytes
    }

    /**
     * [replay] through [Wal.replayViews]: each record's payload copied into one reused array (as Chronicle's tailer
     * reads into one reused buffer), nothing allocated per record.
     */
    fun replayViews(topic: String, checks: RecordChecks = RecordChecks.ALL): Pair<Long, Long> = runBlocking {
        var n = 0L
        var bytes = 0L
        val scratch = ByteArray(1 shl 20)
        wal.replayViews(topic, 0, checks) { v ->
            v.copyPayloadTo(scratch, 0)
            n++
            bytes += v.payloadSize
        }
        n to bytes
    }

    override fun run(load: Load, dir: Path): LoadResult = runBlocking(Dispatchers.Default) {
        val n = load.appenders
        val counts = LongArray(n)
        val lats = arrayOfNulls<LongList>(n)
        val batch = if (load.batch > 1) List(load.batch) { load.payload } else null
        val cpu0 = processCpuNanos()
        val start = System.nanoTime()
        open(dir)
        val opened = System.nanoTime()
        val deadline = opened + (load.seconds * 1e9).toLong()
        coroutineScope {
            repeat(n) { a ->
                launch {
                    val lat = if (load.latencies) LongList() else null
                    var k = 0L
                    while (System.nanoTime() < deadline) {
                        val t0 = System.nanoTime()
                        val topic = load.topic(a, k++)
                        if (batch != null) {
                            wal.appendBatch(topic, batch, durability)
                        } else {
                            wal.append(topic, load.payload, durability)
                        }
                        lat?.add(System.nanoTime() - t0)
                    }
                    counts[a] = k
                    lats[a] = lat
                }
            }
        }
        val elapsed = System.nanoTime() - start
        val cpu = processCpuNanos() - cpu0
        LoadResult(
            counts.sum() * load.batch,
            elapsed,
            if (load.latencies) LongList.concat(lats.filterNotNull()) else null,
            cpu,
            opened - start,
            segmentFiles(),
        )
    }

    override fun close() = wal.close()
}

/**
 * RocksDB with its WAL on; `sync` per write as [durable]; key = topic bytes + 8-byte sequence (per topic).
 * Configured as its WAL documentation recommends for write throughput with a synced WAL: pipelined writes
 * (the WAL write of one group overlaps the memtable insert of the previous) and recycled WAL files (a sync
 * that overwrites an old WAL file need not update its size); see bench/README.md.
 */
class RocksSubject(durable: Boolean) : Subject(if (durable) "rocksdb-sync" else "rocksdb-nosync", durable) {
    private lateinit var db: RocksDB
    private lateinit var options: Options
    private lateinit var wo: WriteOptions
    private val seqs = ConcurrentHashMap<String, AtomicLong>()

    override fun open(dir: Path) {
        RocksDB.loadLibrary()
        options = rocksOptions().setCreateIfMissing(true)
        db = RocksDB.open(options, dir.toString())
        wo = WriteOptions().setSync(durable).setDisableWAL(false)
    }

    private fun key(topic: String): ByteArray {
        val t = topic.toByteArray()
        val seq = seqs.computeIfAbsent(topic) { AtomicLong() }.getAndIncrement()
        return ByteBuffer.allocate(t.size + 9).put(t).put(0).putLong(seq).array()
    }

    override fun append(topic: String, payload: ByteArray) = db.put(wo, key(topic), payload)

    override fun appendBatch(topic: String, payloads: List<ByteArray>) {
        WriteBatch().use { b ->
            for (p in payloads) b.put(key(topic), p)
            db.write(wo, b)
        }
    }

    override fun replay(topic: String): Pair<Long, Long> {
        val prefix = topic.toByteArray() + 0
        var n = 0L
        var bytes = 0L
        db.newIterator().use { it ->
            it.seek(prefix)
            while (it.isValid &&
                it.key().let { k -> k.size == prefix.size + 8 && k.copyOf(prefix.size).contentEquals(prefix) }
            ) {
                n++
                bytes += it.value().size
                it.next()
            }
        }
        return n to bytes
    }

    override fun close() {
        db.close()
        wo.close()
        options.close()
    }
}

/** The RocksDB options every run uses (the crash writer and the reopen too). */
fun rocksOptions(): Options = Options().setEnablePipelinedWrite(true).setRecycleLogFileNum(4)

/**
 * Chronicle Queue: one queue (it has no topics), one appender per thread, [ExcerptAppender.writeBytes];
 * durable = `syncMode(SYNC)` and [ExcerptAppender.sync] (msync) after every record.
 */
class ChronicleSubject(durable: Boolean) : Subject(if (durable) "chronicle-msync" else "chronicle", durable) {
    private lateinit var queue: ChronicleQueue
    private val appenders = ConcurrentHashMap.newKeySet<ExcerptAppender>()
    private lateinit var local: ThreadLocal<ExcerptAppender>

    override fun open(dir: Path) {
        queue = SingleChronicleQueueBuilder.single(dir.toFile())
            .syncMode(if (durable) SyncMode.SYNC else SyncMode.NONE).build()
        local = ThreadLocal.withInitial { queue.createAppender().also { appenders += it } }
    }

    override fun threadInit() {
        local.get()
    }

    override fun append(topic: String, payload: ByteArray) {
        val a = local.get()
        a.writeBytes(Bytes.wrapForRead(payload))
        if (durable) a.sync()
    }

    override fun replay(topic: String): Pair<Long, Long> {
        var n = 0L
        var bytes = 0L
        val buf = Bytes.allocateElasticDirect(4096)
        queue.createTailer().use { t ->
            while (t.readBytes(buf)) {
                n++
                bytes += buf.readRemaining()
                buf.clear()
            }
        }
        buf.releaseLast()
        return n to bytes
    }

    override fun close() {
        appenders.forEach { runCatching { it.close() } }
        queue.close()
    }
}

/** Square Tape's QueueFile: single writer (calls synchronized), every add synced by the file itself; durable only. */
class TapeSubject : Subject("tape", true) {
    private lateinit var q: QueueFile
    private val lock = Any()
    override fun open(dir: Path) {
        q =
            QueueFile.Builder(dir.resolve("queue").toFile().also { dir.toFile().mkdirs() }).build()
    }
    override fun append(topic: String, payload: ByteArray) = synchronized(lock) { q.add(payload) }
    override fun replay(topic: String): Pair<Long, Long> = synchronized(lock) {
        var n = 0L
        var bytes = 0L
        for (e in q) {
            n++
            bytes += e.size
        }
        n to bytes
    }
    override fun close() = q.close()
}
