package dev.kwal.engine.storage

import dev.kwal.WalCorruptedException
import dev.kwal.engine.format.Manifest
import dev.kwal.engine.io.FileIo
import dev.kwal.engine.io.Listed
import java.nio.ByteBuffer
import java.nio.file.Path

/**
 * Reads and replaces a log's [Manifest] (`kwal.manifest`), through the log's [FileIo].
 *
 * [write] replaces it atomically and durably — a temporary file written and synced, renamed over the manifest, the
 * directory synced — so a crash at any step leaves the old manifest or the new one, whole, and [read] finds one of
 * them (a leftover temporary file is ignored, and replaced by the next write).
 *
 * Thread-safety: one writer at a time (retention); [read] only at open.
 */
internal class ManifestStore(private val io: FileIo, private val files: SegmentFiles) {
    private val path: Path = files.directory.resolve(Manifest.FILE)
    private val tmp: Path = files.directory.resolve(Manifest.TMP)

    /**
     * The manifest, or null if the log has none: [listing] (of the directory) lists no manifest.
     * One read, no file kept open. Throws [WalCorruptedException] if the file is there but holds no
     * sound manifest: the log's first segments are gone, and what they held cannot be known without it.
     */
    fun read(listing: List<Listed>): Manifest? {
        val size = listing.firstOrNull { it.name == Manifest.FILE }?.size ?: return null
        if (size > MAX_SIZE) throw WalCorruptedException("manifest of $size bytes is too large", path, 0)
        val bytes = io.read(path, size.toInt())
        return when (val r = Manifest.decode(bytes)) {
            is Manifest.Result.Ok -> r.manifest
            is Manifest.Result.Bad -> throw WalCorruptedException("bad manifest: ${r.reason}", path, 0)
        }
    }

    /** Replaces the manifest with [manifest], durably; see the class comment. */
    fun write(manifest: Manifest) {
        val bytes: ByteBuffer = manifest.encode()
        io.delete(tmp)
        val file = files.openOther(tmp, create = true)
        try {
            file.writeBlocking(bytes, 0)
            file.force()
        } finally {
            file.close()
        }
        io.move(tmp, path)
        io.syncDirectory(files.directory)
    }

    private companion object {
        /** Far more than any real manifest (names of a million topics); a bound on what [read] allocates. */
        const val MAX_SIZE = 1L shl 30
    }
}
