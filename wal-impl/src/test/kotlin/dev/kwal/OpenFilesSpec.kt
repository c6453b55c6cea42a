package dev.kwal

import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.ints.shouldBeLessThanOrEqual
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.flow.count
import java.io.File
import java.nio.file.Files
import java.nio.file.Path

/**
 * A long log holds open files only for its lock, its active segment and its spare: a sealed segment, once
 * durable, is read through its mapping and its file is closed (`Segment.release`). Counted in
 * `/proc/self/fd` (Linux), where each open segment shows up twice (a FileChannel and an
 * AsynchronousFileChannel).
 */
class OpenFilesSpec : FunSpec({

    fun openIn(dir: Path): Int = File("/proc/self/fd").listFiles()!!.count { fd ->
        runCatching { Files.readSymbolicLink(fd.toPath()).startsWith(dir) }.getOrDefault(false)
    }

    test("sealed, durable segments keep no file open, before and after a reopen").config(enabled = File("/proc/self/fd").isDirectory) {
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
})
