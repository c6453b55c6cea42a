package dev.kwal.engine.format

import java.io.ByteArrayOutputStream
import java.io.DataOutputStream
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
        val out = ByteArrayOutputStream()
        val d = DataOutputStream(out)
        d.writeInt(segmentId)
        d.writeInt(segmentSize)
        d.writeLong(logId)
        d.writeLong(from.packed)
        d.writeLong(to.packed)
        d.writeLong(records)
        d.writeLong(newestTimestamp)
        d.writeLong(firstName)
        d.writeLong(namesAt.packed)
        d.writeInt(names.size)
        for (n in names) {
            val b = n.encodeToByteArray()
            d.writeShort(b.size)
            d.write(b)
        }
        d.writeInt(runs.size)
        for (r in runs) {
            d.writeInt(r.topicId)
            d.writeLong(r.firstSeq)
            d.writeLong(r.position.packed)
            d.writeInt(r.blocks)
            d.writeLong(r.bytes)
            d.writeLong(r.records)
        }
        d.writeInt(relocated.size)
        for (r in relocated) {
            d.writeInt(r.topicId)
            d.writeLong(r.firstSeq)
            d.writeInt(r.count)
            d.writeLong(r.position.packed)
            d.writeInt(r.length)
        }
        d.flush()
        val body = out.toByteArray()
        val crc = CRC32C().apply { update(body) }.value.toInt()
        return ByteBuffer.allocate(HEADER + body.size).apply {
            putInt(MAGIC)
            putShort(VERSION.toShort())
            putShort(0)
            putInt(body.size)
            putInt(crc)
            put(body)
            flip()
        }
    }

    companion object {
        const val MAGIC = 0x4B57534D
        const val VERSION = 1
        const val HEADER = 16

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
