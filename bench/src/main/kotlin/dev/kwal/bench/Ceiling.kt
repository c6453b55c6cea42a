package dev.kwal.bench

import java.nio.ByteBuffer
import java.nio.channels.FileChannel
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.StandardOpenOption.CREATE
import java.nio.file.StandardOpenOption.READ
import java.nio.file.StandardOpenOption.WRITE
import java.util.zip.CRC32C
import kotlin.random.Random

/**
 * The ceiling: a plain [FileChannel] on one file pre-written with zeros (as kwal pre-writes its segments),
 * written from one thread, one `write` per group and one `force(false)` (fdatasync) per group. It stores the
 * same payload bytes and no framing: the least work any JVM log can do for the same durability.
 */
class Ceiling(dir: Path, private val size: Long) : AutoCloseable {
    private val file: Path = dir.resolve("ceiling.dat")
    private val ch: FileChannel

    init {
        Files.createDirectories(dir)
        ch = FileChannel.open(file, READ, WRITE, CREATE)
        val zeros = ByteBuffer.allocateDirect(1 shl 20)
        var at = 0L
        while (at < size) {
            zeros.clear()
            at += ch.write(zeros, at)
        }
        ch.force(true)
    }

    private var pos = 0L

    /**
     * Writes groups of [group] records of [recordSize] bytes for [seconds] into the pre-written file (from the
     * start again when it is full), with a force per group if [force]. Returns records/s; with [latencies], each
     * group's write+force time (the bare fdatasync of that size).
     */
    fun groups(recordSize: Int, group: Int, force: Boolean, seconds: Double, latencies: Boolean = false): LoadResult {
        val bytes = recordSize * group
        val buf = ByteBuffer.allocateDirect(bytes)
        buf.put(Random(1).nextBytes(bytes)).flip()
        val lat = if (latencies) LongList() else null
        val cpu0 = processCpuNanos()
        val start = System.nanoTime()
        val deadline = start + (seconds * 1e9).toLong()
        var records = 0L
        while (System.nanoTime() < deadline) {
            val t0 = System.nanoTime()
            buf.clear()
            if (pos + bytes > size) pos = 0
            while (buf.hasRemaining()) pos += ch.write(buf, pos)
            if (force) ch.force(false)
            records += group
            lat?.add(System.nanoTime() - t0)
        }
        return LoadResult(
            records,
            System.nanoTime() - start,
            lat?.let { LongList.concat(listOf(it)) },
            processCpuNanos() - cpu0,
        )
    }

    override fun close() {
        ch.close()
        Files.deleteIfExists(file)
    }

    companion object {
        /**
         * The non-durable ceiling: groups of [group] records of [recordSize] bytes appended for [seconds] to a new
         * file in [dir] (growing, as a log's data is new bytes), one write per group, no force; the file is deleted
         * afterwards. Returns records/s.
         */
        fun appendFresh(dir: Path, recordSize: Int, group: Int, seconds: Double): LoadResult {
            Files.createDirectories(dir)
            val file = dir.resolve("ceiling-fresh.dat")
            val bytes = recordSize * group
            val buf = ByteBuffer.allocateDirect(bytes)
            buf.put(Random(1).nextBytes(bytes)).flip()
            try {
                return FileChannel.open(file, READ, WRITE, CREATE).use { ch ->
                    val cpu0 = processCpuNanos()
                    val start = System.nanoTime()
                    val deadline = start + (seconds * 1e9).toLong()
                    var records = 0L
                    var pos = 0L
                    while (System.nanoTime() < deadline) {
                        buf.clear()
                        while (buf.hasRemaining()) pos += ch.write(buf, pos)
                        records += group
                    }
                    LoadResult(records, System.nanoTime() - start, null, processCpuNanos() - cpu0)
                }
            } finally {
                Files.deleteIfExists(file)
            }
        }

        /** Reads [file] start to end in 64 KiB chunks and computes CRC32C over every byte; returns bytes/s. */
        fun readAndCrc(file: Path): Double = FileChannel.open(file, READ).use { ch ->
            val buf = ByteBuffer.allocateDirect(64 shl 10)
            val crc = CRC32C()
            val start = System.nanoTime()
            var total = 0L
            while (true) {
                buf.clear()
                val n = ch.read(buf)
                if (n < 0) break
                buf.flip()
                crc.update(buf)
                total += n
            }
            check(crc.value != 1L || total >= 0)
            total * 1e9 / (System.nanoTime() - start)
        }

        /** Writes [bytes] of random data to [file] (no force); for the replay and reopen ceilings. */
        fun fill(file: Path, bytes: Long) {
            Files.createDirectories(file.parent)
            FileChannel.open(file, READ, WRITE, CREATE).use { ch ->
                val buf = ByteBuffer.allocateDirect(1 shl 20).put(Random(2).nextBytes(1 shl 20))
                var at = 0L
                while (at < bytes) {
                    buf.clear()
                    at += ch.write(buf, at)
                }
            }
        }
    }
}
