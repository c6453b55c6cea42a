package dev.kwal.engine.storage

import dev.kwal.engine.format.SegmentSummary
import dev.kwal.engine.io.FileIo
import dev.kwal.engine.io.Listed
import java.nio.file.Path

/**
 * Reads, writes and deletes segment summaries (`seg-NNNNNNNNNN.sum`, see [SegmentSummary]) through the log's [FileIo].
 *
 * A summary is written whole or not at all: to a temporary file, synced, then renamed over its name. A summary that
 * reads as no sound summary, is as good as none: the open scans that segment instead. Summaries are
 * deleted before anything that would make them stale — a segment deleted or truncated — and the directory synced.
 *
 * Thread-safety: the summary builder writes, one at a time; an open reads and deletes before the builder runs;
 * retention deletes a segment's summary with the segment.
 */
internal class SummaryStore(private val io: FileIo, private val files: SegmentFiles) {
    fun pathOf(id: Int): Path = files.directory.resolve(nameOf(id))

    /**
     * Segment [id]'s summary, listed with [size] bytes, or null if it holds none that is sound. One read, no file kept
     * open. Throws what the file system throws: an open does not go on past a disk that fails it.
     */
    fun read(id: Int, size: Long): SegmentSummary? {
        if (size > MAX_SIZE || size < SegmentSummary.HEADER) return null
        return SegmentSummary.decode(io.read(pathOf(id), size.toInt()))
    }

    /** Writes [summary] for its segment, replacing any, durably (the directory is not synced: a lost rename is none). */
    fun write(summary: SegmentSummary) {
        val path = pathOf(summary.segmentId)
        val tmp = path.resolveSibling(path.fileName.toString() + SegmentFiles.TMP_SUFFIX)
        io.delete(tmp)
        val file = files.openOther(tmp, create = true)
        try {
            file.writeBlocking(summary.encode(), 0)
            file.force()
        } finally {
            file.close()
        }
        io.move(tmp, path)
    }

    /**
     * The summaries in [listing] (of the directory): their segment ids and sizes, in id order; and the segment ids of
     * the temporary files of summaries being written (a crash may leave one, with or without the summary it was to
     * replace).
     */
    fun list(listing: List<Listed>): Pair<Map<Int, Long>, List<Int>> {
        val sums = java.util.TreeMap<Int, Long>()
        val tmps = ArrayList<Int>()
        for (f in listing) {
            val n = f.name
            val id = idOf(n) ?: continue
            if (n.endsWith(SegmentFiles.TMP_SUFFIX)) tmps.add(id) else sums[id] = f.size
        }
        tmps.sort()
        return sums to tmps
    }

    /**
     * Deletes the summaries of [ids] and their temporary files, and the temporary files of [temporaryOnly], then syncs
     * the directory once if there were any.
     */
    fun delete(ids: Collection<Int>, temporaryOnly: Collection<Int> = emptyList()) {
        if (ids.isEmpty() && temporaryOnly.isEmpty()) return
        for (id in ids + temporaryOnly) {
            val path = pathOf(id)
            io.delete(path.resolveSibling(path.fileName.toString() + SegmentFiles.TMP_SUFFIX))
            if (id in ids) io.delete(path)
        }
        files.syncDirectory()
    }

    companion object {
        private val NAME = Regex("""seg-(\d{10})\.sum(\.tmp)?""")

        /** Far more than a summary of a 1 GiB segment of single records takes. */
        private const val MAX_SIZE = 1L shl 30

        fun nameOf(id: Int): String = "seg-" + "%010d".format(id.toLong() and 0xFFFF_FFFFL) + ".sum"

        fun idOf(fileName: String): Int? = NAME.matchEntire(fileName)?.groupValues?.get(1)?.toLongOrNull()?.toInt()
    }
}
