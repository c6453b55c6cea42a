package dev.kwal.soak

import java.io.File
import java.lang.management.ManagementFactory
import java.nio.file.Files
import java.nio.file.Path

/** What the process holds, read from `/proc/self` (Linux; -1 elsewhere). */
object ProcSelf {
    val available: Boolean = File("/proc/self/fd").isDirectory && File("/proc/self/maps").isFile

    /** Open file descriptors: all of them, and those whose target lies under [under]. */
    fun fds(under: Path): Pair<Int, Int> {
        if (!available) return -1 to -1
        val entries = File("/proc/self/fd").listFiles() ?: return -1 to -1
        var mine = 0
        for (fd in entries) {
            val target = runCatching { Files.readSymbolicLink(fd.toPath()) }.getOrNull() ?: continue
            if (target.startsWith(under)) mine++
        }
        return entries.size to mine
    }

    /** Memory mappings (lines of `/proc/self/maps`): all of them, and those of files under [under]. */
    fun maps(under: Path): Pair<Int, Int> {
        if (!available) return -1 to -1
        val prefix = under.toString() + File.separator
        var total = 0
        var mine = 0
        runCatching {
            Files.newBufferedReader(Path.of("/proc/self/maps")).useLines { lines ->
                for (line in lines) {
                    total++
                    if (line.contains(prefix)) mine++
                }
            }
        }.onFailure { return -1 to -1 }
        return total to mine
    }

    private val heapPools: Set<String> = ManagementFactory.getMemoryPoolMXBeans()
        .filter { it.type == java.lang.management.MemoryType.HEAP }.map { it.name }.toSet()

    /**
     * Heap in use at the end of a forced full collection, in MiB, and how long the collection took in ms. Read from
     * the collector's own record of the collection (`GcInfo.memoryUsageAfterGc`), so what the running appenders
     * allocate right after it does not count; `MemoryMXBean.heapMemoryUsage` if the JVM does not say.
     */
    fun heapAfterGcMb(): Pair<Double, Double> {
        val beans = ManagementFactory.getGarbageCollectorMXBeans()
        val before = beans.associate { it.name to it.collectionCount }
        val t0 = System.nanoTime()
        System.gc()
        val gcMs = (System.nanoTime() - t0) / 1e6
        val fallback = ManagementFactory.getMemoryMXBean().heapMemoryUsage.used
        val full = beans.filter { it.collectionCount > (before[it.name] ?: 0) }
            .mapNotNull { (it as? com.sun.management.GarbageCollectorMXBean)?.lastGcInfo }
            // the collection that ran last is the forced one, or one after it: either way, live heap after a GC
            .maxByOrNull { it.endTime }
        val used = full?.memoryUsageAfterGc?.filterKeys { it in heapPools }?.values?.sumOf { it.used } ?: fallback
        return used / 1048576.0 to gcMs
    }

    /** The segment files in [dir] and the bytes all its files take. */
    fun logSize(dir: Path): Pair<Int, Long> = runCatching {
        var segments = 0
        var bytes = 0L
        Files.newDirectoryStream(dir).use { files ->
            for (f in files) {
                val name = f.fileName.toString()
                if (name.startsWith("seg-") && name.endsWith(".kwal")) segments++
                bytes += runCatching { Files.size(f) }.getOrDefault(0L)
            }
        }
        segments to bytes
    }.getOrDefault(0 to 0L)
}

/** One second's reading. [open] is false while the log is being closed, checked and reopened. */
data class Sample(
    val tMillis: Long,
    val window: Int,
    val open: Boolean,
    val fds: Int,
    val logFds: Int,
    val maps: Int,
    val logMaps: Int,
    val heapMb: Double,
    val segments: Int,
    val logBytes: Long,
    val acked: Long,
)

/** A heap reading after an explicit full collection. */
data class HeapSample(val tMillis: Long, val window: Int, val usedMb: Double, val gcMillis: Double)

/**
 * "Grew without bound": the largest value in the last third of a stretch exceeds [factor] times the largest in
 * its first third, plus [slack]. Generous on purpose: a leak keeps growing, noise does not.
 */
data class GrowthLimit(val what: String, val factor: Double, val slack: Double) {
    fun bound(first: Double): Double = factor * first + slack
    override fun toString(): String = "$what: last-third max <= ${fmt(factor)}x first-third max + ${fmt(slack)}"
}

/**
 * Held per sealed segment: within one open window, a log-owned count ([what]: open files or mappings of files in
 * the log directory) that grows by more than [perSegment] per segment rolled meanwhile, and by more than [floor]
 * in all, is held for every segment the log seals and grows as long as the log stays open.
 */
data class PerSegmentLimit(val what: String, val perSegment: Double, val floor: Int) {
    fun bound(rolled: Int): Double = maxOf(perSegment * rolled, floor.toDouble())
    override fun toString(): String =
        "$what: growth within one open window <= max(${fmt(perSegment)} x segments rolled, $floor)"
}

internal fun fmt(x: Double): String = if (x == Math.rint(x) &&
    kotlin.math.abs(x) < 1e15
) {
    x.toLong().toString()
} else {
    "%.2f".format(java.util.Locale.ROOT, x)
}
