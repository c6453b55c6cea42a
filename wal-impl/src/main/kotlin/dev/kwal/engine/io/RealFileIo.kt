package dev.kwal.engine.io

import kotlinx.coroutines.suspendCancellableCoroutine
import java.io.Closeable
import java.io.IOException
import java.nio.ByteBuffer
import java.nio.MappedByteBuffer
import java.nio.channels.AsynchronousFileChannel
import java.nio.channels.ClosedByInterruptException
import java.nio.channels.CompletionHandler
import java.nio.channels.FileChannel
import java.nio.channels.OverlappingFileLockException
import java.nio.file.Files
import java.nio.file.NoSuchFileException
import java.nio.file.Path
import java.nio.file.StandardCopyOption
import java.nio.file.StandardOpenOption
import java.nio.file.StandardOpenOption.CREATE
import java.nio.file.StandardOpenOption.READ
import java.nio.file.StandardOpenOption.WRITE
import java.util.concurrent.ExecutorService
import kotlin.coroutines.resume
import kotlin.coroutines.resumeWithException

/** The real file system: [AsynchronousFileChannel] for log files, [FileChannel] for mappings, the lock and directories. */
internal object RealFileIo : FileIo {
    override fun createDirectories(dir: Path) {
        Files.createDirectories(dir)
    }

    override fun list(dir: Path): List<Path> = Files.list(dir).use { s -> s.filter { Files.isRegularFile(it) }.toList() }

    override fun open(path: Path, create: Boolean, writeExecutor: ExecutorService): LogFile {
        val options = if (create) setOf(READ, WRITE, CREATE) else setOf(READ, WRITE)
        return RealLogFile(path, AsynchronousFileChannel.open(path, options, writeExecutor))
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

    override fun tryLock(path: Path): Closeable? {
        val channel = FileChannel.open(path, READ, WRITE, CREATE)
        val lock = try {
            channel.tryLock()
        } catch (e: OverlappingFileLockException) {
            null
        } catch (e: Throwable) {
            channel.close()
            throw e
        }
        if (lock == null) {
            channel.close()
            return null
        }
        return Closeable { channel.use { lock.release() } }
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
 * status is restored afterwards (see [uninterruptibly]). Mappings outlive the channel that made them.
 */
private class RealLogFile(
    override val path: Path,
    private val async: AsynchronousFileChannel,
) : LogFile {

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
        // A write cut short by an interrupt wrote nothing (and did not move src): the retry goes on from src's position.
        uninterruptibly(WRITE) { channel ->
            while (src.hasRemaining()) channel.write(src, position + (src.position() - base))
        }
    }

    /** The whole file mapped read-write, made at the first [store]. Segments never change size while open. */
    @Volatile private var writable: MappedByteBuffer? = null

    override fun store(src: ByteBuffer, position: Long) {
        val length = src.remaining()
        val mapping = writable ?: synchronized(this) {
            writable ?: uninterruptibly(WRITE) { it.map(FileChannel.MapMode.READ_WRITE, 0, async.size()) }.also { writable = it }
        }
        if (position < 0 || position + length > mapping.capacity()) throw IOException("store of $length bytes at $position is outside $path")
        try {
            mapping.put(position.toInt(), src, src.position(), length)
        } catch (e: InternalError) {
            // The JVM's report of SIGBUS: the file shrank under the mapping, or the disk failed to fill a page.
            throw IOException("store to $path at $position failed: $e", e)
        }
        src.position(src.limit())
    }

    override fun force() = async.force(false)

    override fun map(size: Long): ByteBuffer = uninterruptibly(READ) { it.map(FileChannel.MapMode.READ_ONLY, 0, size) }

    override fun size(): Long = async.size()

    override fun close() = async.close()

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
        override fun failed(exc: Throwable, cont: kotlinx.coroutines.CancellableContinuation<Int>) = cont.resumeWithException(exc)
    }
}
