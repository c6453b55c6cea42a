package dev.kwal

import dev.kwal.engine.Kwal
import dev.kwal.engine.KwalEngine
import dev.kwal.engine.io.CountingFileIo
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.ints.shouldBeGreaterThanOrEqual
import io.kotest.matchers.ints.shouldBeLessThanOrEqual
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.withTimeout
import java.io.File
import java.nio.file.Files
import java.nio.file.Path
import kotlin.random.Random

/**
 * What a log costs the process in mappings and descriptors, counted where the kernel counts them: lines of
 * `/proc/self/maps` and links in `/proc/self/fd` naming the log's directory (Linux only).
 *
 * A log of many segments must not hold a mapping per segment (Linux allows 65,530 per process by default, and each
 * takes the segment's size in address space), and a closed log must hold none once its readers are done: mappings
 * are released when no longer needed, not when the GC gets round to it.
 */
class MappingsSpec :
    FunSpec({
        timeout = 300_000L
        val linux = File("/proc/self/maps").isFile && File("/proc/self/fd").isDirectory
        val newDir = Contract.dirs(this)

        test(
            "mappings and descriptors stay bounded over 10,000 segment rolls, with replays of old and new segments",
        ).config(enabled = linux) {
            val dir = newDir().toRealPath()
            val random = Random(20261201)
            var maxMaps = 0
            var maxFds = 0
            var replays = 0
            val started = System.nanoTime()
            Kwal.open(TestLogs.small(dir, Durability.None)).use { wal ->
                withTimeout(240_000) {
                    for (b in 0 until ROLLS) {
                        // 15 records of 4,000 B fill most of a 64 KiB segment: every batch rolls to a segment of its
                        // own.
                        wal.appendBatch("t", List(BATCH) { TestLogs.payload("t", b * BATCH.toLong() + it, 4000) })
                        if (b % 50 == 49) {
                            for (from in listOf(random.nextInt(b + 1), maxOf(0, b - random.nextInt(5)))) {
                                val records = wal.replay("t", from * BATCH.toLong()).take(BATCH).toList()
                                records.map { it.sequence } shouldBe
                                    (from * BATCH.toLong() until (from + 1) * BATCH.toLong()).toList()
                                records.forEach { it.payload shouldBe TestLogs.payload("t", it.sequence, 4000) }
                                replays++
                            }
                        }
                        if (b % 100 == 99) {
                            maxMaps = maxOf(maxMaps, mapsOf(dir))
                            maxFds = maxOf(maxFds, fdsOf(dir))
                        }
                    }
                }
                LogFiles.segmentIds(dir).size shouldBeGreaterThanOrEqual ROLLS
                maxMaps = maxOf(maxMaps, mapsOf(dir))
                maxFds = maxOf(maxFds, fdsOf(dir))
            }
            val seconds = (System.nanoTime() - started) / 1e9
            println(
                (
                    "MappingsSpec: $ROLLS rolls and $replays replays in %.1f s: " +
                        "at most $maxMaps mappings and $maxFds descriptors of the log at once"
                    ).format(seconds),
            )
            withClue("lines of /proc/self/maps naming the log directory") { maxMaps shouldBeLessThanOrEqual MAX_MAPS }
            withClue("descriptors naming the log directory") { maxFds shouldBeLessThanOrEqual MAX_FDS }
        }

        test("recovery of a log of 300 segments maps one segment at a time, and leaves none mapped") {
            val dir = newDir()
            Kwal.open(TestLogs.small(dir, Durability.None)).use { wal ->
                repeat(300) { b ->
                    wal.appendBatch("t", List(BATCH) { TestLogs.payload("t", b * BATCH.toLong() + it, 4000) })
                }
            }
            val io = CountingFileIo()
            KwalEngine.open(TestLogs.small(dir), io, idleMappings = 8).use { wal ->
                println("MappingsSpec: recovering 300 segments held at most ${io.maxMapped} mappings at once")
                withClue("mappings at once during recovery") { io.maxMapped shouldBeLessThanOrEqual 1 }
                withClue("mappings left by recovery") { io.mapped shouldBe 0 }
                wal.recovery.segments shouldBe 300
                io.resetMax()
                wal.replay("t").toList().size shouldBe 300 * BATCH
                withClue("mappings at once during a replay of every segment") { io.maxMapped shouldBeLessThanOrEqual 9 }
                withClue("mappings kept after it") { io.mapped shouldBe 8 }
            }
            withClue("mappings after close") { io.mapped shouldBe 0 }
        }

        test("a closed log leaves no mapping and no descriptor behind").config(enabled = linux) {
            val dir = newDir().toRealPath()
            Kwal.open(TestLogs.small(dir)).use { wal ->
                // About 40 segments of 64 KiB, sealed and active, every one of them read; some appends inline (no
                // sync).
                repeat(40) { b ->
                    wal.appendBatch("t", List(BATCH) { TestLogs.payload("t", b * BATCH.toLong() + it, 4000) })
                }
                repeat(20) { wal.append("n", TestLogs.payload("n", it.toLong()), Durability.None) }
                wal.replay("t").toList().size shouldBe 40 * BATCH
                wal.replay("n").toList().size shouldBe 20
                withClue("mappings while open") { mapsOf(dir) shouldBeGreaterThanOrEqual 1 }
            }
            val left = mapLines(dir).joinToString("\n")
            withClue("lines of /proc/self/maps naming the log directory after close:\n$left") {
                mapsOf(dir) shouldBe 0
            }
            fdsOf(dir) shouldBe 0
        }
    }) {
    companion object {
        const val ROLLS = 10_000
        const val BATCH = 15

        /** The engine's default bound on idle mappings, plus a few for readers and the active segment. */
        const val MAX_MAPS = 64 + 10

        /**
         * The lock, the active segment, a spare or one being prepared, a few sealed ones awaiting their background
         * sync.
         */
        const val MAX_FDS = 12

        /** The lines of `/proc/self/maps` naming a file in [dir]. */
        fun mapLines(dir: Path): List<String> =
            Files.readAllLines(Path.of("/proc/self/maps")).filter { it.contains(dir.toString()) }

        fun mapsOf(dir: Path): Int = mapLines(dir).size

        fun fdsOf(dir: Path): Int = File("/proc/self/fd").listFiles()!!.count { fd ->
            runCatching { Files.readSymbolicLink(fd.toPath()).startsWith(dir) }.getOrDefault(false)
        }
    }
}
