package dev.kwal.engine.io

import java.io.Closeable
import java.io.IOException
import java.nio.ByteBuffer
import java.nio.file.Path
import java.nio.file.attribute.PosixFilePermission
import java.util.concurrent.ExecutorService
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicLong

/**
 * A [FileIo] over the real one that fails on cue: the Nth call of a kind of operation, every call of a kind,
 * a short write (part of the bytes reach the file, then an error), or a full disk after a byte budget.
 *
 * Faults are armed with [failNth], [failFrom], [shortWriteNth] and [diskFullAfter], and counted from the moment
 * they are armed. Thread-safe.
 */
internal class FaultyFileIo(private val delegate: FileIo = RealFileIo) : FileIo {

    /** The kinds of call the engine makes through the seam. */
    enum class Op {
        CREATE_DIRS,
        LIST,
        READ,
        OPEN,
        MOVE,
        DELETE,
        SYNC_DIR,
        LOCK,
        WRITE,
        WRITE_BLOCKING,
        STORE,
        FORCE,
        MAP,
    }

    private class Rule(val op: Op, val nth: Int, val sticky: Boolean, val short: Boolean) {
        val seen = AtomicInteger()
    }

    @Volatile private var rules: List<Rule> = emptyList()
    private val counts = Op.values().associateWith { AtomicInteger() }
    private val spaceLeft = AtomicLong(Long.MAX_VALUE)

    /** How many calls of [op] were made so far (faulted ones included). */
    fun count(op: Op): Int = counts.getValue(op).get()

    /** The [n]th call of [op] from now (1-based) fails. */
    fun failNth(op: Op, n: Int) = arm(Rule(op, n, sticky = false, short = false))

    /** Every call of [op] from the [n]th on fails, until [clear]. */
    fun failFrom(op: Op, n: Int = 1) = arm(Rule(op, n, sticky = true, short = false))

    /**
     * The [n]th write from now ([Op.WRITE], [Op.WRITE_BLOCKING] or [Op.STORE]) writes about half its bytes, then
     * fails.
     */
    fun shortWriteNth(op: Op, n: Int) = arm(Rule(op, n, sticky = false, short = true))

    /** Writes fail with "No space left on device" once [bytes] more bytes have been written. */
    fun diskFullAfter(bytes: Long) = spaceLeft.set(bytes)

    /** Disarms every fault and frees the disk. */
    fun clear() {
        rules = emptyList()
        spaceLeft.set(Long.MAX_VALUE)
    }

    /** While set, every [LogFile.force] waits for this latch first: a sync held open. */
    @Volatile var forceGate: java.util.concurrent.CountDownLatch? = null

    /** Whether every fault armed so far has fired (its call came), as of now. */
    fun allFired(): Boolean = rules.all { it.seen.get() >= it.nth }

    /** How many calls of each kind were made so far: take two and subtract to count a window. */
    fun counts(): Map<Op, Int> = Op.values().associateWith { count(it) }

    private fun arm(rule: Rule) {
        synchronized(this) { rules = rules + rule }
    }

    /** Counts a call of [op]; returns the rule that makes it fail, if any. */
    private fun hit(op: Op): Rule? {
        counts.getValue(op).incrementAndGet()
        for (r in rules) {
            if (r.op != op) continue
            val n = r.seen.incrementAndGet()
            if (n == r.nth || (r.sticky && n >= r.nth)) return r
        }
        return null
    }

    private fun fail(op: Op): Nothing = throw IOException("injected failure of $op")

    private fun check(op: Op) {
        if (hit(op) != null) fail(op)
    }

    override fun createDirectories(dir: Path, permissions: Set<PosixFilePermission>) {
        check(Op.CREATE_DIRS)
        delegate.createDirectories(dir, permissions)
    }
    override fun list(dir: Path): List<Listed> {
        check(Op.LIST)
        return delegate.list(dir)
    }
    override fun read(path: Path, size: Int): ByteArray {
        check(Op.READ)
        return delegate.read(path, size)
    }
    override fun unopened(path: Path): LogFile = FaultyLogFile(delegate.unopened(path))
    override fun open(
        path: Path,
        create: Boolean,
        writeExecutor: ExecutorService,
        permissions: Set<PosixFilePermission>,
    ): LogFile {
        check(Op.OPEN)
        return FaultyLogFile(delegate.open(path, create, writeExecutor, permissions))
    }
    override fun move(from: Path, to: Path) {
        check(Op.MOVE)
        delegate.move(from, to)
    }
    override fun delete(path: Path) {
        check(Op.DELETE)
        delegate.delete(path)
    }
    override fun syncDirectory(dir: Path) {
        check(Op.SYNC_DIR)
        delegate.syncDirectory(dir)
    }
    override fun tryLock(path: Path, permissions: Set<PosixFilePermission>): Closeable? {
        check(Op.LOCK)
        return delegate.tryLock(path, permissions)
    }

    private inner class FaultyLogFile(private val file: LogFile) : LogFile {
        override val path: Path get() = file.path

        /**
         * Applies the write faults to writing [src] at [position]; returns how many bytes may be written before
         * failing, and whether to fail then. Like a real (non copy-on-write) file system, a full disk refuses only
         * bytes that grow the file: overwriting allocated bytes still works.
         */
        private fun allowance(op: Op, src: ByteBuffer, position: Long): Pair<Int, Boolean> {
            val want = src.remaining()
            val rule = hit(op)
            if (rule != null && !rule.short) fail(op)
            var allowed = if (rule != null) want / 2 else want
            var failAfter = rule != null
            val overwrite = (file.size() - position).coerceIn(0, allowed.toLong()).toInt()
            val grow = allowed - overwrite
            while (grow > 0) {
                val left = spaceLeft.get()
                if (left == Long.MAX_VALUE) break
                val take = minOf(grow.toLong(), left).toInt()
                if (spaceLeft.compareAndSet(left, left - take)) {
                    if (take < grow) {
                        allowed = overwrite + take
                        failAfter = true
                    }
                    break
                }
            }
            return allowed to failAfter
        }

        private inline fun partial(
            src: ByteBuffer,
            allowed: Int,
            failAfter: Boolean,
            op: Op,
            write: (ByteBuffer) -> Unit,
        ) {
            if (allowed > 0) {
                val part = src.duplicate()
                part.limit(part.position() + allowed)
                write(part)
                src.position(src.position() + allowed)
            }
            if (failAfter) {
                throw IOException(
                    if (spaceLeft.get() != Long.MAX_VALUE &&
                        spaceLeft.get() <= 0
                    ) {
                        "No space left on device"
                    } else {
                        "injected short $op"
                    },
                )
            }
        }

        override suspend fun write(src: ByteBuffer, position: Long) {
            val (allowed, failAfter) = allowance(Op.WRITE, src, position)
            partial(src, allowed, failAfter, Op.WRITE) { file.write(it, position) }
        }

        override fun writeBlocking(src: ByteBuffer, position: Long) {
            val (allowed, failAfter) = allowance(Op.WRITE_BLOCKING, src, position)
            partial(src, allowed, failAfter, Op.WRITE_BLOCKING) { file.writeBlocking(it, position) }
        }

        override fun store(src: ByteBuffer, position: Long) {
            val (allowed, failAfter) = allowance(Op.STORE, src, position)
            partial(src, allowed, failAfter, Op.STORE) { file.store(it, position) }
        }

        override fun force() {
            check(Op.FORCE)
            forceGate?.await()
            file.force()
        }
        override fun map(size: Long): ByteBuffer {
            check(Op.MAP)
            return file.map(size)
        }
        override fun unmap(mapping: ByteBuffer) = file.unmap(mapping)
        override fun size(): Long = file.size()
        override fun close() = file.close()
    }
}
