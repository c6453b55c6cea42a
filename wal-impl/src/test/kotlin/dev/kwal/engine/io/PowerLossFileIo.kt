package dev.kwal.engine.io

import java.io.Closeable
import java.io.IOException
import java.nio.ByteBuffer
import java.nio.channels.ClosedChannelException
import java.nio.file.NoSuchFileException
import java.nio.file.Path
import java.nio.file.attribute.PosixFilePermission
import java.util.BitSet
import java.util.IdentityHashMap
import java.util.concurrent.ExecutorService
import kotlin.random.Random

/**
 * An in-memory disk behind the I/O seam that tells what is durable from what is only in the page cache, and can
 * lose power: [cut].
 *
 * **State.** Each file (an inode, reached through directory entries like a real one) has a *volatile* image — what
 * reads, maps and sizes see — and a *durable* image. Writes change the volatile image and mark the 512-byte sectors
 * they touch dirty; [LogFile.force] copies the dirty sectors and the size to the durable image. Each directory has
 * volatile entries (what [list] and [open] see) and durable entries; creations ([open] with `create`), renames
 * ([move]) and deletions ([delete]) change the volatile entries and are logged until [syncDirectory] makes the
 * current entries durable. Directories themselves ([createDirectories]) are durable at once.
 *
 * **Background writeback.** Like the kernel's flusher, a write may first (with probability [writebackChance])
 * write back the current content of the dirty sectors it is about to overwrite, and the file's size, to the
 * durable image: a cut can then expose an intermediate state that was never synced, not only "old" or "new".
 *
 * **A cut** ([cut], or an [armCut] that fires inside the Nth seam call) draws a loss rate for this cut (0, 15, 50,
 * 85 or 100 %), then:
 * - replays each directory's logged operations since its last sync onto its durable entries, each one kept or
 *   lost independently at that rate (or, with [orderedMetadata], a random prefix of them is kept). A rename is
 *   atomic: the inode ends up under the old name or the new one, never both; a file whose creation is lost and
 *   that no kept rename names vanishes; a lost deletion brings the file back.
 * - for each surviving file: if its size changed since the last sync, keeps the new size or reverts to the old one;
 *   then each dirty sector independently keeps its new content, reverts to its durable content (zeros past the
 *   durable data), or — 10 % of dirty sectors when the rate is neither 0 nor 100 % — is **torn**: new up to a
 *   random 8-byte boundary and old after it, old then new, or an independent mix of new and old 8-byte words.
 * - the result becomes both the durable and the volatile state; every lock is released; the generation is bumped,
 *   so every handle, lock and [session] opened before the cut becomes inert: its calls throw [IOException] and
 *   change nothing. Unsynced state is therefore frozen at the instant of the cut, whatever the dead engine does
 *   afterwards.
 *
 * **Syncs observed.** Each [LogFile.force] is one step under the monitor: it starts and completes at the same seam-call
 * number. [unsynced] notes, at one moment, the files that hold writes not yet durable; [syncedBeforeLastCut] tells
 * whether each of them was then forced before the cut that ended that generation — if so, everything written before
 * that moment was durable at the cut.
 *
 * Permissions are not modelled: the `permissions` arguments are ignored.
 *
 * Every operation holds one monitor, so a cut falls between seam calls, never inside one (a call torn across
 * sectors is modelled by the per-sector choice). [LogFile.write] completes synchronously and ignores the write
 * executor. [LogFile.map] returns a live read-only view of the volatile image, like a shared mapping; it stops
 * following the file if the file later grows past its capacity (the engine maps only files that no longer grow).
 * Like a real mapping it is made by path, so also after the handle is closed; [LogFile.unmap] does nothing.
 *
 * Deterministic: a cut's outcome depends only on the state and the [Random] it is given. (A concurrent workload
 * reaches a state in a scheduling-dependent way; background writeback draws from [seed].)
 *
 * The calls made directly on this object act on the current generation at call time; an engine should be given a
 * [session], which dies at the next cut.
 */
internal class PowerLossFileIo(
    seed: Long = 0,
    private val orderedMetadata: Boolean = false,
    @Volatile var writebackChance: Double = 0.05,
) : FileIo {

    companion object {
        const val SECTOR = 512
        private const val MIN_CAPACITY = 64 shl 10
        private val LOSS_RATES = doubleArrayOf(0.0, 0.15, 0.5, 0.85, 1.0)
    }

    /** What one cut did. */
    data class CutStats(
        val lossRate: Double,
        val dirOpsKept: Int,
        val dirOpsLost: Int,
        val sectorsKept: Int,
        val sectorsReverted: Int,
        val sectorsTorn: Int,
        val sizesReverted: Int,
        val filesVanished: Int,
    )

    private class Inode(val id: Int) {
        var vol = ByteArray(0)
        var volSize = 0
        var dur = ByteArray(0)
        var durSize = 0
        val dirty = BitSet()
    }

    private sealed class DirOp {
        class Create(val name: String, val inode: Inode) : DirOp()
        class Move(val from: String, val to: String, val inode: Inode) : DirOp()
        class Delete(val name: String, val inode: Inode) : DirOp()
    }

    private class Dir {
        var vol = HashMap<String, Inode>()
        var dur = HashMap<String, Inode>()
        val pending = ArrayList<DirOp>()
    }

    private val monitor = Any()
    private val writeback = Random(seed)
    private val dirs = HashMap<Path, Dir>()
    private val locks = HashSet<Path>()
    private var nextInode = 1
    private var ops = 0L
    private var armedAt = -1L
    private var armedRandom: Random? = null

    /** A disk that lies: [LogFile.force] does nothing. Only for checking that the torture notices. */
    @Volatile var ignoreForce = false

    /** Bumped by every cut; handles and sessions of an older generation are dead. */
    @Volatile var generation = 0
        private set

    /** How many cuts happened. */
    @Volatile var cuts = 0
        private set

    /**
     * The files that held writes not yet durable (dirty sectors or a changed size) at seam call [at] of generation
     * [generation], by inode number. See [unsynced].
     */
    class Unsynced(val generation: Int, val at: Long, val inodes: Set<Int>)

    /** Inode number -> the seam call of its last force that made something durable (not counted on a lying disk). */
    private val forcedAt = HashMap<Int, Long>()

    /** [forcedAt] as it was at the last cut, and the generation that cut ended. */
    private var forcedAtLastCut: Map<Int, Long> = emptyMap()
    private var lastCutEnded = -1

    /** Forces that made something durable, since this disk was made. */
    @Volatile var forces = 0L
        private set

    /** The files, reachable by name, that hold writes not yet durable now. */
    fun unsynced(): Unsynced = synchronized(monitor) {
        val out = HashSet<Int>()
        for (d in dirs.values) for (i in d.vol.values) if (!i.dirty.isEmpty || i.volSize != i.durSize) out.add(i.id)
        Unsynced(generation, ops, out)
    }

    /**
     * Whether every file of [u] was forced after [u] was taken and before the cut that ended [u]'s generation (false
     * if that generation has not ended yet). If so, every byte written before [u] was durable at that cut.
     */
    fun syncedBeforeLastCut(u: Unsynced): Boolean = synchronized(monitor) {
        u.generation == lastCutEnded && u.inodes.all { (forcedAtLastCut[it] ?: -1L) > u.at }
    }

    /** What the last cut did, or null before the first one. */
    @Volatile var lastCut: CutStats? = null
        private set

    /**
     * A view of this disk for one engine: every call through it, or through a file it opened, fails after the next
     * cut.
     */
    fun session(): FileIo = Session(generation)

    /** Cuts the power now. */
    fun cut(random: Random): CutStats = synchronized(monitor) { doCut(random) }

    /**
     * Cuts the power inside the [n]th seam call from now (1-based); that call then fails. Replaces an earlier
     * arming.
     */
    fun armCut(n: Long, random: Random) = synchronized(monitor) {
        require(n >= 1)
        armedAt = ops + n
        armedRandom = random
    }

    /** Disarms [armCut]; returns whether a cut was still armed. */
    fun disarm(): Boolean = synchronized(monitor) {
        (armedRandom != null).also {
            armedAt = -1
            armedRandom = null
        }
    }

    /** The volatile content of [path], or null if no such entry. For tests. */
    fun contentOf(path: Path): ByteArray? = synchronized(monitor) {
        dirs[path.parent]?.vol?.get(path.fileName.toString())?.let { it.vol.copyOf(it.volSize) }
    }

    /** Whether [path] has a volatile entry. For tests. */
    fun exists(path: Path): Boolean = synchronized(monitor) {
        dirs[path.parent]?.vol?.containsKey(path.fileName.toString()) ==
            true
    }

    // ---- FileIo on the current generation ----

    override fun createDirectories(dir: Path, permissions: Set<PosixFilePermission>) =
        session().createDirectories(dir, permissions)
    override fun list(dir: Path): List<Listed> = session().list(dir)
    override fun read(path: Path, size: Int): ByteArray = session().read(path, size)
    override fun unopened(path: Path): LogFile = session().unopened(path)
    override fun open(
        path: Path,
        create: Boolean,
        writeExecutor: ExecutorService,
        permissions: Set<PosixFilePermission>,
    ): LogFile = session().open(path, create, writeExecutor, permissions)
    override fun move(from: Path, to: Path) = session().move(from, to)
    override fun delete(path: Path) = session().delete(path)
    override fun syncDirectory(dir: Path) = session().syncDirectory(dir)
    override fun tryLock(path: Path, permissions: Set<PosixFilePermission>): Closeable? =
        session().tryLock(path, permissions)

    // ---- internals; all under the monitor ----

    /** Counts a seam call by a holder of [gen]: fails if that generation is dead, or cuts the power if armed. */
    private fun enter(gen: Int, what: String) {
        if (gen != generation) throw IOException("power was cut: $what through a dead handle")
        ops++
        if (armedAt in 1..ops) {
            val r = armedRandom!!
            armedAt = -1
            armedRandom = null
            doCut(r)
            throw IOException("power cut during $what")
        }
    }

    private fun dirOf(dir: Path): Dir = dirs[dir] ?: throw NoSuchFileException(dir.toString())

    private fun ensureVol(inode: Inode, size: Int) {
        if (inode.vol.size < size) inode.vol = inode.vol.copyOf(maxOf(size, inode.vol.size * 2, MIN_CAPACITY))
    }

    private fun ensureDur(inode: Inode, size: Int) {
        if (inode.dur.size < size) inode.dur = inode.dur.copyOf(maxOf(size, inode.dur.size * 2, MIN_CAPACITY))
    }

    /** Copies the volatile content of sector [s] to the durable image. */
    private fun persistSector(inode: Inode, s: Int) {
        val from = s * SECTOR
        ensureDur(inode, from + SECTOR)
        ensureVol(inode, from + SECTOR)
        System.arraycopy(inode.vol, from, inode.dur, from, SECTOR)
    }

    private fun write(inode: Inode, src: ByteBuffer, position: Long) {
        val n = src.remaining()
        if (n == 0) return
        require(position >= 0 && position + n <= Int.MAX_VALUE) { "position $position out of range" }
        val at = position.toInt()
        val first = at / SECTOR
        val last = (at + n - 1) / SECTOR
        if (writeback.nextDouble() < writebackChance) {
            var s = inode.dirty.nextSetBit(first)
            while (s in 0..last) {
                persistSector(inode, s)
                s = inode.dirty.nextSetBit(s + 1)
            }
            inode.durSize = inode.volSize
        }
        ensureVol(inode, at + n)
        src.get(inode.vol, at, n)
        if (at + n > inode.volSize) inode.volSize = at + n
        inode.dirty.set(first, last + 1)
    }

    private fun force(inode: Inode) {
        if (ignoreForce) return
        forcedAt[inode.id] = ops
        forces++
        var s = inode.dirty.nextSetBit(0)
        while (s >= 0) {
            persistSector(inode, s)
            s = inode.dirty.nextSetBit(s + 1)
        }
        inode.dirty.clear()
        inode.durSize = inode.volSize
    }

    private fun doCut(random: Random): CutStats {
        forcedAtLastCut = HashMap(forcedAt)
        lastCutEnded = generation
        generation++
        cuts++
        armedAt = -1
        armedRandom = null
        locks.clear()
        val loss = LOSS_RATES[random.nextInt(LOSS_RATES.size)]
        var kept = 0
        var lost = 0
        val before = IdentityHashMap<Inode, Boolean>()
        val survivors = IdentityHashMap<Inode, Boolean>()
        for (dir in dirs.values.toList()) {
            for (i in dir.vol.values) before[i] = true
            for (i in dir.dur.values) before[i] = true
            val m = HashMap(dir.dur)
            val keepCount = if (orderedMetadata) random.nextInt(dir.pending.size + 1) else -1
            for ((k, op) in dir.pending.withIndex()) {
                val keep = if (orderedMetadata) k < keepCount else random.nextDouble() >= loss
                if (!keep) {
                    lost++
                    continue
                }
                kept++
                when (op) {
                    is DirOp.Create -> m[op.name] = op.inode

                    is DirOp.Move -> {
                        if (m[op.from] === op.inode) m.remove(op.from)
                        m[op.to] = op.inode
                    }

                    is DirOp.Delete -> if (m[op.name] === op.inode) m.remove(op.name)
                }
            }
            dir.pending.clear()
            dir.dur = m
            dir.vol = HashMap(m)
            for (i in m.values) survivors[i] = true
        }
        var sKept = 0
        var sReverted = 0
        var sTorn = 0
        var sizes = 0
        val tornChance = if (loss == 0.0 || loss == 1.0) 0.0 else 0.1
        for (inode in survivors.keys.sortedBy { it.id }) {
            val size = when {
                inode.volSize == inode.durSize -> inode.volSize

                random.nextDouble() < loss -> {
                    sizes++
                    inode.durSize
                }

                else -> inode.volSize
            }
            val out = ByteArray(maxOf(size, MIN_CAPACITY))
            System.arraycopy(inode.dur, 0, out, 0, minOf(inode.durSize, size, inode.dur.size))
            ensureVol(inode, size)
            ensureDur(inode, size)
            var s = inode.dirty.nextSetBit(0)
            while (s >= 0 && s * SECTOR < size) {
                val from = s * SECTOR
                val until = minOf(from + SECTOR, size)
                val oldUntil = minOf(until, inode.durSize) // past the durable size the old content is zeros
                val u = random.nextDouble()
                when {
                    u < tornChance -> {
                        sTorn++
                        val mode = random.nextInt(3)
                        val split = from + 8 * random.nextInt(SECTOR / 8 + 1)
                        var w = from
                        while (w < until) {
                            val takeNew = when (mode) {
                                0 -> w < split
                                1 -> w >= split
                                else -> random.nextBoolean()
                            }
                            val end = minOf(w + 8, until)
                            if (takeNew) {
                                System.arraycopy(inode.vol, w, out, w, end - w)
                            } else {
                                for (b in w until end) out[b] = if (b < oldUntil) inode.dur[b] else 0
                            }
                            w = end
                        }
                    }

                    random.nextDouble() < loss -> {
                        sReverted++
                        for (b in from until until) out[b] = if (b < oldUntil) inode.dur[b] else 0
                    }

                    else -> {
                        sKept++
                        System.arraycopy(inode.vol, from, out, from, until - from)
                    }
                }
                s = inode.dirty.nextSetBit(s + 1)
            }
            inode.vol = out
            inode.volSize = size
            inode.dur = out.copyOf()
            inode.durSize = size
            inode.dirty.clear()
        }
        val vanished = before.keys.count { it !in survivors }
        return CutStats(loss, kept, lost, sKept, sReverted, sTorn, sizes, vanished).also { lastCut = it }
    }

    private inner class Session(private val gen: Int) : FileIo {
        override fun createDirectories(dir: Path, permissions: Set<PosixFilePermission>) = synchronized(monitor) {
            enter(gen, "createDirectories")
            var d: Path? = dir
            while (d != null) {
                dirs.getOrPut(d) { Dir() }
                d = d.parent
            }
        }

        override fun list(dir: Path): List<Listed> = synchronized(monitor) {
            enter(gen, "list")
            dirOf(dir).vol.entries.sortedBy { it.key }.map { (name, inode) ->
                Listed(dir.resolve(name), inode.volSize.toLong())
            }
        }

        override fun read(path: Path, size: Int): ByteArray = synchronized(monitor) {
            enter(gen, "read of $path")
            val inode = dirOf(path.parent).vol[path.fileName.toString()] ?: throw NoSuchFileException(path.toString())
            inode.vol.copyOf(minOf(size, inode.volSize))
        }

        /** Opens nothing: a closed handle, which maps by path (see [Handle.map]). Not a seam call. */
        override fun unopened(path: Path): LogFile = synchronized(monitor) {
            val inode = dirOf(path.parent).vol[path.fileName.toString()] ?: Inode(-1)
            Handle(inode, path, gen).apply { close() }
        }

        override fun open(
            path: Path,
            create: Boolean,
            writeExecutor: ExecutorService,
            permissions: Set<PosixFilePermission>,
        ): LogFile = synchronized(monitor) {
            enter(gen, "open")
            val dir = dirOf(path.parent)
            val name = path.fileName.toString()
            val inode = dir.vol[name] ?: if (!create) {
                throw NoSuchFileException(path.toString())
            } else {
                Inode(nextInode++).also {
                    dir.vol[name] = it
                    dir.pending.add(DirOp.Create(name, it))
                }
            }
            Handle(inode, path, gen)
        }

        override fun move(from: Path, to: Path) = synchronized(monitor) {
            enter(gen, "move")
            require(from.parent == to.parent) { "moves across directories are not modelled" }
            val dir = dirOf(from.parent)
            val f = from.fileName.toString()
            val t = to.fileName.toString()
            val inode = dir.vol.remove(f) ?: throw NoSuchFileException(from.toString())
            dir.vol[t] = inode
            dir.pending.add(DirOp.Move(f, t, inode))
            Unit
        }

        override fun delete(path: Path) = synchronized(monitor) {
            enter(gen, "delete")
            val dir = dirOf(path.parent)
            val name = path.fileName.toString()
            dir.vol.remove(name)?.let { dir.pending.add(DirOp.Delete(name, it)) }
            Unit
        }

        override fun syncDirectory(dir: Path) = synchronized(monitor) {
            enter(gen, "syncDirectory")
            val d = dirOf(dir)
            d.dur = HashMap(d.vol)
            d.pending.clear()
        }

        override fun tryLock(path: Path, permissions: Set<PosixFilePermission>): Closeable? = synchronized(monitor) {
            enter(gen, "tryLock")
            val dir = dirOf(path.parent)
            val name = path.fileName.toString()
            if (name !in
                dir.vol
            ) {
                Inode(nextInode++).also {
                    dir.vol[name] = it
                    dir.pending.add(DirOp.Create(name, it))
                }
            }
            if (!locks.add(path)) return@synchronized null
            var released = false
            Closeable {
                synchronized(monitor) {
                    if (gen == generation && !released) locks.remove(path)
                    released = true
                }
            }
        }
    }

    private inner class Handle(private val inode: Inode, override val path: Path, private val gen: Int) : LogFile {
        @Volatile private var closed = false

        private fun enterFile(what: String) {
            if (closed) throw ClosedChannelException()
            enter(gen, "$what of $path")
        }

        override suspend fun write(src: ByteBuffer, position: Long) = writeBlocking(src, position)

        override fun writeBlocking(src: ByteBuffer, position: Long) = synchronized(monitor) {
            enterFile("write")
            write(inode, src, position)
        }

        /** A store through a mapping reaches the same page cache as a write: the model is the same. */
        override fun store(src: ByteBuffer, position: Long) = writeBlocking(src, position)

        override fun force() = synchronized(monitor) {
            enterFile("force")
            force(inode)
        }

        /** Like a real mapping, made by path: after [close] too, of the file then named [path], if there is one. */
        override fun map(size: Long): ByteBuffer = synchronized(monitor) {
            enter(gen, "map of $path")
            val inode = if (!closed) {
                inode
            } else {
                dirOf(path.parent).vol[path.fileName.toString()]
                    ?: throw NoSuchFileException(path.toString())
            }
            if (size < 0 ||
                size > inode.volSize
            ) {
                throw IOException("cannot map $size bytes of $path (${inode.volSize} bytes)")
            }
            ByteBuffer.wrap(inode.vol, 0, size.toInt()).slice().asReadOnlyBuffer()
        }

        /** A view of the in-memory image is no real mapping: nothing to unmap (the GC frees it). */
        override fun unmap(mapping: ByteBuffer) {}

        override fun size(): Long = synchronized(monitor) {
            enterFile("size")
            inode.volSize.toLong()
        }

        override fun close() {
            closed = true
        }
    }
}
