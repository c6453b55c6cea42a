package dev.kwal.engine.summary

import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.format.RecordFrame
import dev.kwal.engine.format.SegmentHeader
import dev.kwal.engine.format.SegmentSummary
import dev.kwal.engine.storage.Segment
import dev.kwal.engine.storage.SegmentSet
import dev.kwal.engine.storage.SummaryStore
import org.slf4j.LoggerFactory
import java.nio.ByteBuffer
import java.util.TreeSet
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.zip.CRC32C

/** Where the summary builder starts: [position], in a segment whose summary so far is [seed] (if it has one). */
internal class SummaryResume(val position: LogPosition, val seed: SegmentSummary?)

/**
 * Writes a [SegmentSummary] for each segment once it is sealed and durable, in segment order, on its own thread, so
 * that the next open reads summaries instead of segments (see `recovery.SummaryChain`).
 *
 * It reads each segment's block headers (checked at their places) and the registry's names, from where the last
 * summary ends ([SummaryResume]), keeping a group that runs across a roll until its last block: a summary covers the
 * groups that end in its segment. It reads what this process wrote and synced, or what recovery checked: it does not
 * check record frames (readers do). At [finish] (a clean close) it also summarizes the active segment, synced, if it
 * has caught up with it, so that an open after a clean close reads no segment at all.
 *
 * Summaries are an optimization: a failure to build or write one is logged and stops the builder; the next open scans
 * from the last summary on. Thread-safety: [ready] and [finish] from any thread; the rest on the builder's thread.
 */
internal class SummaryBuilder(
    private val segments: SegmentSet,
    private val store: SummaryStore,
    private val logId: Long,
    resume: SummaryResume,
    /** Whether the log is still sound: a log that failed writes no more summaries. */
    private val healthy: () -> Boolean,
) {
    private val log = LoggerFactory.getLogger(SummaryBuilder::class.java)
    private val executor: ExecutorService = Executors.newSingleThreadExecutor { r ->
        Thread(r, "kwal-summaries").apply { isDaemon = true }
    }
    private val crc = CRC32C()
    private val codec = RecordFrame.Codec()

    /** Sealed, durable segments not summarized yet. Guarded by itself. */
    private val ready = TreeSet<Int>()

    // The builder thread's state.
    private var next = resume.position.segmentId
    private var offset = resume.position.offset
    private var draft = SummaryDraft(resume.seed)
    private var lastTo = resume.position
    private val pending = ArrayList<PendingBlock>()

    @Volatile private var stopped = false

    /** Summaries written (tests look). */
    @Volatile var written = 0
        private set

    private class PendingBlock(
        val position: LogPosition,
        val topicId: Int,
        val firstSeq: Long,
        val count: Int,
        val length: Int,
        val relocated: Boolean,
        val timestamp: Long,
        val names: List<String>?,
    )

    /** Notes that segment [id] is sealed and durable: it will be summarized once those before it are. */
    fun ready(id: Int) {
        if (stopped) return
        synchronized(ready) { ready.add(id) }
        runCatching { executor.execute(::drain) }
    }

    /**
     * Notes that segment [id], found sealed at open, is durable — summarized with the next segment sealed, or at
     * [finish]: an open itself does no more than recovery did (a log opened to be read, then closed, reads no more).
     */
    fun readyLater(id: Int) {
        synchronized(ready) { ready.add(id) }
    }

    private fun drain() {
        while (!stopped) {
            val id = synchronized(ready) {
                ready.headSet(next).clear() // covered already
                if (ready.remove(next)) next else null
            } ?: return
            val segment = segments[id]
            if (segment == null) {
                // Retention deleted it first: what follows starts afresh, as an open would read it.
                restart(id + 1)
                continue
            }
            if (!summarize(segment, sync = false)) return
        }
    }

    /**
     * Summarizes the active segment [active] at a clean close, if the builder has caught up with it and the log is
     * sound; waits at most [timeoutMillis]. Then stops the builder.
     */
    fun finish(active: Segment, timeoutMillis: Long = 10_000) {
        val task = runCatching {
            executor.submit {
                drain()
                val lagging = synchronized(ready) { ready.any { it >= next } }
                if (!stopped && !lagging && next == active.id && healthy()) summarize(active, sync = true)
            }
        }.getOrNull()
        // Uninterruptibly: a close from an interrupted thread still finishes, and keeps the interrupt.
        var interrupted = false
        val deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis)
        while (task != null) {
            try {
                task.get(maxOf(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)
                break
            } catch (e: InterruptedException) {
                interrupted = true
            } catch (e: Exception) {
                break
            }
        }
        if (interrupted) Thread.currentThread().interrupt()
        stop()
    }

    /** Stops the builder; a summary being written is finished first, in the background. */
    fun stop() {
        stopped = true
        executor.shutdown()
    }

    private fun restart(id: Int) {
        next = id
        offset = SegmentHeader.SIZE
        draft = SummaryDraft()
        lastTo = LogPosition(id, SegmentHeader.SIZE)
        pending.clear()
    }

    /** Summarizes [segment] from where the builder is; false if it failed (and stopped). */
    private fun summarize(segment: Segment, sync: Boolean): Boolean {
        try {
            if (sync) segment.file.force()
            val view = segment.borrowMapping()
            try {
                scan(segment.id, view, offset)
            } finally {
                segment.returnMapping()
            }
            if (!healthy()) return false.also { stop() }
            val summary = draft.summary(segment.id, segment.size, logId, lastTo)
            store.write(summary)
            written++
            lastTo = summary.to
            draft = SummaryDraft()
            next = segment.id + 1
            offset = SegmentHeader.SIZE
            return true
        } catch (e: Exception) {
            log.warn("kwal: cannot summarize {}; the next open reads the log from there", segment, e)
            stop()
            return false
        }
    }

    /** Reads the blocks of segment [id] in [view] from [from] to the end of its data, committing whole groups. */
    private fun scan(id: Int, view: ByteBuffer, from: Int) {
        var at = from
        val limit = view.capacity()
        while (at + BlockHeader.SIZE <= limit && !BlockHeader.isZero(view, at)) {
            val position = LogPosition(id, at)
            BlockHeader.check(view, at, position, crc)?.let { throw IllegalStateException("$it at $position") }
            val length = BlockHeader.SIZE + view.getInt(at + BlockHeader.OFF_BODY_LENGTH)
            check(at.toLong() + length <= limit) { "block at $position runs past its segment" }
            val topicId = view.getInt(at + BlockHeader.OFF_TOPIC)
            val firstSeq = view.getLong(at + BlockHeader.OFF_FIRST_SEQ)
            val count = view.getInt(at + BlockHeader.OFF_COUNT)
            val relocated = BlockHeader.isRelocated(view, at)
            val names = if (topicId == 0 && !relocated) names(view, at, length, firstSeq, count, position) else null
            val timestamp = view.getLong(at + BlockHeader.OFF_TIMESTAMP)
            pending.add(PendingBlock(position, topicId, firstSeq, count, length, relocated, timestamp, names))
            val flags = view.get(at + BlockHeader.OFF_FLAGS).toInt()
            if (flags and BlockHeader.FLAG_CONTINUED == 0) commit()
            at += length
        }
    }

    private fun names(
        view: ByteBuffer,
        at: Int,
        length: Int,
        firstSeq: Long,
        count: Int,
        p: LogPosition,
    ): List<String> {
        val out = ArrayList<String>(count)
        var f = at + BlockHeader.SIZE
        val end = at + length
        for (i in 0 until count) {
            val payload = codec.decode(view, f, end, 0, firstSeq + i) ?: throw IllegalStateException("bad name at $p")
            out.add(payload.decodeToString())
            f += RecordFrame.HEADER_SIZE + payload.size
        }
        return out
    }

    /** The group in [pending] is whole: adds it to the draft. */
    private fun commit() {
        val d = draft
        for (b in pending) {
            d.newestTimestamp = maxOf(d.newestTimestamp, b.timestamp)
            val ok = when {
                b.relocated -> d.relocated.add(
                    SegmentSummary.Relocated(b.topicId, b.firstSeq, b.count, b.position, b.length),
                )

                b.topicId == 0 -> d.addNames(b.firstSeq, b.names!!, b.position)

                else -> d.addBlock(b.topicId, b.firstSeq, b.count, b.position, b.length)
            }
            check(ok) { "block at ${b.position} does not continue its topic" }
        }
        val last = pending.last()
        d.to = LogPosition(last.position.segmentId, last.position.offset + last.length)
        pending.clear()
    }
}
