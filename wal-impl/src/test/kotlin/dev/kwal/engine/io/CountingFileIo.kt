package dev.kwal.engine.io

import java.io.Closeable
import java.nio.ByteBuffer
import java.nio.file.Path
import java.nio.file.attribute.PosixFilePermission
import java.util.concurrent.ExecutorService
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger

/**
 * A [FileIo] over the real one that counts the [LogFile]s currently open ([open]) and the most that were open at
 * once ([maxOpen]), and likewise the read-only mappings made and not yet unmapped ([mapped], [maxMapped]).
 * Thread-safe.
 */
internal class CountingFileIo(private val delegate: FileIo = RealFileIo) : FileIo {
    private val openFiles = AtomicInteger()
    private val max = AtomicInteger()

    /** Log files open now. */
    val open: Int get() = openFiles.get()

    /** The most log files open at once since this was made or [resetMax] was called. */
    val maxOpen: Int get() = max.get()

    fun resetMax() {
        max.set(openFiles.get())
        maxMaps.set(maps.get())
    }

    private val maps = AtomicInteger()
    private val maxMaps = AtomicInteger()

    /** Mappings made through [LogFile.map] and not unmapped through [LogFile.unmap]. */
    val mapped: Int get() = maps.get()

    /** The most such mappings at once since this was made or [resetMax] was called. */
    val maxMapped: Int get() = maxMaps.get()

    override fun open(
        path: Path,
        create: Boolean,
        writeExecutor: ExecutorService,
        permissions: Set<PosixFilePermission>,
    ): LogFile {
        val file = delegate.open(path, create, writeExecutor, permissions)
        max.accumulateAndGet(openFiles.incrementAndGet(), ::maxOf)
        return Counted(file)
    }

    override fun createDirectories(dir: Path, permissions: Set<PosixFilePermission>) =
        delegate.createDirectories(dir, permissions)
    override fun list(dir: Path): List<Listed> = delegate.list(dir)
    override fun read(path: Path, size: Int): ByteArray = delegate.read(path, size)

    /** Counts its mappings, but not as an open file: it opens none. */
    override fun unopened(path: Path): LogFile = Counted(delegate.unopened(path), counted = false)
    override fun move(from: Path, to: Path) = delegate.move(from, to)
    override fun delete(path: Path) = delegate.delete(path)
    override fun syncDirectory(dir: Path) = delegate.syncDirectory(dir)
    override fun tryLock(path: Path, permissions: Set<PosixFilePermission>): Closeable? =
        delegate.tryLock(path, permissions)

    private inner class Counted(private val file: LogFile, counted: Boolean = true) : LogFile by file {
        private val closed = AtomicBoolean(!counted)

        override fun map(size: Long): ByteBuffer = file.map(size).also {
            maxMaps.accumulateAndGet(maps.incrementAndGet(), ::maxOf)
        }

        override fun unmap(mapping: ByteBuffer) {
            maps.decrementAndGet()
            file.unmap(mapping)
        }

        override fun close() {
            try {
                file.close()
            } finally {
                if (closed.compareAndSet(false, true)) openFiles.decrementAndGet()
            }
        }
    }
}
