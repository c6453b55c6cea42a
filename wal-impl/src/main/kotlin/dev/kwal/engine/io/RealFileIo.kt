package dev.kwal.engine.io

import kotlinx.coroutines.suspendCancellableCoroutine
import java.io.Closeable
import java.io.FileInputStream
import java.io.IOException
import java.lang.reflect.InvocationTargetException
import java.lang.reflect.Method
import java.nio.ByteBuffer
import java.nio.MappedByteBuffer
import java.nio.channels.AsynchronousFileChannel
import java.nio.channels.ClosedByInterruptException
import java.nio.channels.ClosedChannelException
import java.nio.channels.CompletionHandler
import java.nio.channels.FileChannel
import java.nio.channels.OverlappingFileLockException
import java.nio.file.FileAlreadyExistsException
import java.nio.file.Files
import java.nio.file.NoSuchFileException
import java.nio.file.Path
import java.nio.file.StandardCopyOption
import java.nio.file.StandardOpenOption
import java.nio.file.StandardOpenOption.CREATE
import java.nio.file.StandardOpenOption.READ
import java.nio.file.StandardOpenOption.WRITE
import java.nio.file.attribute.BasicFileAttributes
import java.nio.file.attribute.FileAttribute
import java.nio.file.attribute.PosixFilePermission
import java.nio.file.attribute.PosixFilePermissions
import java.util.concurrent.ExecutorService
import java.util.concurrent.atomic.AtomicBoolean
import kotlin.coroutines.resume
import kotlin.coroutines.resumeWithException

/**
 * The real file system: [AsynchronousFileChannel] for log files, [FileChannel] for mappings, the lock and directories.
 */
internal object RealFileIo : FileIo {
    override fun createDirectories(dir: Path, permissions: Set<PosixFilePermission>) {
        Files.createDirectories(dir, *attributes(dir, permissions))
    }

    /** [permissions] as the attribute to create [path] with: none where its file system has no POSIX permissions. */
    private fun attributes(path: Path, permissions: Set<PosixFilePermission>): Array<FileAttribute<*>> =
        if ("posix" in path.fileSystem.supportedFileAttributeViews()) {
            arrayOf(PosixFilePermissions.asFileAttribute(permissions))
        } else {
            emptyArray()
        }

    override fun list(dir: Path): List<Listed> = Files.list(dir).use { s ->
        s.toList().mapNotNull { p ->
            // One stat per entry, as Files.isRegularFile makes: it gives the size too. An entry deleted meanwhile is
            // not listed.
            val a = try {
                Files.readAttributes(p, BasicFileAttributes::class.java)
            } catch (_: NoSuchFileException) {
                null
            }
            if (a != null && a.isRegularFile) Listed(p, a.size()) else null
        }
    }

    override fun read(path: Path, size: Int): ByteArray {
        // A FileInputStream, not a FileChannel: an interrupt of the caller's thread does not cut it short.
        FileInputStream(path.toFile()).use { input ->
            val bytes = ByteArray(size)
            var n = 0
            while (n < size) {
                val r = input.read(bytes, n, size - n)
                if (r < 0) return bytes.copyOf(n)
                n += r
            }
            return bytes
        }
    }

    override fun unopened(path: Path): LogFile = RealLogFile(path, null)

    override fun open(
        path: Path,
        create: Boolean,
        writeExecutor: ExecutorService,
        permissions: Set<PosixFilePermission>,
    ): LogFile {
        val channel = if (create) {
            AsynchronousFileChannel.open(
                path,
                setOf(READ, WRITE, CREATE),
                writeExecutor,
                *attributes(path, permissions),
            )
        } else {
            AsynchronousFileChannel.open(path, setOf(READ, WRITE), writeExecutor)
        }
        return RealLogFile(path, channel)
    }

    override fun move(from: Path, to: Path) {
        Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING)
    }

    override fun delete(path: Path) {
        Files.deleteIfExists(path)
    }

    override fun syncDirectory(dir: Path) {
        // Linux lets a directory be opened read-only and fsync'ed; that makes its entries durable.
        try {
            FileChannel.open(dir, READ).use { it.force(true) }
        } catch (e: NoSuchFileException) {
            throw e
        } catch (e: IOException) {
            // Some platforms (Windows) cannot open directories; there is nothing more to do there.
            if (!System.getProperty("os.name").startsWith("Windows")) throw e
        }
    }

    /**
     * The real paths of the lock files this process holds through [tryLock]. A POSIX (`fcntl`) lock belongs to
     * the process, not to a descriptor, and closing *any* descriptor of the file drops every lock the process
     * has on it: so a second attempt in this process must be refused before it opens anything on the file,
     * or its cleanup would silently unlock the directory for other processes (as Lucene's `NativeFSLockFactory`
     * also guards). Keyed by real path, so a symlinked, relative or `..`-laden path to the same file is the same.
     * Guarded by itself.
     */
    private val held = HashSet<Path>()

    private fun release(real: Path) {
        synchronized(held) { held.remove(real) }
    }

    override fun tryLock(path: Path, permissions: Set<PosixFilePermission>): Closeable? {
        // A real path needs an existing file: create it first. If it exists, createFile opens nothing (this process
        // may hold a lock on it); if it creates it, it opens and closes a descriptor of a file no one has locked —
        // and the monitor makes that close happen before anyone in this process can claim, and then lock, the file.
        val real = synchronized(held) {
            try {
                Files.createFile(path, *attributes(path, permissions))
            } catch (_: FileAlreadyExistsException) {
            }
            path.toRealPath().takeIf { held.add(it) }
        } ?: return null // held in this process: open nothing, close nothing
        val channel = try {
            // CREATE: if since deleted
            FileChannel.open(real, setOf(READ, WRITE, CREATE), *attributes(real, permissions))
        } catch (e: Throwable) {
            release(real)
            throw e
        }
        val lock = try {
            channel.tryLock()
        } catch (e: OverlappingFileLockException) {
            null // locked through some other channel of this JVM, outside this seam
        } catch (e: Throwable) {
            try {
                channel.close()
            } finally {
                release(real)
            }
            throw e
        }
        if (lock == null) {
            try {
                channel.close()
            } finally {
                release(real)
            }
            return null
        }
        val released = AtomicBoolean(false)
        return Closeable {
            // Only the first close releases: a later one must not drop another holder's claim on the path.
            if (released.compareAndSet(false, true)) {
                try {
                    channel.use { lock.release() }
                } finally {
                    release(real)
                }
            }
        }
    }
}

/**
 * Unmaps mappings when kwal no longer needs them, rather than whenever the GC collects their buffers: through
 * `sun.misc.Unsafe.invokeCleaner` (JDK 9 and later; module `jdk.unsupported`, which opens `sun.misc` to everyone, so
 * no flag is needed), as Lucene and Netty do. Where it is not available, [unmap] does nothing and the GC unmaps.
 */
private object Unmapper {
    private val log = org.slf4j.LoggerFactory.getLogger(Unmapper::class.java)

    /** `Unsafe.invokeCleaner` and the `Unsafe` to call it on, or null. */
    private val cleaner: Pair<Method, Any>? = try {
        val unsafe = Class.forName("sun.misc.Unsafe")
        val instance = unsafe.getDeclaredField("theUnsafe").apply { isAccessible = true }.get(null)
        unsafe.getMethod("invokeCleaner", ByteBuffer::class.java) to instance
    } catch (e: Throwable) {
        log.info("kwal: mappings cannot be unmapped explicitly here ({}); the GC will unmap them", e.toString())
        null
    }

    /**
     * Unmaps [mapping], which must be the buffer `FileChannel.map` returned (a duplicate or slice is refused with
     * [IllegalArgumentException] by `invokeCleaner`, and left alone here) and must never be touched again.
     */
    fun unmap(mapping: ByteBuffer) {
        val (method, unsafe) = cleaner ?: return
        if (mapping !is MappedByteBuffer || !mapping.isDirect) return
        try {
            method.invoke(unsafe, mapping)
        } catch (e: InvocationTargetException) {
            log.warn("kwal: could not unmap a mapping; the GC will: {}", e.cause.toString())
        } catch (e: Exception) {
            log.warn("kwal: could not unmap a mapping; the GC will: {}", e.toString())
        }
    }
}

/**
 * One open segment file.
 *
 * Only the [AsynchronousFileChannel] stays open: its writes, [force] and [size] cannot be disturbed by a thread's
 * interrupt. Everything that needs a [FileChannel] (a blocking write, a mapping) opens a private one for that call
 * alone and closes it after: `FileChannel` is interruptible, and an interrupt during any of its operations closes
 * it for every user (`ClosedByInterruptException`). Callers' threads reach this file (a replay maps a segment, an
 * inline append stores through a mapping), and a caller's interrupt must never close a file the log shares. Such an
 * operation is also not cut short by the interrupt: it is retried on a fresh channel, and the thread's interrupt
 * status is restored afterwards (see [uninterruptibly]). Mappings outlive the channel that made them, and since every
 * [map] opens the file by path, a mapping can be made after [close] too; [unmap] releases one.
 */
private class RealLogFile(override val path: Path, private val channel: AsynchronousFileChannel?) : LogFile {
    /** The open channel; none for a file [RealFileIo.unopened] made, which is as if closed. */
    private val async: AsynchronousFileChannel get() = channel ?: throw ClosedChannelException()

    override suspend fun write(src: ByteBuffer, position: Long) {
        var at = position
        while (src.hasRemaining()) {
            val n = suspendCancellableCoroutine { cont ->
                async.write(src, at, cont, Handler)
            }
            at += n
        }
    }

    override fun writeBlocking(src: ByteBuffer, position: Long) {
        val base = src.position()
        // A write cut short by an interrupt wrote nothing (and did not move src): the retry goes on from src's
        // position.
        uninterruptibly(WRITE) { channel ->
            while (src.hasRemaining()) channel.write(src, position + (src.position() - base))
        }
    }

    /**
     * The whole file mapped read-write, made at the first [store], unmapped by [close]. Segments never change size
     * while open. Guarded by this object's monitor, which [store] holds while it copies: a store and the unmapping
     * never overlap, even if a bug let them race (it costs an uncontended lock per store: one writer stores at a time).
     */
    private var writable: MappedByteBuffer? = null
    private var closed = false

    override fun store(src: ByteBuffer, position: Long) = synchronized(this) {
        if (closed) throw ClosedChannelException()
        val length = src.remaining()
        val mapping = writable
            ?: uninterruptibly(WRITE) { it.map(FileChannel.MapMode.READ_WRITE, 0, async.size()) }.also { writable = it }
        if (position < 0 || position + length > mapping.capacity()) {
            throw IOException("store of $length bytes at $position is outside $path")
        }
        try {
            mapping.put(position.toInt(), src, src.position(), length)
        } catch (e: InternalError) {
            // The JVM's report of SIGBUS: the file shrank under the mapping, or the disk failed to fill a page.
            throw IOException("store to $path at $position failed: $e", e)
        }
        src.position(src.limit())
        Unit
    }

    override fun force() = async.force(false)

    override fun map(size: Long): ByteBuffer = uninterruptibly(READ) { it.map(FileChannel.MapMode.READ_ONLY, 0, size) }

    override fun unmap(mapping: ByteBuffer) = Unmapper.unmap(mapping)

    override fun size(): Long = async.size()

    override fun close() {
        val mapping = synchronized(this) {
            closed = true
            writable.also { writable = null }
        }
        try {
            channel?.close()
        } finally {
            // Pages dirtied through it stay in the page cache like any other: unmapping loses nothing.
            mapping?.let(Unmapper::unmap)
        }
    }

    /**
     * Runs [op] on a private [FileChannel] opened with [mode] (and READ), closed afterwards. If an interrupt closes
     * that channel, the interrupt is noted and [op] runs again on a new one; the thread's interrupt status is as it
     * was (or set, if an interrupt came meanwhile) when this returns. [op] must be safe to repeat.
     */
    private inline fun <T> uninterruptibly(mode: StandardOpenOption, op: (FileChannel) -> T): T {
        var interrupted = false
        try {
            while (true) {
                if (Thread.interrupted()) interrupted = true
                try {
                    return FileChannel.open(path, if (mode == READ) setOf(READ) else setOf(READ, mode)).use(op)
                } catch (e: ClosedByInterruptException) {
                    interrupted = true
                }
            }
        } finally {
            if (interrupted) Thread.currentThread().interrupt()
        }
    }

    /** One stateless handler for every write: the continuation travels as the attachment. */
    private object Handler : CompletionHandler<Int, kotlinx.coroutines.CancellableContinuation<Int>> {
        override fun completed(result: Int, cont: kotlinx.coroutines.CancellableContinuation<Int>) = cont.resume(result)
        override fun failed(exc: Throwable, cont: kotlinx.coroutines.CancellableContinuation<Int>) =
            cont.resumeWithException(exc)
    }
}
