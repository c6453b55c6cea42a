package dev.kwal.engine.storage

import dev.kwal.engine.io.LogFile
import java.nio.ByteBuffer

/**
 * One segment file. Only the writer (or an inline caller holding the writer's lock) writes it, and only
 * while it is the active segment; once [sealed], its bytes never change. Readers read it through [mapping], which
 * shows acknowledged bytes however they were written. The file stays open until the segment is sealed and
 * durable ([release]); a segment that recovery found sealed never holds it open ([recoveredSealed]).
 */
internal class Segment(val id: Int, val size: Int, val file: LogFile) {
    /** Set when the writer has moved on to the next segment: its bytes never change again. */
    @Volatile var sealed: Boolean = false

    @Volatile private var mapped: ByteBuffer? = null

    /** A read-only mapping of the whole segment, made on first use; create a [ByteBuffer.duplicate] per reader. */
    fun mapping(): ByteBuffer {
        mapped?.let { return it }
        synchronized(this) {
            mapped?.let { return it }
            return file.map(minOf(size.toLong(), file.size())).also { mapped = it }
        }
    }

    /** Whether [release] closed the file: only the mapping is left. */
    @Volatile var released: Boolean = false
        private set

    /**
     * For a sealed segment that is durable and will never be written again: maps it for readers (if not yet)
     * and closes its file, so a long log holds open files only for its active and spare segments. If the
     * mapping cannot be made, the file stays open and readers try again (and report the failure) themselves.
     */
    fun release() {
        if (released) return
        check(sealed) { "$this is not sealed" }
        try {
            mapping()
        } catch (e: java.io.IOException) {
            return
        }
        released = true
        runCatching { file.close() }
    }

    /** Hands over a mapping made elsewhere (recovery) so it is not made twice. */
    fun adoptMapping(buffer: ByteBuffer) {
        if (mapped == null) mapped = buffer
    }

    override fun toString(): String = "segment $id (${file.path.fileName})"

    companion object {
        /**
         * A segment recovery found sealed, and durable (it synced it): read through [mapping], which recovery made
         * while the file was open. It comes [released]: [closedFile] is already closed and only names the file
         * (`file.path`, for errors); nothing may read or write through it.
         */
        fun recoveredSealed(id: Int, size: Int, closedFile: LogFile, mapping: ByteBuffer): Segment =
            Segment(id, size, closedFile).apply {
                sealed = true
                mapped = mapping
                released = true
            }
    }
}
