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
 */
internal interface FileIo {
    /** Creates [dir] and any missing parents, each with [permissions]. Nothing if [dir] is a directory already. */
    fun createDirectories(dir: Path, permissions: Set<PosixFilePermission>)

    /** The regular files directly in [dir]. */
    fun list(dir: Path): List<Path>

    /**
     * Opens [path] for reading and writing, creating it if [create] (with [permissions]). Suspending writes run on
     * [writeExecutor] (the log's writer thread), so their completion resumes the writer without a hop.
     */
    fun open(path: Path, create: Boolean, writeExecutor: ExecutorService, permissions: Set<PosixFilePermission>): LogFile

    /** Renames [from] to [to] atomically, replacing [to]. */
    fun move(from: Path, to: Path)

    /** Deletes [path] if it exists. */
    fun delete(path: Path)

    /** Makes the entries of [dir] (creations, renames, deletions) durable. */
    fun syncDirectory(dir: Path)

    /**
     * Takes an exclusive lock on [path] (created with [permissions] if missing) for as long as the returned handle is open,
     * or returns `null` if another holder — in this process or another — has it. A refused attempt must leave
     * the holder's lock intact (for other processes too); two paths to the same file are the same lock.
     */
    fun tryLock(path: Path, permissions: Set<PosixFilePermission>): Closeable?
}

/** One open file. Thread-safe, except that writes to overlapping ranges must not race. */
internal interface LogFile : Closeable {
    val path: Path

    /** Writes all of [src]'s remaining bytes at [position], suspending until the write has completed. */
    suspend fun write(src: ByteBuffer, position: Long)

    /** Writes all of [src]'s remaining bytes at [position], blocking. For headers and pre-written zeros. */
    fun writeBlocking(src: ByteBuffer, position: Long)

    /**
     * Stores all of [src]'s remaining bytes at [position], which must lie within the file's current size,
     * blocking: like [writeBlocking], but without a system call where the platform allows — through a
     * shared read-write mapping of the file. The bytes land in the operating system's page cache either way:
     * they survive a crash of this process, and [force] makes them durable (on Linux, `fdatasync` writes back
     * pages dirtied through a shared mapping like any other). For the small writes of an idle log.
     */
    fun store(src: ByteBuffer, position: Long)

    /** Makes every write so far durable (`fdatasync`). */
    fun force()

    /**
     * Maps the first [size] bytes read-only. The mapping is made by path, not through this handle: it can be made after
     * [close] too, as long as a file exists at [path]. It stays valid until [unmap] (or until the GC collects it).
     */
    fun map(size: Long): ByteBuffer

    /**
     * Unmaps [mapping] now: a buffer [map] returned — that very buffer, not a duplicate or a slice of it — which
     * nothing touches any more, through it or through any duplicate or slice: a touch after this may crash the JVM
     * (SIGSEGV), it does not throw. Call it once per mapping; it works after [close]. Where mappings cannot be
     * unmapped explicitly, or [mapping] is no real mapping, it does nothing, and the GC frees the mapping when it
     * collects it. Never throws.
     */
    fun unmap(mapping: ByteBuffer)

    fun size(): Long

    /** Closes the file, and unmaps the mapping [store] made, if any: no [store] may be running or come after. */
    override fun close()
}
