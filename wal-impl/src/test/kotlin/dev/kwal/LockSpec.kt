package dev.kwal

import dev.kwal.Contract.readAll
import dev.kwal.engine.Kwal
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.types.shouldBeInstanceOf
import kotlinx.coroutines.delay
import kotlinx.coroutines.withTimeout
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.CountDownLatch
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit

/** One [Wal] at a time per directory (within this JVM; other processes are tested elsewhere). */
class LockSpec :
    FunSpec({
        val newDir = Contract.dirs(this)

        test("a second open of the same directory throws WalLockedException and leaves the first one working") {
            val dir = newDir()
            Kwal.open(TestLogs.small(dir)).use { wal ->
                wal.append("t", byteArrayOf(1)) shouldBe 0
                val e = shouldThrow<WalLockedException> { Kwal.open(TestLogs.small(dir)) }
                e.directory shouldBe dir
                e.shouldBeInstanceOf<WalException>()
                shouldThrow<WalLockedException> { Kwal.open(dir) } // default options too
                shouldThrow<WalLockedException> { Kwal.open(TestLogs.small(dir.resolve(".").normalize())) }
                // the failed opens changed nothing
                wal.append("t", byteArrayOf(2)) shouldBe 1
                wal.readAll("t").map { it.payload[0].toInt() } shouldBe listOf(1, 2)
            }
        }

        test("a symlinked, relative or dotted path to an open directory is the same directory") {
            val dir = newDir()
            val link = newDir().resolve("link")
            Files.createSymbolicLink(link, dir)
            // (a List<Path> + Path would add the path's name elements: Path is Iterable<Path>)
            val all =
                listOf(dir, link, Path.of("").toAbsolutePath().relativize(dir), dir.resolve("../${dir.fileName}/./"))
            Kwal.open(TestLogs.small(link)).use { wal ->
                wal.append("t", byteArrayOf(1)) shouldBe 0
                for (p in all) {
                    withClue("through $p") {
                        shouldThrow<WalLockedException> { Kwal.open(TestLogs.small(p)) }.directory shouldBe p
                    }
                }
                wal.append("t", byteArrayOf(2)) shouldBe 1
            }
            for (p in all) Kwal.open(TestLogs.small(p)).use { it.nextSequence("t") shouldBe 2 }
            Files.delete(link)
        }

        test("of many threads opening one directory at once, exactly one gets it") {
            val dir = newDir()
            Kwal.open(TestLogs.small(dir)).close() // recovery is not under test
            repeat(5) {
                val start = CountDownLatch(1)
                val outcomes = (1..8).map { i ->
                    val pool = Executors.newSingleThreadExecutor()
                    val f = pool.submit<Wal?> {
                        start.await()
                        val path = if (i % 2 == 0) dir else dir.resolve(".")
                        try {
                            Kwal.open(TestLogs.small(path))
                        } catch (_: WalLockedException) {
                            null
                        }
                    }
                    pool.shutdown()
                    f
                }
                start.countDown()
                val opened = outcomes.mapNotNull { it.get(30, TimeUnit.SECONDS) }
                opened.size shouldBe 1
                opened.single().close()
            }
        }

        test("after close the directory can be opened again, repeatedly") {
            val dir = newDir()
            repeat(5) { round ->
                val wal = Kwal.open(TestLogs.small(dir))
                wal.nextSequence("t") shouldBe round.toLong()
                wal.append("t", byteArrayOf(round.toByte())) shouldBe round.toLong()
                shouldThrow<WalLockedException> { Kwal.open(TestLogs.small(dir)) }
                wal.close()
                wal.close() // a second close does not release anything twice
            }
            Kwal.open(TestLogs.small(dir)).use { it.readAll("t").size shouldBe 5 }
        }

        test("different directories can be open at the same time") {
            val a = Kwal.open(TestLogs.small(newDir()))
            val b = Kwal.open(TestLogs.small(newDir()))
            try {
                a.append("x", byteArrayOf(1)) shouldBe 0
                b.append("x", byteArrayOf(2)) shouldBe 0
                a.readAll("x").single().payload shouldBe byteArrayOf(1)
                b.readAll("x").single().payload shouldBe byteArrayOf(2)
            } finally {
                a.close()
                b.close()
            }
        }

        test("opening a path that is a regular file throws WalException and locks nothing") {
            val file = newDir().resolve("not-a-dir")
            Files.write(file, byteArrayOf(1, 2, 3))
            shouldThrow<WalException> { Kwal.open(TestLogs.small(file)) }
            Files.readAllBytes(file) shouldBe byteArrayOf(1, 2, 3)
        }

        /** Paths inside [dir] that this process has open file descriptors on (Linux only; `null` elsewhere). */
        fun openFilesIn(dir: Path): List<Path>? {
            val fds = Path.of("/proc/self/fd")
            if (!Files.isDirectory(fds)) return null
            val real = dir.toRealPath()
            return Files.list(fds).use { s -> s.toList() }
                .mapNotNull { runCatching { Files.readSymbolicLink(it) }.getOrNull() }
                .filter { it.startsWith(real) }
        }

        test("close releases every file of the log, including pre-created spare segments") {
            val dir = newDir()
            val options = TestLogs.small(dir)
            Kwal.open(options).use { wal ->
                // ~3 segments' worth: rolling makes the writer pre-create the next segment in the background
                repeat(6) { b ->
                    wal.appendBatch("t", List(30) { TestLogs.payload("t", (b * 30 + it).toLong(), size = 1000) })
                }
                withTimeout(Contract.HANG) {
                    // wait (without asserting on time) until the pre-created segment, empty after its header, is in
                    // place
                    fun spareReady() = Files.list(dir).use { s -> s.toList() }.any { f ->
                        f.fileName.toString().endsWith(".kwal") &&
                            Files.readAllBytes(f).drop(64).all { it == 0.toByte() }
                    }
                    while (!spareReady()) delay(10)
                }
            }
            openFilesIn(dir)?.let { it shouldBe emptyList() }
            Kwal.open(options).use { wal -> wal.nextSequence("t") shouldBe 180 } // recovery finds the empty spare
            openFilesIn(dir)?.let { it shouldBe emptyList() }
        }

        test("a directory that does not exist yet is created") {
            val dir = newDir().resolve("a/b/c")
            Kwal.open(TestLogs.small(dir)).use { wal ->
                wal.directory shouldBe dir
                Files.isDirectory(dir) shouldBe true
                wal.append("t", byteArrayOf(1)) shouldBe 0
            }
        }
    })
