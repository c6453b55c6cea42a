package dev.kwal.engine

import dev.kwal.Durability
import dev.kwal.Record
import dev.kwal.RecordChecks
import dev.kwal.RecordTooLargeException
import dev.kwal.RecordView
import dev.kwal.RecoveryReport
import dev.kwal.RetentionReport
import dev.kwal.TopicNames
import dev.kwal.Wal
import dev.kwal.WalClosedException
import dev.kwal.WalCorruptedException
import dev.kwal.WalException
import dev.kwal.WalLockedException
import dev.kwal.WalOptions
import dev.kwal.engine.commit.AppendRequest
import dev.kwal.engine.commit.CommitLoop
import dev.kwal.engine.commit.Completer
import dev.kwal.engine.commit.Group
import dev.kwal.engine.commit.GroupAcknowledger
import dev.kwal.engine.commit.GroupEncoder
import dev.kwal.engine.commit.GroupWriter
import dev.kwal.engine.commit.InlineAppender
import dev.kwal.engine.commit.RelocateRequest
import dev.kwal.engine.commit.RelocatedBlock
import dev.kwal.engine.commit.RequestQueue
import dev.kwal.engine.commit.SyncRequest
import dev.kwal.engine.format.ControlRecord
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.format.SegmentHeader
import dev.kwal.engine.io.FileIo
import dev.kwal.engine.recovery.Recovery
import dev.kwal.engine.replay.TopicReader
import dev.kwal.engine.retention.Reclaimer
import dev.kwal.engine.retention.RetentionPlanner
import dev.kwal.engine.storage.ControlState
import dev.kwal.engine.storage.LogLifecycle
import dev.kwal.engine.storage.ManifestStore
import dev.kwal.engine.storage.MappingCache
import dev.kwal.engine.storage.SegmentFiles
import dev.kwal.engine.storage.SegmentSet
import dev.kwal.engine.storage.SegmentState
import dev.kwal.engine.storage.SummaryStore
import dev.kwal.engine.storage.Topic
import dev.kwal.engine.storage.TopicTable
import dev.kwal.engine.summary.SummaryBuilder
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.asExecutor
import kotlinx.coroutines.cancel
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.dropWhile
import kotlinx.coroutines.flow.emitAll
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.isActive
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.suspendCancellableCoroutine
import java.io.Closeable
import java.nio.file.Path
import java.time.Instant
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CountDownLatch
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import java.util.concurrent.atomic.LongAdder
import kotlin.coroutines.resume
import kotlin.coroutines.resumeWithException

/**
 * The [Wal] implementation, and the top of the engine: it validates calls, hands appends to the inline path
 * ([InlineAppender]) or the queue ([RequestQueue], drained by the [CommitLoop]), serves reads through [TopicReader],
 * and owns the log's threads and lock. Its parts own the rest: [LogLifecycle] the log's state and how it stops,
 * [SegmentSet] the segments, files and mappings, [TopicTable] the topics.
 *
 * Threads: one writer thread (the [CommitLoop] coroutine and its `AsynchronousFileChannel` completions; it also
 * syncs and acknowledges a group itself when nothing else is pending) and one sync thread (the [GroupAcknowledger]
 * and its blocking `fsync`, used while the writer has more to write). Callers' coroutines never block on a sync or on
 * each other; a caller whose record needs no sync, on an idle log, copies it into the page cache itself through the
 * segment's mapping. Sealed segments are synced, and spares built, on `Dispatchers.IO`.
 */
internal class KwalEngine private constructor(
    private val options: WalOptions,
    private val lock: Closeable,
    private val table: TopicTable,
    private val lifecycle: LogLifecycle,
    private val segments: SegmentSet,
    private val queue: RequestQueue,
    private val inline: InlineAppender,
    override val recovery: RecoveryReport,
    private val writerExecutor: ExecutorService,
    private val syncExecutor: ExecutorService,
    /** The log's own threads, on which [close] must not wait for them. */
    private val threads: Set<Thread>,
    /** What control records say: truncations, consumer positions. */
    private val control: ControlState,
) : Wal {
    override val directory: Path get() = options.directory

    private val scope = CoroutineScope(SupervisorJob())
    private val log = org.slf4j.LoggerFactory.getLogger(KwalEngine::class.java)
    private val defaultSync = options.durability == Durability.Sync
    private lateinit var writerJob: Job
    private lateinit var acknowledgerJob: Job
    private var intervalJob: Job? = null
    private val maxBatchBytes = options.segmentSize.toLong() - SegmentHeader.SIZE

    override suspend fun append(topic: String, payload: ByteArray, durability: Durability?): Long {
        val known = userTopic(topic)
        if (payload.size > options.maxRecordSize) {
            throw RecordTooLargeException(payload.size.toLong(), options.maxRecordSize.toLong())
        }
        val request = AppendRequest(topic, known, payload, null, sync = needsSync(durability))
        val seq = appendInline(request)
        return if (seq != InlineAppender.NOT_WRITTEN) seq else submit(request)
    }

    override suspend fun appendBatch(topic: String, payloads: List<ByteArray>, durability: Durability?): LongRange {
        val known = userTopic(topic)
        if (payloads.isEmpty()) {
            if (!lifecycle.isAccepting) throw lifecycle.unavailable()
            val next = nextSequence(topic)
            return next until next
        }
        val copy = payloads.toList() // the caller may reuse its list once we return
        for (p in copy) {
            if (p.size >
                options.maxRecordSize
            ) {
                throw RecordTooLargeException(p.size.toLong(), options.maxRecordSize.toLong())
            }
        }
        val request = AppendRequest(topic, known, null, copy, sync = needsSync(durability))
        val bound = request.bytesBound(options.blockSize)
        if (bound > maxBatchBytes) throw RecordTooLargeException(bound, maxBatchBytes, "batch")
        val seq = appendInline(request)
        val first = if (seq != InlineAppender.NOT_WRITTEN) seq else submit(request)
        return first until first + copy.size
    }

    /**
     * [name]'s topic if it exists, checking the name only if it does not (a known name was checked when it was
     * created); the engine's own topics are no user's: their names fail the check.
     */
    private fun userTopic(name: String): Topic? {
        val known = table[name]
        if (known == null || known.internal) TopicNames.validate(name)
        return known
    }

    private fun needsSync(durability: Durability?): Boolean =
        if (durability == null) defaultSync else durability == Durability.Sync

    /**
     * [request]'s first sequence if it needed no sync and the log was idle, so it was written on this thread
     * ([InlineAppender]); else [InlineAppender.NOT_WRITTEN]. Not a suspending call, so an inline append allocates no
     * continuation.
     */
    private fun appendInline(request: AppendRequest): Long =
        if (request.sync || !lifecycle.isAccepting) InlineAppender.NOT_WRITTEN else inline.append(request)

    /**
     * Hands [request] to the writer and waits for its acknowledgement; while the queue is full (see
     * [WalOptions.maxQueuedBytes]) the request waits, parked in order, with its caller suspended.
     */
    private suspend fun submit(request: AppendRequest): Long = suspendCancellableCoroutine { cont ->
        request.cont = cont
        if (!queue.offer(request)) cont.resumeWithException(lifecycle.unavailable())
    }

    override fun replay(topic: String, from: Long): Flow<Record> = flow {
        TopicNames.validate(topic)
        if (lifecycle.isClosed) throw WalClosedException()
        val t = table[topic] ?: return@flow
        TopicReader(segments, lifecycle).read(t, maxOf(from, t.first), t.acked, this)
    }

    override fun follow(topic: String, from: Long): Flow<Record> = flow {
        TopicNames.validate(topic)
        if (lifecycle.isClosed) throw WalClosedException()
        val reader = TopicReader(segments, lifecycle)
        var next = from
        while (true) {
            // Until the topic exists, wait on the registry: it is acknowledged when a topic is.
            val t = table[topic]
            val signal = (t ?: table.registry).signal()
            val version = signal.value
            val end = t?.acked ?: 0
            if (t != null) next = maxOf(next, t.first) // records truncated meanwhile are skipped
            if (t != null && next < end) {
                reader.read(t, next, end, this)
                next = end
                continue
            }
            if (lifecycle.failure != null) throw lifecycle.unavailable()
            if (lifecycle.isClosed) return@flow
            signal.first { it != version }
        }
    }

    override fun follow(topic: String, consumer: String): Flow<Record> = flow {
        TopicNames.validate(topic)
        checkConsumer(consumer)
        emitAll(follow(topic, control.committed(consumer, topic) ?: 0))
    }

    override fun replay(topic: String, from: Instant): Flow<Record> = flow {
        val millis = ceilMillis(from)
        emitAll(replay(topic, seek(topic, millis)).dropWhile { it.timestampMillis < millis })
    }

    override fun follow(topic: String, from: Instant): Flow<Record> = flow {
        val millis = ceilMillis(from)
        emitAll(follow(topic, seek(topic, millis)).dropWhile { it.timestampMillis < millis })
    }

    override suspend fun replayViews(topic: String, from: Long, checks: RecordChecks, action: (RecordView) -> Unit) {
        TopicNames.validate(topic)
        if (lifecycle.isClosed) throw WalClosedException()
        val t = table[topic] ?: return
        val skip = checks == RecordChecks.SKIP_SEALED
        TopicReader(segments, lifecycle).readViews(t, maxOf(from, t.first), t.acked, skip, currentJob(), action)
    }

    override suspend fun followViews(topic: String, from: Long, checks: RecordChecks, action: (RecordView) -> Unit) {
        TopicNames.validate(topic)
        if (lifecycle.isClosed) throw WalClosedException()
        val reader = TopicReader(segments, lifecycle)
        val skip = checks == RecordChecks.SKIP_SEALED
        val job = currentJob()
        var next = from
        while (true) {
            // Read before the topic's end: once closed, nothing more is acknowledged, so that end is the last.
            val closed = lifecycle.isClosed
            // As follow: until the topic exists, wait on the registry.
            val t = table[topic]
            val signal = (t ?: table.registry).signal()
            val version = signal.value
            val end = t?.acked ?: 0
            if (t != null) next = maxOf(next, t.first)
            if (t != null && next < end) {
                reader.readViews(t, next, end, skip, job, action)
                next = end
                continue
            }
            if (lifecycle.failure != null) throw lifecycle.unavailable()
            if (closed) return
            signal.first { it != version }
        }
    }

    private suspend fun currentJob(): Job? = currentCoroutineContext()[Job]

    /** The entries [topic]'s block index holds now (retention drops those of truncated blocks): tests look. */
    internal fun indexEntries(topic: String): Int = table[topic]?.index?.heldEntries ?: 0

    /** The heap [topic]'s block index takes, in bytes: tests look. */
    internal fun indexHeapBytes(topic: String): Long = table[topic]?.index?.heapBytes() ?: 0

    /** Writes segment summaries (set once at open). */
    internal var summaries: SummaryBuilder? = null

    /** Block headers read by [read] and [seek] (not by replay and follow): tests count them. */
    internal val headersRead = LongAdder()

    override suspend fun read(topic: String, sequence: Long): Record? {
        require(sequence >= 0) { "sequence must not be negative: $sequence" }
        val t = readable(topic) ?: return null
        if (sequence < t.first) return null // truncated
        return TopicReader(segments, lifecycle, headersRead).readOne(t, sequence, t.acked)
    }

    override suspend fun read(topic: String, from: Long, maxRecords: Int, maxBytes: Int): List<Record> {
        require(from >= 0) { "from must not be negative: $from" }
        require(maxRecords > 0) { "maxRecords must be positive: $maxRecords" }
        require(maxBytes > 0) { "maxBytes must be positive: $maxBytes" }
        val t = readable(topic) ?: return emptyList()
        val start = maxOf(from, t.first) // records below the first sequence were truncated
        return TopicReader(segments, lifecycle, headersRead).readList(t, start, t.acked, maxRecords, maxBytes)
    }

    override suspend fun seek(topic: String, timestampMillis: Long): Long {
        val t = readable(topic) ?: return 0
        val found = TopicReader(segments, lifecycle, headersRead).seek(t, timestampMillis, t.acked)
        return maxOf(found, t.first) // never a truncated record
    }

    /** The topic named [topic] for a read, or null if it does not exist; checks the name and that the log is open. */
    private fun readable(topic: String): Topic? {
        val t = userTopic(topic)
        if (lifecycle.isClosed) throw WalClosedException()
        return t
    }

    override fun topics(): Set<String> = table.visibleNames()

    override fun nextSequence(topic: String): Long = table[topic]?.takeIf { !it.internal }?.acked ?: 0

    override fun firstSequence(topic: String): Long = table[topic]?.takeIf { !it.internal }?.first ?: 0

    override suspend fun truncateBefore(topic: String, sequence: Long) {
        TopicNames.validate(topic)
        require(sequence >= 0) { "sequence $sequence < 0" }
        val t = table[topic]
        val next = t?.acked ?: 0
        require(sequence <= next) { "cannot truncate $topic before $sequence: it has $next records" }
        if (t == null || sequence <= t.first) {
            if (!lifecycle.isAccepting) throw lifecycle.unavailable()
            return
        }
        appendControl(ControlRecord.Truncate(topic, sequence))
    }

    override suspend fun commit(consumer: String, topic: String, position: Long) {
        checkConsumer(consumer)
        TopicNames.validate(topic)
        val next = nextSequence(topic)
        require(position in 0..next) { "position $position is outside 0..$next, the records of $topic" }
        appendControl(ControlRecord.Commit(consumer, topic, position))
    }

    override fun committed(consumer: String, topic: String): Long? {
        checkConsumer(consumer)
        TopicNames.validate(topic)
        return control.committed(consumer, topic)
    }

    override fun consumers(): Set<String> = control.consumers()

    override suspend fun deleteConsumer(consumer: String) {
        checkConsumer(consumer)
        if (consumer !in control.consumers()) {
            if (!lifecycle.isAccepting) throw lifecycle.unavailable()
            return
        }
        appendControl(ControlRecord.DeleteConsumer(consumer))
    }

    /** Consumer names follow the rules of topic names ([TopicNames]). */
    private fun checkConsumer(consumer: String) {
        TopicNames.problem(consumer)?.let { throw IllegalArgumentException("invalid consumer name: $it") }
    }

    /**
     * Appends [record] to the control topic like any append of the log's default durability (one slot in a group
     * commit, no sync of its own), then applies it: once this returns, the change is acknowledged and in effect.
     */
    private suspend fun appendControl(record: ControlRecord) {
        val payload = record.encode()
        val request = AppendRequest(ControlRecord.TOPIC, table[ControlRecord.TOPIC], payload, null, defaultSync)
        // Applied where it is acknowledged, in log order, even if this caller is cancelled meanwhile.
        request.onAcked = { seq -> control.apply(record, seq) }
        if (appendInline(request) == InlineAppender.NOT_WRITTEN) submit(request)
    }

    override suspend fun applyRetention(): RetentionReport {
        if (!lifecycle.isAccepting) throw lifecycle.unavailable()
        return reclaimer.apply()
    }

    /** Retention's way into the log: through group commit, like any caller. */
    private inner class RetentionLog : Reclaimer.Log {
        override suspend fun truncate(topic: String, sequence: Long) = truncateBefore(topic, sequence)

        override suspend fun relocate(blocks: List<RelocatedBlock>): Pair<Int, Long> {
            val done = suspendCancellableCoroutine { cont ->
                if (!queue.offer(RelocateRequest(blocks, cont))) cont.resumeWithException(lifecycle.unavailable())
            }
            return done.copied to done.copiedBytes
        }

        override suspend fun sync() = this@KwalEngine.sync()
    }

    private lateinit var reclaimer: Reclaimer
    private var retentionJob: Job? = null

    override suspend fun sync() {
        suspendCancellableCoroutine { cont ->
            if (!queue.offer(SyncRequest(cont))) cont.resumeWithException(lifecycle.unavailable())
        }
    }

    /**
     * Closes the log. Reads under way go on to their end (see [TopicReader]): the mapping a reader borrows stays
     * until it gives it back, and a segment it reaches afterwards is mapped again from its file. Every mapping no
     * reader holds is unmapped here, and every other one when its reader gives it back: once the reads under way are
     * done, the log holds no mapping, no file and no lock.
     *
     * From one of the log's own threads (user code resumed there, say by
     * `Dispatchers.Unconfined`), waiting would deadlock: the close then completes on another thread, after this call
     * returns. An interrupt of the calling thread does not cut the close short; the thread's interrupt status is
     * kept.
     */
    override fun close() {
        val first = lifecycle.beginClose()
        if (first) {
            intervalJob?.cancel()
            retentionJob?.cancel()
            queue.close()
        }
        if (Thread.currentThread() in threads) {
            if (first) Thread({ finishClose() }, "kwal-close").apply { isDaemon = true }.start()
            return
        }
        if (first) finishClose() else lifecycle.awaitClosed()
    }

    private fun finishClose() {
        try {
            writerJob.joinUninterruptibly()
            acknowledgerJob.joinUninterruptibly()
            retentionJob?.joinUninterruptibly() // it may be deleting a segment: done before the segments close
        } finally {
            lifecycle.closed {
                scope.cancel()
                // The writer has stopped: the active segment's groups are all written, and can be summarized.
                summaries?.finish(segments.active)
                // The writer has stopped: nothing stores through a segment's mapping any more.
                segments.close()
                runCatching { lock.close() }
                writerExecutor.shutdown()
                syncExecutor.shutdown()
            }
        }
    }

    private fun start(loop: CommitLoop, acknowledger: GroupAcknowledger, reclaimer: Reclaimer) {
        this.reclaimer = reclaimer
        writerJob = scope.launch(writerExecutor.asCoroutineDispatcher()) { loop.run() }
        acknowledgerJob = scope.launch(syncExecutor.asCoroutineDispatcher()) { acknowledger.run() }
        val every = options.retentionIntervalMillis
        if (every > 0) {
            retentionJob = scope.launch(Dispatchers.IO) {
                while (isActive) {
                    delay(every)
                    try {
                        reclaimer.apply()
                    } catch (e: CancellationException) {
                        throw e
                    } catch (e: Throwable) {
                        if (!lifecycle.isAccepting) break
                        log.warn("kwal: retention failed; it will try again: {}", e.toString())
                    }
                }
            }
        }
        val interval = options.durability as? Durability.Interval
        if (interval != null) {
            intervalJob = scope.launch {
                while (isActive) {
                    delay(interval.millis)
                    queue.offer(SyncRequest(null))
                }
            }
        }
    }

    override fun toString(): String = "Kwal(${options.directory})"

    private fun Job.joinUninterruptibly() {
        val done = CountDownLatch(1)
        invokeOnCompletion { done.countDown() }
        var interrupted = false
        while (true) {
            try {
                done.await()
                break
            } catch (e: InterruptedException) {
                interrupted = true
            }
        }
        if (interrupted) Thread.currentThread().interrupt()
    }

    companion object {
        private const val LOCK_FILE = "kwal.lock"

        /**
         * Rebuilds [control] from the manifest's [consumers] positions and the control topic's records from its first
         * sequence on, in order: the last part of opening a log.
         */
        private fun loadControl(
            table: TopicTable,
            segments: SegmentSet,
            lifecycle: LogLifecycle,
            control: ControlState,
            consumers: Map<String, Map<String, Long>>,
        ) {
            val topic = table[ControlRecord.TOPIC] ?: return
            control.seed(consumers, topic.first)
            runBlocking {
                TopicReader(segments, lifecycle).read(topic, topic.first, topic.acked) { r ->
                    val record =
                        ControlRecord.decode(r.payload)
                            ?: throw WalCorruptedException("control record ${r.sequence} of the log cannot be decoded")
                    control.apply(record, r.sequence)
                }
            }
        }

        /** [instant] in milliseconds since the epoch, rounded up; saturated at the ends of `Long`. */
        fun ceilMillis(instant: Instant): Long = try {
            val millis = instant.toEpochMilli()
            if (instant.nano % 1_000_000 != 0 && millis != Long.MAX_VALUE) millis + 1 else millis
        } catch (e: ArithmeticException) {
            if (instant.isBefore(Instant.EPOCH)) Long.MIN_VALUE else Long.MAX_VALUE
        }

        /**
         * Opens the log in [options]' directory through [io]; every I/O failure becomes a [WalException]. At most
         * [idleMappings] segments stay mapped while no reader reads them (see [MappingCache]). Groups are stamped
         * with [clock] (ms since the epoch), kept non-decreasing (see [GroupEncoder]): tests make it step back.
         */
        fun open(
            options: WalOptions,
            io: FileIo,
            idleMappings: Int = MappingCache.DEFAULT_IDLE_LIMIT,
            clock: () -> Long = System::currentTimeMillis,
        ): KwalEngine = try {
            openOrThrow(options, io, idleMappings, clock)
        } catch (e: WalException) {
            throw e
        } catch (e: java.io.IOException) {
            throw WalException("cannot open ${options.directory}: $e", e)
        }

        private fun openOrThrow(options: WalOptions, io: FileIo, idleMappings: Int, clock: () -> Long): KwalEngine {
            val dir = options.directory
            io.createDirectories(dir, options.directoryPermissions)
            val lock = io.tryLock(dir.resolve(LOCK_FILE), options.filePermissions) ?: throw WalLockedException(dir)
            val threads = ConcurrentHashMap.newKeySet<Thread>()
            fun executor(name: String) = Executors.newSingleThreadExecutor { r ->
                Thread(r, name).apply {
                    isDaemon = true
                    threads.add(this)
                }
            }
            val writerExecutor = executor("kwal-writer")
            val syncExecutor = executor("kwal-sync")
            try {
                val files = SegmentFiles(dir, io, writerExecutor, options.filePermissions, MappingCache(idleMappings))
                val recovered = Recovery(options, io, files).run()
                val table = recovered.table
                val background = Dispatchers.IO.asExecutor()
                val segments = SegmentSet(
                    files,
                    options.segmentSize,
                    recovered.logId,
                    recovered.segments,
                    recovered.spares,
                    background,
                )
                val lifecycle = LogLifecycle(table)
                val control =
                    ControlState(table).also { loadControl(table, segments, lifecycle, it, recovered.consumers) }
                val queue = RequestQueue(options.maxQueuedBytes)
                lifecycle.onStop { error -> queue.fail(error) }
                val completer = Completer(lifecycle, segments, LogPosition(segments.active.id, recovered.tail))
                val encoder =
                    GroupEncoder(options, table, segments, lifecycle, recovered.tail, recovered.newestTimestamp, clock)
                val writer = GroupWriter(encoder, completer, lifecycle)
                val inline = InlineAppender(writer, completer, queue, table, lifecycle, options.blockSize)
                val written = Channel<Group>(Channel.UNLIMITED)
                val loop = CommitLoop(options.maxGroupBytes, queue, table, writer, completer, written, lifecycle)
                val engine = KwalEngine(
                    options, lock, table, lifecycle, segments, queue, inline, recovered.report,
                    writerExecutor, syncExecutor, threads, control,
                )
                val planner = RetentionPlanner(options, table, control, segments, lifecycle, clock)
                val manifests = ManifestStore(io, files)
                val reclaimer = Reclaimer(
                    options,
                    table,
                    segments,
                    control,
                    manifests,
                    recovered.logId,
                    planner,
                    engine.RetentionLog(),
                ) { minOf(completer.completedThrough.segmentId, segments.activeId) }
                val summaries = SummaryBuilder(
                    segments,
                    SummaryStore(io, files),
                    recovered.logId,
                    recovered.summaryResume,
                ) { lifecycle.failure == null }
                engine.summaries = summaries
                segments.onReleased = { summaries.ready(it.id) }
                for (s in recovered.segments) if (s.state == SegmentState.RELEASED) summaries.readyLater(s.id)
                engine.start(loop, GroupAcknowledger(completer, written), reclaimer)
                return engine
            } catch (e: Throwable) {
                writerExecutor.shutdownNow()
                syncExecutor.shutdownNow()
                lock.close()
                throw e
            }
        }
    }
}
