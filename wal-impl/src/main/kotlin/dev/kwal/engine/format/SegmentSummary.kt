package dev.kwal.engine.format

import java.nio.BufferUnderflowException
import java.nio.ByteBuffer
import java.util.zip.CRC32C

/*
 * A segment summary, file `seg-NNNNNNNNNN.sum` beside segment NNNNNNNNNN: what a scan of the segment's groups would
 * add to the log's state, so that an open reads it instead of the segment (see FORMAT.md, "Segment summaries").
 *
 * It covers the groups that *end* in the segment: the log from [from] — where the previous summary's coverage ends,
 * which lies in an earlier segment when a group runs across a roll — to [to], the last such group's end (in this
 * segment; or [from] itself, covering nothing, if no group ends here). Summaries chain: each one's [from] is the
 * previous one's [to]. A group still open at the segment's end belongs to the next segment's summary.
 *
 *   offset size field
 *   0      4    magic 'KWSM' (0x4B57534D)
 *   4      2    version (1)
 *   6      2    reserved, zero
 *   8      4    body length n
 *   12     4    CRC32C of the body
 *   16     n    body, big-endian; a string is a 2-byte length, then that many bytes of UTF-8:
 *     4    segment id
 *     4    segment size
 *     8    log id
 *     8    from: packed position where the first group covered starts
 *     8    to: packed position where the last group covered ends
 *     8    records: user records (not registry names) in the blocks in place covered
 *     8    newest timestamp of the groups covered (Long.MIN_VALUE if none)
 *     8    registry sequence of the first name below; 8, packed position of the last registry block covered (0 if
 *          none); then 4, name count, and that many strings
 *     4    run count; then per run of a topic's blocks in place, in log order (see storage/BlockIndex.kt):
 *            4 topic id, 8 first sequence, 8 packed position of its first block, 4 blocks, 8 bytes, 8 records
 *     4    relocated count; then per relocated copy, in log order:
 *            4 topic id, 8 first sequence, 4 record count, 8 packed position, 4 length
 */
internal class SegmentSummary(
    val segmentId: Int,
    val segmentSize: Int,
    val logId: Long,
    val from: LogPosition,
    val to: LogPosition,
    val records: Long,
    val newestTimestamp: Long,
    val firstName: Long,
    /** Where the last registry block covered lies; [LogPosition.ZERO] if none. */
    val namesAt: LogPosition,
    val names: List<String>,
    val runs: List<Run>,
    val relocated: List<Relocated>,
) {
    /** A run of a topic's blocks in place: [blocks] blocks, [bytes] bytes and [records] records from [firstSeq]. */
    class Run(
        val topicId: Int,
        val firstSeq: Long,
        val position: LogPosition,
        val blocks: Int,
        val bytes: Long,
        val records: Long,
    )

    class Relocated(val topicId: Int, val firstSeq: Long, val count: Int, val position: LogPosition, val length: Int)

    fun encode(): ByteBuffer {
        val nameBytes = names.map { it.encodeToByteArray() }
        val bodySize = FIXED + nameBytes.sumOf { 2 + it.size } + 4 + RUN * runs.size + 4 + RELOCATED * relocated.size
        // Written in place, sized exactly: a summary of many interleaved topics holds a run per block (megabytes).
        val d = ByteBuffer.allocate(HEADER + bodySize)
        d.position(HEADER)
        d.putInt(segmentId)
        d.putInt(segmentSize)
        d.putLong(logId)
        d.putLong(from.packed)
        d.putLong(to.packed)
        d.putLong(records)
        d.putLong(newestTimestamp)
        d.putLong(firstName)
        d.putLong(namesAt.packed)
        d.putInt(names.size)
        for (b in nameBytes) {
            d.putShort(b.size.toShort())
            d.put(b)
        }
        d.putInt(runs.size)
        for (r in runs) {
            d.putInt(r.topicId)
            d.putLong(r.firstSeq)
            d.putLong(r.position.packed)
            d.putInt(r.blocks)
            d.putLong(r.bytes)
            d.putLong(r.records)
        }
        d.putInt(relocated.size)
        for (r in relocated) {
            d.putInt(r.topicId)
            d.putLong(r.firstSeq)
            d.putInt(r.count)
            d.putLong(r.position.packed)
            d.putInt(r.length)
        }
        check(d.position() == HEADER + bodySize)
        val crc = CRC32C().apply { update(d.array(), HEADER, bodySize) }.value.toInt()
        d.putInt(0, MAGIC)
        d.putShort(4, VERSION.toShort())
        d.putShort(6, 0)
        d.putInt(8, bodySize)
        d.putInt(12, crc)
        return d.flip()
    }

    companion object {
        const val MAGIC = 0x4B57534D
        const val VERSION = 1
        const val HEADER = 16

        /** The body's fixed fields before the names: two ints, seven longs, the names' count. */
        private const val FIXED = 2 * 4 + 7 * 8 + 4

        /** Bytes per run and per relocated block in the body. */
        private const val RUN = 4 + 8 + 8 + 4 + 8 + 8
        private const val RELOCATED = 4 + 8 + 4 + 8 + 4

        /** The summary in [bytes], or null if they hold none that is whole and sound. */
        fun decode(bytes: ByteArray): SegmentSummary? = try {
            val b = ByteBuffer.wrap(bytes)
            if (b.getInt() != MAGIC || b.getShort().toInt() != VERSION) return null
            b.getShort()
            val n = b.getInt()
            val crc = b.getInt()
            if (n < 0 || n != b.remaining()) return null
            if (CRC32C().apply { update(bytes, HEADER, n) }.value.toInt() != crc) return null
            val segmentId = b.getInt()
            val segmentSize = b.getInt()
            val logId = b.getLong()
            val from = LogPosition(b.getLong())
            val to = LogPosition(b.getLong())
            val records = b.getLong()
            val newest = b.getLong()
            val firstName = b.getLong()
            val namesAt = LogPosition(b.getLong())
            val names = List(count(b)) {
                val len = b.getShort().toInt() and 0xFFFF
                ByteArray(len).also { a -> b.get(a) }.decodeToString()
            }
            val runs = List(count(b)) {
                Run(b.getInt(), b.getLong(), LogPosition(b.getLong()), b.getInt(), b.getLong(), b.getLong())
            }
            val relocated = List(count(b)) {
                Relocated(b.getInt(), b.getLong(), b.getInt(), LogPosition(b.getLong()), b.getInt())
            }
            if (b.hasRemaining()) {
                null
            } else {
                SegmentSummary(
                    segmentId, segmentSize, logId, from, to, records, newest, firstName, namesAt, names, runs,
                    relocated,
                )
            }
        } catch (e: BufferUnderflowException) {
            null
        }

        /** A count, bounded by what is left to read (each element takes at least one byte). */
        private fun count(b: ByteBuffer): Int {
            val n = b.getInt()
            if (n < 0 || n > b.remaining()) throw BufferUnderflowException()
            return n
        }
    }
}
