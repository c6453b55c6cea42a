package dev.kwal.engine.io

import java.io.Closeable
import java.nio.ByteBuffer
import java.nio.file.Path
import java.nio.file.attribute.PosixFilePermission
import java.util.concurrent.ExecutorService

/**
 * Every file-system operation the engine performs, and nothing else: the seam where tests inject
 * failures and simulate power loss. The engine has no other path to the disk.
 *
 * Implementations throw [java.io.IOException] for I/O failures. They must be safe to call from several
 * threads at once on different files.
 *
 * What a call creates gets the `permissions` it is given (from [dev.kwal.WalOptions]), on file systems with POSIX
 * permissions, less the process's umask; what exists already is left as it is.
 *
 * ### Crash model
 * Each operation below says what a stop of the process or of the machine can leave of it. Two kinds of stop:
 * - a **process crash** (SIGKILL; the kernel and its page cache survive). Every call that returned stays done, as
 *   the process saw it: writes, stores, creations, renames, deletions. Its locks are released.
 * - a **power cut**. What was made durable survives: a file's content and size by [LogFile.force], a directory's
 *   entries by [syncDirectory]. Anything else done since may survive, be lost, or survive in part, as each
 *   operation says. Every handle and lock dies with the process.
 *
 * *Directory entries.* A creation ([open] with `create`, [tryLock]), a rename ([move]) or a deletion ([delete]) is
 * visible at once. A power cut keeps or undoes each one made in a directory since that directory's last
 * [syncDirectory], independently of the others: any subset of them may survive, a later one without an earlier one.
 * A file whose creation is undone and that no surviving rename names vanishes, however much of it was forced.
 *
 * This is the model kwal assumes of the platform. Its executable form is the test simulator `PowerLossFileIo`
 * (`wal-impl/src/test/kotlin/dev/kwal/engine/io`), which the power-cut torture runs the engine against: this text
 * and that code must say the same. In it a cut falls between two seam calls; a cut at loss rate 0 is exactly a
 * process crash.
 */
internal interface FileIo {
    /**
     * Creates [dir] and any missing parents, each with [permissions]. Nothing if [dir] is a directory already.
     *
     * Crash model: the directories it creates are durable as soon as it returns; a crash or a cut keeps them.
     * This is an assumption (kwal does not sync a directory's parent).
     */
    fun createDirectories(dir: Path, permissions: Set<PosixFilePermission>)

    /**
     * The regular files directly in [dir], with their sizes: its entries as they are now, or, after a crash or a cut,
     * as they survived. Changes nothing.
     */
    fun list(dir: Path): List<Listed>

    /**
     * The first [size] bytes of the small file [path] — fewer if it is shorter — read in one go, without keeping it
     * open or mapping it (summaries, the manifest). Throws an [java.io.IOException] if it cannot (no such file, say).
     * Crash model: it changes nothing.
     */
    fun read(path: Path, size: Int): ByteArray

    /**
     * A handle to the existing file [path] that opens nothing: it names the file ([LogFile.path]) and maps it by path
     * ([LogFile.map], [LogFile.unmap]), as a [LogFile] does after [LogFile.close]; [LogFile.close] does nothing, and
     * its other operations fail as on a closed file. For sealed segments, which readers map when they need them: an
     * open of a long log opens no file per sealed segment. Crash model: it changes nothing.
     */
    fun unopened(path: Path): LogFile

    /**
     * Opens [path] for reading and writing, creating it if [create] (with [permissions]). Suspending writes run on
     * [writeExecutor] (the log's writer thread), so their completion resumes the writer without a hop.
     *
     * Crash model: opening an existing file changes nothing. Creating one adds a directory entry (see above): a
     * crash keeps it; a power cut before the next [syncDirectory] of its directory may undo it.
     */
    fun open(
        path: Path,
        create: Boolean,
        writeExecutor: ExecutorService,
        permissions: Set<PosixFilePermission>,
    ): LogFile

    /**
     * Renames [from] to [to] atomically, replacing [to].
     *
     * Crash model: a crash keeps the rename. A power cut before the next [syncDirectory] may undo it; either way
     * the file is found under [from] or under [to], never under both, and a replaced [to] is gone only if the rename
     * survived. The file's content is not part of the rename: it is what [LogFile]'s model leaves.
     */
    fun move(from: Path, to: Path)

    /**
     * Deletes [path] if it exists.
     *
     * Crash model: a crash keeps the deletion. A power cut before the next [syncDirectory] may undo it: the file
     * comes back, with the content [LogFile]'s model leaves it.
     */
    fun delete(path: Path)

    /**
     * Makes the entries of [dir] (creations, renames, deletions) durable: once it returns, a power cut leaves them
     * as they are now. It makes no file's content durable ([LogFile.force] does), and nothing else makes entries
     * durable: [LogFile.force] does not make a new file's name survive a power cut.
     */
    fun syncDirectory(dir: Path)

    /**
     * Takes an exclusive lock on [path] (created with [permissions] if missing) for as long as the returned handle
     * is open, or returns `null` if another holder — in this process or another — has it. A refused attempt must
     * leave the holder's lock intact (for other processes too); two paths to the same file are the same lock.
     *
     * Crash model: the lock dies with its process; a crash or a cut releases it. Creating the lock file is a
     * creation like [open]'s, and a power cut may undo it too.
     */
    fun tryLock(path: Path, permissions: Set<PosixFilePermission>): Closeable?
}

/** A regular file [FileIo.list] found: its [path], and its [size] when listed. */
internal class Listed(val path: Path, val size: Long) {
    val name: String get() = path.fileName.toString()

    override fun toString(): String = "$path ($size bytes)"
}

/**
 * One open file. Thread-safe, except that writes to overlapping ranges must not race.
 *
 * ### Crash model
 * Writes and stores change at once what reads, mappings and [size] see: the page cache. A process crash keeps all of
 * it. The file's *durable* state is its content and size as of its last [force], or as background writeback left
 * them since: before a write overwrites a sector not yet forced, the system may write back what the sector holds
 * then, and the file's size then. Of a file whose directory entry survives (see [FileIo]), a power cut leaves:
 * - as its size: the current one or the durable one;
 * - in each 512-byte sector written since the last [force], independently of the others: its current content; its
 *   durable content (zeros past the durable size); or the two **torn** in 8-byte words — current up to some 8-byte
 *   boundary and durable after it, durable then current, or any mix of current and durable words. Never a byte
 *   that is in neither;
 * - in every other sector, its content.
 *
 * So a write not yet forced may be lost, whole or in part, in any subset of the sectors it touched, each possibly
 * torn. A byte that was durable, and that writes since have only rewritten with the same value, keeps that value.
 */
internal interface LogFile : Closeable {
    val path: Path

    /**
     * Writes all of [src]'s remaining bytes at [position], suspending until the write has completed.
     *
     * Crash model: once it has returned, the bytes are in the page cache: a process crash keeps them; a power cut
     * before the next [force] may lose them, in part or whole (see above). A write under way when the process dies
     * may have reached the page cache in part (the simulator, whose cuts fall between calls, does not model this).
     */
    suspend fun write(src: ByteBuffer, position: Long)

    /** Writes all of [src]'s remaining bytes at [position], blocking. For headers and pre-written zeros. As [write]. */
    fun writeBlocking(src: ByteBuffer, position: Long)

    /**
     * Stores all of [src]'s remaining bytes at [position], which must lie within the file's current size,
     * blocking: like [writeBlocking], but without a system call where the platform allows — through a
     * shared read-write mapping of the file. For the small writes of an idle log.
     *
     * Crash model: as [write]. The bytes land in the same page cache either way, so a process crash keeps them once
     * it has returned, and [force] makes them durable (on Linux, `fdatasync` writes back pages dirtied through a
     * shared mapping like any other); until then a power cut may lose them, in part or whole. A store under way when
     * the process dies may have copied part of its bytes.
     */
    fun store(src: ByteBuffer, position: Long)

    /**
     * Makes every write and store to this file so far — through any handle of it — and its size durable
     * (`fdatasync`): once it returns, a crash or a power cut leaves its content as it is now, until the next write.
     * It does not make the file's name durable ([FileIo.syncDirectory] does). A power cut during it leaves what the
     * model above allows.
     *
     * If it throws, nothing is known of the writes it was to make durable, and a later force that succeeds proves
     * nothing for them (Linux may have dropped the pages it could not write back). The simulator never fails a force.
     */
    fun force()

    /**
     * Maps the first [size] bytes read-only. The mapping is made by path, not through this handle: it can be made
     * after [close] too, as long as a file exists at [path]. It stays valid until [unmap] (or until the GC collects
     * it).
     *
     * Crash model: it changes nothing. It shows the page cache: every write and store, forced or not, including
     * bytes a power cut may still take away.
     */
    fun map(size: Long): ByteBuffer

    /**
     * Unmaps [mapping] now: a buffer [map] returned — that very buffer, not a duplicate or a slice of it — which
     * nothing touches any more, through it or through any duplicate or slice: a touch after this may crash the JVM
     * (SIGSEGV), it does not throw. Call it once per mapping; it works after [close]. Where mappings cannot be
     * unmapped explicitly, or [mapping] is no real mapping, it does nothing, and the GC frees the mapping when it
     * collects it. Never throws. Crash model: it changes nothing on disk.
     */
    fun unmap(mapping: ByteBuffer)

    /** The file's current size; a power cut before the next [force] may take it back to its durable size. */
    fun size(): Long

    /**
     * Closes the file, and unmaps the mapping [store] made, if any: no [store] may be running or come after.
     *
     * Crash model: it neither syncs nor loses anything. Writes and stores not forced stay in the page cache, exposed
     * to a power cut as before, until a [force] through another handle of the file makes them durable.
     */
    override fun close()
}
