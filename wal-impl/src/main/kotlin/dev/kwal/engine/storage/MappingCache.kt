package dev.kwal.engine.storage

import org.slf4j.LoggerFactory
import java.nio.ByteBuffer

/**
 * Decides, for one log, which segments stay mapped for readers, and unmaps the others.
 *
 * A reader *borrows* a segment's read-only mapping ([Segment.borrowMapping]) for as long as it reads that segment,
 * and gives it back ([Segment.returnMapping]). A mapping is unmapped only while no one borrows it: a reader touching
 * memory unmapped under it would crash the JVM (SIGSEGV), not get an exception. A mapping no one borrows is *idle*,
 * and is unmapped
 * - when more than [idleLimit] segments are idle: the least recently returned ones go first. A log of 10,000
 *   segments so keeps at most [idleLimit] mappings plus one per reader in progress, not one per segment;
 * - when its segment is *retired* ([retire]: the log closed; later, a segment deleted): at once if idle, else as its
 *   last borrower gives it back — and so is any mapping a reader makes of it afterwards, as soon as it is given back.
 *
 * A segment not mapped is mapped on its next borrow, by path ([dev.kwal.engine.io.LogFile.map]), so its file may be
 * closed (sealed and durable, [Segment.release]; or the log closed).
 *
 * One lock, this object's monitor, guards the mapping state of every segment of the log ([Segment.mapping],
 * [Segment.borrowers], [Segment.retired]) and [idle]: a reader takes it twice per segment it reads, not per record.
 * The system calls — mapping and unmapping — are made outside it.
 */
internal class MappingCache(private val idleLimit: Int = DEFAULT_IDLE_LIMIT) {
    init {
        require(idleLimit >= 0) { "idleLimit $idleLimit < 0" }
    }

    private val log = LoggerFactory.getLogger(MappingCache::class.java)

    /** Mapped segments that no one borrows and that are not retired, least recently returned first. */
    private val idle = LinkedHashSet<Segment>()

    /** How many segments are mapped and idle now; for tests. */
    val idleCount: Int get() = synchronized(this) { idle.size }

    /** A duplicate of [segment]'s mapping, mapping it first if it is not mapped; count it until [giveBack]. */
    fun borrow(segment: Segment): ByteBuffer {
        synchronized(this) {
            segment.mapping?.let { return lend(segment, it) }
        }
        val fresh = segment.map()
        var spare: ByteBuffer? = null
        val view = synchronized(this) {
            val current = segment.mapping
            if (current == null) segment.mapping = fresh else spare = fresh // another reader mapped it meanwhile
            lend(segment, segment.mapping!!)
        }
        spare?.let { unmap(segment, it) } // never handed to anyone
        return view
    }

    private fun lend(segment: Segment, mapping: ByteBuffer): ByteBuffer {
        if (segment.borrowers++ == 0) idle.remove(segment)
        return mapping.duplicate()
    }

    /** Ends a [borrow] of [segment]: the duplicate it returned, and every view of it, must not be touched any more. */
    fun giveBack(segment: Segment) {
        val unmapNow = ArrayList<Pair<Segment, ByteBuffer>>(0)
        synchronized(this) {
            check(segment.borrowers > 0) { "$segment was not borrowed" }
            if (--segment.borrowers > 0) return
            if (segment.retired) {
                take(segment, unmapNow)
            } else {
                idle.add(segment) // the most recently returned: last
                val eldest = idle.iterator()
                while (idle.size > idleLimit) take(eldest.next().also { eldest.remove() }, unmapNow)
            }
        }
        for ((s, m) in unmapNow) unmap(s, m)
    }

    /**
     * Retires [segments]: none of their mappings stays once no one borrows it — those idle now are unmapped now,
     * the others when given back, and any made afterwards (a read under way that reaches another segment) when
     * given back too.
     */
    fun retire(segments: Collection<Segment>) {
        val unmapNow = ArrayList<Pair<Segment, ByteBuffer>>()
        synchronized(this) {
            for (s in segments) {
                s.retired = true
                if (s.borrowers == 0) {
                    idle.remove(s)
                    take(s, unmapNow)
                }
            }
        }
        for ((s, m) in unmapNow) unmap(s, m)
    }

    /** Detaches [segment]'s mapping, which no one borrows, into [into]. */
    private fun take(segment: Segment, into: MutableList<Pair<Segment, ByteBuffer>>) {
        val mapping = segment.mapping ?: return
        segment.mapping = null
        into.add(segment to mapping)
    }

    private fun unmap(segment: Segment, mapping: ByteBuffer) {
        try {
            segment.file.unmap(mapping)
        } catch (e: Throwable) {
            log.warn("kwal: unmapping {} failed; the GC will: {}", segment, e.toString())
        }
    }

    companion object {
        /**
         * Idle mappings kept by default: enough for readers that come back to recent segments (followers, replays
         * of the last minutes) to find them mapped; with 64 MiB segments, 4 GiB of address space at most.
         */
        const val DEFAULT_IDLE_LIMIT = 64
    }
}
