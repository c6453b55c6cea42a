package dev.kwal.engine.storage

import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.LogPosition
import java.lang.invoke.MethodHandles
import java.nio.ByteBuffer

/*
 * Where a topic's blocks are, kept sparse: the heap holds a *sample* of the blocks in place, not every block.
 *
 *   segment 7                                               segment 8
 *   +----+----+----+----+----+----+----+----+- ... -+       +----+----+----+- ...
 *   | T  | U  | T  | T  | U  | T  | T  | T  |       |       | T  | U  | T  |
 *   +----+----+----+----+----+----+----+----+- ... -+       +----+----+----+- ...
 *     ^sample k          (run k: T's blocks from its sample   ^sample k+1: a run never crosses a segment
 *                         up to the next sample)
 *
 * A sample is a block's first sequence, position and the bytes of the topic's blocks before it. A block starts a new
 * run (becomes a sample) when it is the topic's first, when it is in another segment than the run's, when it lies
 * [STRIDE_BYTES] or more past the run's sample, or when the run holds [STRIDE_BLOCKS] blocks already. Any other block
 * is found by walking the segment from its run's sample, header by header (each checked at its place), counting the
 * topic's blocks in place and skipping everything else (other topics, relocated copies): at most [STRIDE_BLOCKS]
 * blocks of the topic and [STRIDE_BYTES] and one block of the segment. A topic of small single appends thus costs 24
 * bytes per [STRIDE_BLOCKS] blocks: under a byte per record.
 *
 * Copies retention made of a topic's oldest live blocks ([move]) lie out of log order, so each is held whole, apart
 * from the samples, with its first sequence and record count: a copy is found by sequence, before any walk. A topic's
 * copies usually hold its oldest live records, densely up to where its blocks in place are live — but not always: a
 * block retention could not copy (too large for today's segments) stays in place among copies of later ones. Lookups
 * by sequence do not care; [seek] and [firstKeeping] take a slower path, block by block, when copies are not such a
 * prefix, and [forEachLive] counts a run of blocks in place unless copies hold all of its records.
 *
 * Thread-safety: changes ([add], [move], [dropBelow], [clearInPlace]) are serialized — the thread finishing groups adds
 * and moves, retention drops. Readers look up concurrently without locks: every block holding a sequence below the
 * topic's acknowledged end is found, provided that end was read before the lookup (blocks are added before the end is
 * published).
 */
internal class BlockIndex(private val topicId: Int) {
    /** Samples [base, count): 3 longs each — first sequence, position, bytes before — from `data[0]`. Immutable. */
    private class Samples(val data: LongArray, val base: Int, val count: Int) {
        val held: Int get() = count - base

        fun firstSeq(k: Int): Long = data[3 * at(k)]
        fun position(k: Int): Long = data[3 * at(k) + 1]
        fun bytesBefore(k: Int): Long = data[3 * at(k) + 2]

        private fun at(k: Int): Int = if (k >= base) k - base else throw Dropped

        /** The last sample whose first sequence is at most [seq]; [base] if none. Needs a sample held. */
        fun find(seq: Long): Int {
            var lo = base
            var hi = count - 1
            var found = base
            while (lo <= hi) {
                val mid = (lo + hi) ushr 1
                if (data[3 * (mid - base)] <= seq) {
                    found = mid
                    lo = mid + 1
                } else {
                    hi = mid - 1
                }
            }
            return found
        }
    }

    /** Copies [0, size): 4 longs each — first sequence, record count, position, length. Only positions change. */
    private class Copies(val data: LongArray, val size: Int) {
        fun firstSeq(i: Int): Long = data[4 * i]
        fun end(i: Int): Long = data[4 * i] + data[4 * i + 1]
        fun count(i: Int): Int = data[4 * i + 1].toInt()
        fun position(i: Int): Long = POSITIONS.getAcquire(data, 4 * i + 2) as Long
        fun length(i: Int): Int = data[4 * i + 3].toInt()

        /** Whether copies hold every record of [[from], [until]) (true if that is empty). */
        fun cover(from: Long, until: Long): Boolean {
            if (from >= until) return true
            var i = find(from)
            if (i < 0 || end(i) <= from) return false
            var x = end(i)
            while (x < until) {
                i++
                if (i >= size || firstSeq(i) != x) return false
                x = end(i)
            }
            return true
        }

        /** The last copy whose first sequence is at most [seq]; -1 if none. */
        fun find(seq: Long): Int {
            var lo = 0
            var hi = size - 1
            var found = -1
            while (lo <= hi) {
                val mid = (lo + hi) ushr 1
                if (data[4 * mid] <= seq) {
                    found = mid
                    lo = mid + 1
                } else {
                    hi = mid - 1
                }
            }
            return found
        }
    }

    @Volatile private var samples = Samples(LongArray(3 * 4), 0, 0)

    @Volatile private var copies = Copies(LongArray(0), 0)

    /** The bytes of every block added in place (running since the log began, dropped blocks included). */
    @Volatile var bytes: Long = 0
        private set

    // The run being added to (changes only).
    private var runSegment = -1
    private var runOffset = 0
    private var runBlocks = 0

    /** Samples and copies held: what the index costs, in entries of 24 and 32 bytes. */
    val heldEntries: Int get() = samples.held + copies.size

    /** The bytes of heap the index's arrays take. */
    fun heapBytes(): Long = 8L * (samples.data.size + copies.data.size)

    /** Adds the block of [length] bytes at [position] whose first record is [firstSeq]: the topic's next, in log order. */
    @Synchronized
    fun add(firstSeq: Long, position: LogPosition, length: Int) {
        val s = samples
        if (s.held == 0 ||
            position.segmentId != runSegment ||
            position.offset - runOffset >= STRIDE_BYTES ||
            runBlocks >= STRIDE_BLOCKS
        ) {
            startRun(firstSeq, position, 1)
        } else {
            runBlocks++
        }
        bytes += length
    }

    /**
     * Adds a whole run at once (an open, from a segment summary): [blocks] blocks of [runBytes] bytes from the block at
     * [position] whose first record is [firstSeq], the topic's next, in log order. Later blocks may continue it.
     */
    @Synchronized
    fun addRun(firstSeq: Long, position: LogPosition, blocks: Int, runBytes: Long) {
        startRun(firstSeq, position, blocks)
        bytes += runBytes
    }

    /** Appends a sample for the block at [position] from [firstSeq], starting a run of [blocks] blocks so far. */
    private fun startRun(firstSeq: Long, position: LogPosition, blocks: Int) {
        val s = samples
        var data = s.data
        val k = s.held
        if (3 * k + 3 > data.size) data = data.copyOf(maxOf(12, data.size * 2))
        data[3 * k] = firstSeq
        data[3 * k + 1] = position.packed
        data[3 * k + 2] = bytes
        samples = Samples(data, s.base, s.count + 1)
        runSegment = position.segmentId
        runOffset = position.offset
        runBlocks = blocks
    }

    /** Notes [count] records from [firstSeq], a block of [length] bytes, copied by retention to [position]. */
    @Synchronized
    fun move(firstSeq: Long, count: Int, position: LogPosition, length: Int) {
        val c = copies
        val i = c.find(firstSeq)
        if (i >= 0 && c.firstSeq(i) == firstSeq) {
            POSITIONS.setRelease(c.data, 4 * i + 2, position.packed) // a copy of a copy
            return
        }
        val n = c.size
        val at = i + 1
        val data = if (at == n && 4 * n + 4 <= c.data.size) {
            c.data
        } else {
            LongArray(maxOf(16, 4 * (n + 1) + 4 * (n / 2))).also {
                System.arraycopy(c.data, 0, it, 0, 4 * at)
                System.arraycopy(c.data, 4 * at, it, 4 * at + 4, 4 * (n - at))
            }
        }
        data[4 * at] = firstSeq
        data[4 * at + 1] = count.toLong()
        data[4 * at + 2] = position.packed
        data[4 * at + 3] = length.toLong()
        copies = Copies(data, n + 1)
    }

    /**
     * Drops what only serves blocks wholly below [seq] (retention truncated them): copies, and samples but the last at
     * or below [seq].
     */
    @Synchronized
    fun dropBelow(seq: Long) {
        val s = samples
        if (s.held > 0) {
            val k = s.find(seq)
            if (k > s.base) {
                val keep = s.count - k
                val data = LongArray(maxOf(12, 3 * keep + 3 * (keep / 2)))
                System.arraycopy(s.data, 3 * (k - s.base), data, 0, 3 * keep)
                samples = Samples(data, k, s.count)
            }
        }
        val c = copies
        var d = 0
        while (d < c.size && c.end(d) <= seq) d++
        if (d > 0) copies = Copies(c.data.copyOfRange(4 * d, maxOf(4 * d, 4 * c.size)), c.size - d)
    }

    /** Forgets every block in place (recovery only, before readers exist). */
    @Synchronized
    fun clearInPlace() {
        val s = samples
        samples = Samples(LongArray(3 * 4), s.count, s.count)
        runSegment = -1
    }

    /** The first sequence of the first block in place held, or null if none (recovery: all were added since). */
    fun firstInPlace(): Long? = samples.let { if (it.held == 0) null else it.firstSeq(it.base) }

    /** The end of the copies: the first sequence after the last; [Long.MIN_VALUE] if there are none. */
    fun copiesEnd(): Long = copies.let { if (it.size == 0) Long.MIN_VALUE else it.end(it.size - 1) }

    /**
     * Sets [out] to the block holding [seq]: its copy if it has one, else the block in place (walked to through [src]).
     * If no block holds [seq] — it was truncated — the first block held after it, if any. False if there is none at
     * all (nothing was added, or all was cleared).
     */
    fun locate(seq: Long, src: BlockHeaders, out: BlockRef): Boolean {
        if (locateCopy(seq, out)) return true
        val s = samples
        if (s.held == 0) {
            val c = copies
            if (c.size == 0) return false
            val i = maxOf(0, c.find(seq))
            out.set(c.firstSeq(i), c.count(i), LogPosition(c.position(i)), c.length(i), -1, -1)
            return true
        }
        val k = s.find(seq)
        walk(s, k, s.position(k), s.firstSeq(k), s.bytesBefore(k), maxOf(seq, s.firstSeq(k)), src, out)
        return true
    }

    /**
     * Moves [out] to the block after it: the one holding [BlockRef.endSeq], which must be below the topic's acknowledged
     * end (read before [out] was located).
     */
    fun advance(out: BlockRef, src: BlockHeaders) {
        val next = out.endSeq
        if (locateCopy(next, out)) return
        val s = samples
        val k = out.sample
        if (k < s.base) {
            // From a copy, or a run since dropped: look it up.
            check(locate(next, src, out)) { "no block of topic $topicId holds $next" }
            return
        }
        if (k + 1 < s.count && s.firstSeq(k + 1) == next) {
            walk(s, k + 1, s.position(k + 1), next, s.bytesBefore(k + 1), next, src, out)
        } else {
            walk(s, k, out.position.packed + out.length, next, out.bytesBefore + out.length, next, src, out)
        }
    }

    private fun locateCopy(seq: Long, out: BlockRef): Boolean {
        val c = copies
        if (c.size == 0) return false
        val i = c.find(seq)
        if (i < 0 || seq >= c.end(i)) return false
        out.set(c.firstSeq(i), c.count(i), LogPosition(c.position(i)), c.length(i), -1, -1)
        return true
    }

    /**
     * Walks run [k] of [s] from [pos] — where the topic's block in place from [fs] starts, or a block of another topic
     * or a copy before it — with [bb] bytes of the topic's blocks before it, and sets [out] to the block holding [seq].
     */
    private fun walk(s: Samples, k: Int, pos: Long, fs: Long, bb: Long, seq: Long, src: BlockHeaders, out: BlockRef) {
        if (!walkUntil(s, k, pos, fs, bb, seq + 1, src, out) { first, count, _, _, _ -> seq < first + count }) {
            throw src.corrupt("no block of topic $topicId holds sequence $seq where its index says", LogPosition(pos))
        }
    }

    /**
     * Walks run [k] of [s] from [pos] (see [walk]), up to the topic's block from [until] if it gets there (it must be
     * the topic's acknowledged end or below), and sets [out] to the first of the topic's blocks there that [stop]
     * accepts (given its first sequence, record count, bytes before it, and a view holding its checked header at an
     * offset); false if
     * none does before the run ends.
     */
    private inline fun walkUntil(
        s: Samples,
        k: Int,
        pos: Long,
        fs: Long,
        bb: Long,
        until: Long,
        src: BlockHeaders,
        out: BlockRef,
        stop: (firstSeq: Long, count: Int, bytesBefore: Long, view: ByteBuffer, at: Int) -> Boolean,
    ): Boolean {
        // The run ends where the next begins: past its last block lie other topics' blocks, then the segment's end.
        val limit = minOf(until, if (k + 1 < s.count) s.firstSeq(k + 1) else Long.MAX_VALUE)
        var p = pos
        var first = fs
        var before = bb
        while (first < limit) {
            val position = LogPosition(p)
            val view = src.header(position)
            val at = position.offset
            val length = BlockHeader.SIZE + view.getInt(at + BlockHeader.OFF_BODY_LENGTH)
            if (view.getInt(at + BlockHeader.OFF_TOPIC) == topicId && !BlockHeader.isRelocated(view, at)) {
                val found = view.getLong(at + BlockHeader.OFF_FIRST_SEQ)
                if (found != first) {
                    throw src.corrupt("block of topic $topicId at sequence $found, expected $first", position)
                }
                val count = view.getInt(at + BlockHeader.OFF_COUNT)
                if (stop(first, count, before, view, at)) {
                    out.set(first, count, position, length, before, k)
                    return true
                }
                first += count
                before += length
            }
            p += length
        }
        return false
    }

    /**
     * The first sequence of the first block holding records in [[from], [end]) whose timestamp is at least
     * [timestamp] (its first sequence may be below [from]), or [end] if none. Timestamps are non-decreasing in
     * sequence order (copies included), so this is a binary search over copies and samples, then a walk of one run.
     */
    fun seek(timestamp: Long, from: Long, end: Long, src: BlockHeaders, out: BlockRef): Long {
        if (from >= end) return end
        if (!copiesArePrefix(from)) {
            // Block by block: copies and blocks in place interleave.
            if (!locate(from, src, out)) return end
            while (true) {
                if (out.firstSeq >= end) return end
                if (timestampAt(out.position.packed, src) >= timestamp) return out.firstSeq
                if (out.endSeq >= end) return end
                advance(out, src)
            }
        }
        val c = copies
        var i = maxOf(0, c.find(from))
        if (i < c.size && c.end(i) <= from) i++
        var j = i
        while (j < c.size && c.firstSeq(j) < end) j++ // copies [i, j) hold records in [from, end)
        if (i < j) {
            var lo = i
            var hi = j
            while (lo < hi) {
                val mid = (lo + hi) ushr 1
                if (timestampAt(c.position(mid), src) >= timestamp) hi = mid else lo = mid + 1
            }
            if (lo < j) return c.firstSeq(lo)
        }
        val start = if (j > 0) maxOf(from, c.end(j - 1)) else from
        if (start >= end) return end
        val s = samples
        if (s.held == 0) return end
        val first = s.find(start)
        val last = s.find(end - 1)
        // Samples (first, last] stamped at or after [timestamp] are [a, last]: the block sought is in run a - 1, or a.
        var a = first + 1
        var b = last + 1
        while (a < b) {
            val mid = (a + b) ushr 1
            if (timestampAt(s.position(mid), src) >= timestamp) b = mid else a = mid + 1
        }
        val run = a - 1
        val target = maxOf(start, s.firstSeq(run))
        if (!locateInRun(s, run, target, src, out)) return end
        if (walkUntil(s, run, out.position.packed, out.firstSeq, out.bytesBefore, end, src, out) { f, _, _, view, at ->
                f >= end || view.getLong(at + BlockHeader.OFF_TIMESTAMP) >= timestamp
            }
        ) {
            return minOf(out.firstSeq, end)
        }
        return if (a <= last) s.firstSeq(a) else end
    }

    /**
     * The first sequence of the newest blocks from the one holding [from] up to [end] whose bytes, headers included,
     * total at most [maxBytes] ([end] if the last alone is more; that block's first sequence if all fit).
     */
    fun firstKeeping(maxBytes: Long, from: Long, end: Long, src: BlockHeaders, out: BlockRef): Long {
        if (from >= end) return end
        if (!copiesArePrefix(from)) {
            // Block by block: copies and blocks in place interleave.
            val firsts = ArrayList<Long>()
            val lengths = ArrayList<Int>()
            if (!locate(from, src, out)) return end
            while (true) {
                firsts.add(out.firstSeq)
                lengths.add(out.length)
                if (out.endSeq >= end) break
                advance(out, src)
            }
            var cut = end
            var kept = 0L
            for (i in firsts.indices.reversed()) {
                kept += lengths[i]
                if (kept > maxBytes) break
                cut = firsts[i]
            }
            return cut
        }
        val c = copies
        val ce = copiesEnd()
        var budget = maxBytes
        var inPlaceStart = end
        val s = samples
        if (end > ce && s.held > 0) {
            val start = maxOf(from, ce)
            val k0 = s.find(start)
            if (!locateInRun(s, k0, maxOf(start, s.firstSeq(k0)), src, out)) return end
            val startSeq = out.firstSeq
            val startBytes = out.bytesBefore
            check(locate(end - 1, src, out)) { "no block of topic $topicId holds ${end - 1}" }
            val total = out.bytesBefore + out.length
            if (total - startBytes > maxBytes) {
                val need = total - maxBytes // the first block staying has at least this many bytes before it
                val last = s.find(end - 1)
                var a = k0 + 1
                var b = last + 1
                while (a < b) {
                    val mid = (a + b) ushr 1
                    if (s.bytesBefore(mid) >= need) b = mid else a = mid + 1
                }
                // Samples [a, last] have enough before them: the first block that does is in run a - 1, or is a.
                val run = a - 1
                check(locateInRun(s, run, if (run == k0) startSeq else s.firstSeq(run), src, out))
                val at = out.position.packed
                if (walkUntil(s, run, at, out.firstSeq, out.bytesBefore, end, src, out) { f, _, before, _, _ ->
                        before >= need || f >= end
                    }
                ) {
                    return minOf(out.firstSeq, end)
                }
                return if (a <= last) s.firstSeq(a) else end
            }
            budget = maxBytes - (total - startBytes)
            inPlaceStart = startSeq
        }
        var cut = inPlaceStart
        var i = c.find(inPlaceStart - 1)
        while (i >= 0 && c.end(i) > from && c.firstSeq(i) < inPlaceStart) {
            if (c.length(i) > budget) break
            budget -= c.length(i)
            cut = c.firstSeq(i)
            i--
        }
        return cut
    }

    /** Sets [out] to the block of run [k] holding [seq] (at or after the run's sample); false if run [k] has none. */
    private fun locateInRun(s: Samples, k: Int, seq: Long, src: BlockHeaders, out: BlockRef): Boolean =
        walkUntil(s, k, s.position(k), s.firstSeq(k), s.bytesBefore(k), seq + 1, src, out) { f, n, _, _, _ ->
            seq <
                f + n
        }

    private fun timestampAt(position: Long, src: BlockHeaders): Long {
        val p = LogPosition(position)
        return src.header(p).getLong(p.offset + BlockHeader.OFF_TIMESTAMP)
    }

    /**
     * Calls [action] with the segment and bytes of each copy holding records at or after [from], then of each run of
     * blocks in place from the one holding the first record after the copies (or [from]) on, if that is below [end] (the
     * topic's acknowledged end), up to the first run in a
     * segment at or past [until]. A run's bytes are its blocks' — added to it so far — from its sample on, so the run
     * holding the start counts whole: its blocks before the start lie in the same segment.
     */
    fun forEachLive(from: Long, end: Long, until: Int, action: (segment: Int, bytes: Long) -> Unit) {
        forEachCopy(from) { _, _, position, length -> action(position.segmentId, length.toLong()) }
        val s = samples
        if (s.held == 0 || from >= end) return
        val c = copies
        val total = bytes
        var k = s.find(from)
        while (k < s.count) {
            val segment = LogPosition(s.position(k)).segmentId
            if (segment >= until) break
            val runEnd = if (k + 1 < s.count) s.firstSeq(k + 1) else end
            // A run whose live records all have copies is dead where it is.
            if (!c.cover(maxOf(from, s.firstSeq(k)), minOf(runEnd, end))) {
                action(segment, (if (k + 1 < s.count) s.bytesBefore(k + 1) else total) - s.bytesBefore(k))
            }
            k++
        }
    }

    /**
     * Whether the copies holding records at or after [from], if any, run densely from a copy holding [from]: then they
     * hold the oldest live records, and the blocks in place follow them.
     */
    private fun copiesArePrefix(from: Long): Boolean {
        val c = copies
        var i = maxOf(0, c.find(from))
        if (i < c.size && c.end(i) <= from) i++
        if (i >= c.size) return true
        if (c.firstSeq(i) > from) return false
        while (i + 1 < c.size) {
            if (c.end(i) != c.firstSeq(i + 1)) return false
            i++
        }
        return true
    }

    /** Calls [action] with each copy holding records at or after [from]: first sequence, count, position, length. */
    fun forEachCopy(from: Long, action: (firstSeq: Long, count: Int, position: LogPosition, length: Int) -> Unit) {
        val c = copies
        for (i in 0 until c.size) {
            if (c.end(i) > from) action(c.firstSeq(i), c.count(i), LogPosition(c.position(i)), c.length(i))
        }
    }

    /** Retention asked for a sample it dropped meanwhile: look up again, from the topic's first sequence. */
    object Dropped : RuntimeException("block index entry dropped") {
        private fun readResolve(): Any = Dropped
        override fun fillInStackTrace(): Throwable = this
    }

    companion object {
        /** A run's blocks lie less than this many bytes past its sample, but for the last. */
        const val STRIDE_BYTES = 16 * 1024

        /** A run holds at most this many of the topic's blocks. */
        const val STRIDE_BLOCKS = 32

        private val POSITIONS = MethodHandles.arrayElementVarHandle(LongArray::class.java)
    }
}
