package dev.kwal

import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.format.RecordFrame
import dev.kwal.engine.format.SegmentHeader
import java.nio.ByteBuffer
import java.nio.channels.FileChannel
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.StandardOpenOption
import java.security.MessageDigest
import kotlin.io.path.isRegularFile
import kotlin.io.path.listDirectoryEntries
import kotlin.io.path.name

/**
 * Plain java.nio access to a log's files, for specs that inspect and damage them while no Wal has them open.
 * It parses blocks the way the format comments describe, without the engine's recovery code.
 */
internal object LogFiles {
    const val LOCK_FILE = "kwal.lock"

    fun segment(dir: Path, id: Int): Path = dir.resolve("seg-%010d.kwal".format(id))

    /** One block header as found in a segment file. */
    data class BlockInfo(
        val segment: Int,
        val at: Int,
        val flags: Int,
        val topicId: Int,
        val firstSeq: Long,
        val count: Int,
        val body: Int,
        val synced: Long,
    ) {
        val end: Int get() = at + BlockHeader.SIZE + body
        val size: Int get() = BlockHeader.SIZE + body
        val continued: Boolean get() = flags and BlockHeader.FLAG_CONTINUED != 0
        val compressed: Boolean get() = flags and BlockHeader.FLAG_COMPRESSED != 0
        val lastSeq: Long get() = firstSeq + count - 1
    }

    /** The ids of the segment files in [dir], in order. */
    fun segmentIds(dir: Path): List<Int> = dir.listDirectoryEntries("seg-*.kwal").mapNotNull {
        Regex("""seg-(\d{10})\.kwal""").matchEntire(it.name)?.groupValues?.get(1)?.toInt()
    }.sorted()

    /** The blocks of segment [id], in file order, stopping at the first zero header. */
    fun blocks(dir: Path, id: Int): List<BlockInfo> {
        val b = ByteBuffer.wrap(Files.readAllBytes(segment(dir, id)))
        val out = ArrayList<BlockInfo>()
        var at = SegmentHeader.SIZE
        while (at + BlockHeader.SIZE <= b.limit() && b.getInt(at) == BlockHeader.MAGIC) {
            val info = BlockInfo(
                id,
                at,
                b.get(at + BlockHeader.OFF_FLAGS).toInt(),
                b.getInt(at + BlockHeader.OFF_TOPIC),
                b.getLong(at + BlockHeader.OFF_FIRST_SEQ),
                b.getInt(at + BlockHeader.OFF_COUNT),
                b.getInt(at + BlockHeader.OFF_BODY_LENGTH),
                b.getLong(at + BlockHeader.OFF_SYNCED),
            )
            out.add(info)
            at = info.end
        }
        return out
    }

    /** Every block of every segment, in log order. */
    fun allBlocks(dir: Path): List<BlockInfo> = segmentIds(dir).flatMap { blocks(dir, it) }

    /** The segments that hold at least one block. */
    fun dataSegments(dir: Path): List<Int> = segmentIds(dir).filter { blocks(dir, it).isNotEmpty() }

    /** Topic names by topic id, read from the registry blocks (topic 0) of every segment. */
    fun topicIds(dir: Path): Map<String, Int> {
        val out = HashMap<String, Int>()
        for (blk in allBlocks(dir).filter { it.topicId == 0 }) {
            val b = ByteBuffer.wrap(Files.readAllBytes(segment(dir, blk.segment)))
            var p = blk.at + BlockHeader.SIZE
            for (i in 0 until blk.count) {
                val len = b.getInt(p + 4)
                val name = ByteArray(len).also { b.get(p + RecordFrame.HEADER_SIZE, it) }.decodeToString()
                out[name] = (blk.firstSeq + i + 1).toInt()
                p += RecordFrame.HEADER_SIZE + len
            }
        }
        return out
    }

    fun synced(blk: BlockInfo): LogPosition = LogPosition(blk.synced)

    fun write(path: Path, at: Long, bytes: ByteArray) {
        FileChannel.open(path, StandardOpenOption.WRITE).use { ch ->
            val src = ByteBuffer.wrap(bytes)
            var p = at
            while (src.hasRemaining()) p += ch.write(src, p)
            ch.force(true)
        }
    }

    fun zero(path: Path, from: Int, until: Int) {
        if (until > from) write(path, from.toLong(), ByteArray(until - from))
    }

    fun readByte(path: Path, at: Long): Byte = FileChannel.open(path, StandardOpenOption.READ).use { ch ->
        val b = ByteBuffer.allocate(1)
        ch.read(b, at)
        b.get(0)
    }

    fun flipBit(path: Path, at: Long, bit: Int = 0) {
        val old = readByte(path, at)
        write(path, at, byteArrayOf((old.toInt() xor (1 shl bit)).toByte()))
    }

    fun truncate(path: Path, size: Long) {
        FileChannel.open(path, StandardOpenOption.WRITE).use {
            it.truncate(size)
            it.force(true)
        }
    }

    /** Every file of [dir] but the lock file, by name, with a digest of its contents. */
    fun snapshot(dir: Path): Map<String, String> = dir.listDirectoryEntries()
        .filter { it.isRegularFile() && it.name != LOCK_FILE }
        .associate { p ->
            val digest = MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p))
            p.name to (Files.size(p).toString() + ":" + digest.joinToString("") { "%02x".format(it) })
        }
}
