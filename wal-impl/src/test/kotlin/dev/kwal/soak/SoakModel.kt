package dev.kwal.soak

import dev.kwal.crash.CrashPayloads
import java.nio.ByteBuffer
import java.util.BitSet
import kotlin.random.Random

/**
 * What the soak knows was acknowledged in one topic of one log: the set of acknowledged sequences and, per
 * sequence, the CRC its payload carries (the last four bytes of a [CrashPayloads] payload, which cover the
 * topic, the writer, the writer's counter and the filler). A bit and four bytes per record: the payload itself
 * is never kept, it verifies itself ([CrashPayloads.problem]) and the CRC ties it to its sequence. The soak
 * starts a fresh log, with a fresh model, before the log passes its disk limit, so this stays bounded too.
 *
 * Thread-safe (every method synchronises on the model).
 */
class TopicModel(val name: String) {
    private val acked = BitSet()
    private val lost = BitSet()
    private var crcs = IntArray(1024)

    /** How many sequences were acknowledged. */
    var count: Long = 0
        @Synchronized get
        private set

    /** The highest acknowledged sequence, or -1. */
    var max: Long = -1
        @Synchronized get
        private set

    data class Snapshot(val count: Long, val max: Long)

    /** Records [seq] as acknowledged with payload CRC [crc]; false if it already was (the log handed it out twice). */
    @Synchronized
    fun ack(seq: Long, crc: Int): Boolean {
        require(seq in 0 until Int.MAX_VALUE) { "sequence $seq of $name out of the model's range" }
        val i = seq.toInt()
        if (acked[i]) return false
        acked.set(i)
        if (i >= crcs.size) crcs = crcs.copyOf(maxOf(i + 1, crcs.size * 2))
        crcs[i] = crc
        count++
        if (seq > max) max = seq
        return true
    }

    /** The CRC acknowledged at [seq], or null if [seq] was not (yet) acknowledged. */
    @Synchronized
    fun crcOf(seq: Long): Int? = if (seq in 0..max && acked[seq.toInt()]) crcs[seq.toInt()] else null

    @Synchronized
    fun snapshot(): Snapshot = Snapshot(count, max)

    /** Marks every acknowledged sequence at or above [from] lost (once); returns how many were newly marked. */
    @Synchronized
    fun markLostFrom(from: Long): Int {
        var n = 0
        var s = acked.nextSetBit(from.coerceIn(0, Int.MAX_VALUE.toLong()).toInt())
        while (s >= 0) {
            if (!lost[s]) {
                lost.set(s)
                n++
            }
            s = if (s == Int.MAX_VALUE) -1 else acked.nextSetBit(s + 1)
        }
        return n
    }

    /** Marks [seq] lost (once); true if it was acknowledged and not yet marked. */
    @Synchronized
    fun markLost(seq: Long): Boolean {
        val i = seq.toInt()
        if (seq !in 0..max || !acked[i] || lost[i]) return false
        lost.set(i)
        return true
    }

    /** Marks every acknowledged sequence not in [seen] lost (once); returns how many were newly marked. */
    @Synchronized
    fun markLostExcept(seen: BitSet): Int {
        val missing = acked.clone() as BitSet
        missing.andNot(seen)
        missing.andNot(lost)
        lost.or(missing)
        return missing.cardinality()
    }

    /** Up to [k] acknowledged sequences picked at random, plus the highest. */
    @Synchronized
    fun sample(random: Random, k: Int): LongArray {
        if (max < 0) return LongArray(0)
        val out = LinkedHashSet<Long>()
        repeat(k) {
            val r = random.nextInt(max.toInt() + 1)
            val s = acked.nextSetBit(r).takeIf { it >= 0 } ?: acked.previousSetBit(r)
            if (s >= 0) out += s.toLong()
        }
        out += max
        return out.toLongArray()
    }

    /** The approximate heap this model holds, in bytes. */
    @Synchronized
    fun footprint(): Long = crcs.size * 4L + acked.size() / 8 + lost.size() / 8

    companion object {
        /** The CRC a [CrashPayloads] payload carries in its last four bytes. */
        fun crcOf(payload: ByteArray): Int = ByteBuffer.wrap(payload).getInt(payload.size - 4)
    }
}

/** A uniform sample (Vitter's algorithm R) of at most [capacity] values, for percentiles over a whole run. */
class Reservoir(private val capacity: Int, seed: Long) {
    private val values = LongArray(capacity)
    private val random = Random(seed)
    private var seen = 0L

    @Synchronized
    fun add(value: Long) {
        if (seen < capacity) {
            values[seen.toInt()] = value
        } else {
            val j = random.nextLong(seen + 1)
            if (j < capacity) values[j.toInt()] = value
        }
        seen++
    }

    @Synchronized
    fun count(): Long = seen

    /** The [p]-quantile (0 < p <= 1) of the sample, by the nearest-rank method; 0 if empty. */
    @Synchronized
    fun quantile(p: Double): Long {
        val n = minOf(seen, capacity.toLong()).toInt()
        if (n == 0) return 0
        val sorted = values.copyOf(n).also { it.sort() }
        val rank = kotlin.math.ceil(p * n).toInt().coerceIn(1, n)
        return sorted[rank - 1]
    }
}

/**
 * Paces callers to [recordsPerSecond] in total: each caller takes the next free slot(s) on a shared clock and
 * sleeps until its slot. A caller that finds the clock behind by more than [burstNanos] (the log was slower than
 * the pace for a while) moves it up to now less the burst, so a stall is not followed by an unbounded catch-up.
 */
class Pacer(recordsPerSecond: Double, private val burstNanos: Long = 50_000_000L) {
    private val nanosPerRecord = 1e9 / recordsPerSecond
    private val next = java.util.concurrent.atomic.AtomicLong(System.nanoTime())

    suspend fun acquire(records: Int) {
        val cost = (records * nanosPerRecord).toLong()
        while (true) {
            val now = System.nanoTime()
            val cur = next.get()
            val slot = maxOf(cur, now - burstNanos)
            if (next.compareAndSet(cur, slot + cost)) {
                val wait = slot - now
                if (wait > 0) kotlinx.coroutines.delay((wait + 999_999) / 1_000_000)
                return
            }
        }
    }
}
