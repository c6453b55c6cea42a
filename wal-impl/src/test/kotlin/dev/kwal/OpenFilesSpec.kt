package dev.kwal

import dev.kwal.crash.ChildJvm
import dev.kwal.engine.Kwal
import dev.kwal.engine.KwalEngine
import dev.kwal.engine.io.CountingFileIo
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.ints.shouldBeLessThanOrEqual
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.flow.count
import kotlinx.coroutines.withTimeout
import java.io.File
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.TimeUnit
import kotlin.system.exitProcess

/**
 * A long log holds open files only for its lock, its active segment and its spare: a sealed segment, once
 * durable, has its file closed (`Segment.release`) and is read through a mapping made by path. Counted in
 * `/proc/self/fd` (Linux), where each open segment shows up twice (a FileChannel and an
 * AsynchronousFileChannel).
 */
class OpenFilesSpec :
    FunSpec({
        timeout = 180_000L

        fun openIn(dir: Path): Int = File("/proc/self/fd").listFiles()!!.count { fd ->
            runCatching { Files.readSymbolicLink(fd.toPath()).startsWith(dir) }.getOrDefault(false)
        }

        test(
            "sealed, durable segments keep no file open, before and after a reopen",
        ).config(enabled = File("/proc/self/fd").isDirectory) {
            val dir = TestLogs.tempDir("kwal-fds").toRealPath()
            val options = TestLogs.small(dir) // 64 KiB segments: 400 records of 3,000 B fill about 20
            Kwal.open(options).use { wal ->
                repeat(400) { wal.append("t", TestLogs.payload("t", it.toLong(), 3000)) }
                openIn(dir) shouldBeLessThanOrEqual 5 // lock, active and spare segments
                wal.replay("t").count() shouldBe 400
            }
            openIn(dir) shouldBe 0
            Kwal.open(options).use { wal ->
                openIn(dir) shouldBeLessThanOrEqual 5
                wal.replay("t").count() shouldBe 400
                wal.append("t", byteArrayOf(1)) shouldBe 400L
            }
        }

        /**
         * Writes [segments] batches of 15 records of 4,000 B: each fills most of a 64 KiB segment, so each takes one.
         */
        suspend fun writeSegments(dir: Path, segments: Int) {
            Kwal.open(TestLogs.small(dir, durability = Durability.None)).use { wal ->
                withTimeout(120_000) {
                    repeat(segments) { b ->
                        wal.appendBatch("t", List(BATCH) { TestLogs.payload("t", b * 15L + it, 4000) })
                    }
                }
            }
            LogFiles.dataSegments(dir).size shouldBe segments
        }

        test("recovery of a log of 200 segments holds at most a few files open at once") {
            // It used to open every segment before scanning (two descriptors each): 601 segments did not reopen under
            // `ulimit -n 1000` ("Too many open files").
            val dir = TestLogs.tempDir("kwal-fds")
            writeSegments(dir, 200)
            val io = CountingFileIo()
            KwalEngine.open(TestLogs.small(dir), io).use { wal ->
                println("OpenFilesSpec: recovering 200 segments held at most ${io.maxOpen} log files open at once")
                withClue("log files open at once during recovery") { io.maxOpen shouldBeLessThanOrEqual 4 }
                io.open shouldBeLessThanOrEqual 2 // the active segment and the spare
                wal.recovery.segments shouldBe 200
                wal.recovery.records shouldBe 200L * BATCH
                withTimeout(60_000) {
                    wal.replay("t").count() shouldBe 200 * BATCH
                    wal.append("t", byteArrayOf(1)) shouldBe 200L * BATCH
                }
            }
            io.open shouldBe 0
        }

        test("a log of 300 segments reopens in a process limited to 256 open files")
            .config(enabled = File("/bin/bash").canExecute() && !System.getProperty("os.name").startsWith("Windows")) {
                val dir = TestLogs.tempDir("kwal-fds")
                writeSegments(dir, 300)
                val out = Files.createTempFile("kwal-reopen", ".out")
                val cmd = listOf(
                    "/bin/bash", "-c", "ulimit -n 256 && exec \"$@\"", "bash",
                    ChildJvm.javaBin(), "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                    "-cp", ChildJvm.classpath(), ReopenProcess::class.java.name, dir.toString(),
                )
                val process = ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile()).start()
                try {
                    process.waitFor(120, TimeUnit.SECONDS) shouldBe true
                    val output = Files.readString(out)
                    withClue(output) {
                        process.exitValue() shouldBe 0
                        output.lines().first { it.startsWith("RECOVERED") } shouldBe "RECOVERED 300 ${300 * BATCH}"
                    }
                } finally {
                    process.destroyForcibly()
                    Files.deleteIfExists(out)
                }
            }
    }) {
    private companion object {
        const val BATCH = 15
    }
}

/** Child main for [OpenFilesSpec]: opens the log in `args[0]`, prints `RECOVERED <segments> <records>`, closes it. */
object ReopenProcess {
    @JvmStatic
    fun main(args: Array<String>) {
        try {
            Kwal.open(TestLogs.small(Path.of(args[0]))).use { wal ->
                println("RECOVERED ${wal.recovery.segments} ${wal.recovery.records}")
            }
        } catch (e: Throwable) {
            e.printStackTrace(System.out)
            System.out.flush()
            exitProcess(1)
        }
    }
}
