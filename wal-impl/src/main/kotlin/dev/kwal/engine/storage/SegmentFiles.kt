package dev.kwal.engine.storage

import dev.kwal.engine.format.SegmentHeader
import dev.kwal.engine.io.FileIo
import dev.kwal.engine.io.LogFile
import java.nio.ByteBuffer
import java.nio.file.Path
import java.nio.file.attribute.PosixFilePermission
import java.util.concurrent.ExecutorService

/**
 * Names, creates and opens the segment files of one log directory.
 *
 * A new segment is built under a temporary name — header, then zeros to its full size, synced slice by slice —
 * and renamed into place, then the directory is synced: a file with a segment's name is always complete.
 * Pre-writing the zeros makes later syncs overwrite allocated blocks, which costs about half as much as
 * syncing a file that grows.
 */
internal class SegmentFiles(
    val directory: Path,
    private val io: FileIo,
    private val writeExecutor: ExecutorService,
    /** What the files it creates get: [dev.kwal.WalOptions.filePermissions]. */
    private val permissions: Set<PosixFilePermission>,
    /** The log's mappings, which every segment it makes shares. */
    val mappings: MappingCache,
) {
    fun pathOf(id: Int): Path = directory.resolve(nameOf(id))

    /**
     * Builds segment [id] of [size] bytes for log [logId] (see the class comment) and opens it. Before each slice of
     * zeros it calls [pace] with the fraction built so far, which may wait: a spare built in the background is paced
     * by how full the active segment is (see [SegmentSet]), so that its writes and syncs do not crowd the log's.
     */
    fun create(id: Int, size: Int, logId: Long, pace: (Double) -> Unit = {}): Segment {
        val tmp = directory.resolve(nameOf(id) + TMP_SUFFIX)
        io.delete(tmp)
        try {
            val file = io.open(tmp, create = true, writeExecutor, permissions)
            try {
                file.writeBlocking(SegmentHeader(id, size, logId, System.currentTimeMillis()).encode(), 0)
                // Zeros in slices, each synced: a log sync that the file system makes wait for this file's
                // writeback (ext4's ordered mode does) then waits for one slice, not for the whole segment.
                var at = SegmentHeader.SIZE.toLong()
                while (at < size) {
                    pace(at.toDouble() / size)
                    val until = minOf(size.toLong(), at + CREATE_SLICE)
                    writeZeros(file, at, until)
                    file.force()
                    at = until
                }
            } finally {
                file.close()
            }
            io.move(tmp, pathOf(id))
            io.syncDirectory(directory)
        } catch (e: Throwable) {
            // A half-written file (a full disk, say) must not keep holding the space it took.
            runCatching { io.delete(tmp) }
            throw e
        }
        return Segment(id, size, io.open(pathOf(id), create = false, writeExecutor, permissions), mappings)
    }

    fun open(id: Int, size: Int): Segment = Segment(id, size, openFile(id), mappings)

    /** Deletes segment [id]'s summary, then its file; the caller syncs the directory ([syncDirectory]). */
    fun delete(id: Int) {
        io.delete(directory.resolve(SummaryStore.nameOf(id)))
        io.delete(pathOf(id))
    }

    /** Makes the directory's entries durable. */
    fun syncDirectory() = io.syncDirectory(directory)

    /** Opens [path], another file of the log's directory (the manifest), creating it if [create]. */
    fun openOther(path: Path, create: Boolean): LogFile = io.open(path, create, writeExecutor, permissions)

    /** A handle to the file of segment [id] that opens nothing ([FileIo.unopened]). */
    fun unopenedFile(id: Int): LogFile = io.unopened(pathOf(id))

    /** Opens the file of segment [id], which must exist. */
    fun openFile(id: Int): LogFile = io.open(pathOf(id), create = false, writeExecutor, permissions)

    companion object {
        private const val PREFIX = "seg-"
        private const val SUFFIX = ".kwal"
        const val TMP_SUFFIX = ".tmp"
        private val NAME = Regex("""seg-(\d{10})\.kwal""")
        private const val ZERO_CHUNK = 1 shl 20
        private const val CREATE_SLICE = 1L shl 20
        private val zeros: ByteBuffer = ByteBuffer.allocateDirect(ZERO_CHUNK).asReadOnlyBuffer()

        fun nameOf(id: Int): String = PREFIX + "%010d".format(id.toLong() and 0xFFFF_FFFFL) + SUFFIX

        /** The id in a segment file name, or `null` if [fileName] is not one. */
        fun idOf(fileName: String): Int? = NAME.matchEntire(fileName)?.groupValues?.get(1)?.toLongOrNull()
            ?.takeIf { it in 1..0xFFFF_FFFFL }?.toInt()

        fun isTemporary(fileName: String): Boolean =
            fileName.startsWith(PREFIX) && fileName.endsWith(SUFFIX + TMP_SUFFIX)

        /** Overwrites [from, until) of [file] with zeros, blocking. */
        fun writeZeros(file: LogFile, from: Long, until: Long) {
            var at = from
            while (at < until) {
                val n = minOf(ZERO_CHUNK.toLong(), until - at).toInt()
                file.writeBlocking(zeros.duplicate().limit(n), at)
                at += n
            }
        }
    }
}
