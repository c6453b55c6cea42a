package dev.kwal.engine.recovery

import dev.kwal.WalOptions
import dev.kwal.engine.format.SegmentHeader
import dev.kwal.engine.io.LogFile
import dev.kwal.engine.storage.SegmentFiles
import java.nio.ByteBuffer

/**
 * A segment file as phase 2, **probe**, found it: synced, its header decoded, its [file] closed again.
 *
 * Recovery holds open only the files it hands to the writer (or truncates), reopened with [reopen], and reads a
 * segment through a read-only mapping made by path, one segment at a time ([read]): so a log of any length opens
 * under an ordinary limit on open files and on mappings.
 */
internal class ProbedSegment(
    /** The id in the file's name (which its header may contradict: the scan checks). */
    val id: Int,
    /** The file, closed: a handle to map by path ([read]), to delete by path, or to hand over sealed. */
    val file: LogFile,
    val fileSize: Long,
    val header: SegmentHeader.Result,
    /** The size its header declares, if the header is sound and the size in range; else today's. */
    val size: Int,
    /** How far it can be read: [size], or less if the file is shorter. */
    val limit: Int,
) {
    /**
     * Runs [block] on a read-only mapping of the whole file, unmapped when it returns: nothing may keep the mapping,
     * or any view of it, past [block].
     */
    inline fun <T> read(block: (ByteBuffer) -> T): T {
        val map = file.map(fileSize)
        try {
            return block(map)
        } finally {
            file.unmap(map)
        }
    }

    /** This segment, known from its summary to have a sound header of [size] bytes for [logId] (not read). */
    fun withHeader(size: Int, logId: Long): ProbedSegment = ProbedSegment(
        id,
        file,
        fileSize,
        SegmentHeader.Result.Ok(SegmentHeader(id, size, logId, 0)),
        size,
        minOf(fileSize, size.toLong()).toInt(),
    )

    /** Opens the file again, for the writer or to truncate it, and notes it in [opened] (closed if recovery fails). */
    fun reopen(files: SegmentFiles, opened: MutableList<LogFile>): LogFile = files.openFile(id).also { opened.add(it) }

    companion object {
        /**
         * Segment [id] as an open that reads its summary instead needs it: its file's size as listed ([fileSize]),
         * and a handle that opens nothing ([SegmentFiles.unopenedFile]) — neither opened, synced (it was, before its
         * summary was written) nor read. [withHeader] completes it.
         */
        fun known(files: SegmentFiles, id: Int, fileSize: Long): ProbedSegment =
            ProbedSegment(id, files.unopenedFile(id), fileSize, SegmentHeader.Result.Bad("not read"), 0, 0)

        /**
         * Opens segment [id], makes it durable, decodes its header and closes it again; [segmentSize] is today's
         * size, assumed when the header does not declare a sound one. Throws what the file system throws, the file
         * closed.
         */
        fun probe(files: SegmentFiles, id: Int, segmentSize: Int): ProbedSegment {
            val file = files.openFile(id)
            try {
                val fileSize = file.size()
                // Whatever survived may still be only in the page cache (a crash under Durability.None): make it
                // durable now, so that the synced-through positions the writer records from here on are true.
                file.force()
                val map = file.map(fileSize)
                val header = try {
                    SegmentHeader.decode(map.duplicate())
                } finally {
                    file.unmap(map)
                }
                val declared = (header as? SegmentHeader.Result.Ok)?.header?.segmentSize
                    ?.takeIf { it in WalOptions.MIN_SEGMENT_SIZE..WalOptions.MAX_SEGMENT_SIZE } ?: segmentSize
                return ProbedSegment(id, file, fileSize, header, declared, minOf(fileSize, declared.toLong()).toInt())
            } finally {
                file.close()
            }
        }
    }
}
