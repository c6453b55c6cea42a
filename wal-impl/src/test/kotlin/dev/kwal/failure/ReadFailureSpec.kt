package dev.kwal.failure

import dev.kwal.TestLogs
import dev.kwal.WalException
import dev.kwal.engine.Kwal
import dev.kwal.engine.KwalEngine
import dev.kwal.engine.io.FaultyFileIo
import dev.kwal.engine.io.FaultyFileIo.Op
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.types.shouldBeInstanceOf
import kotlinx.coroutines.flow.toList
import java.nio.file.Files
import java.nio.file.Path

/**
 * Failures on the read side of the seam — mapping and reading during replay, and every call recovery makes while
 * opening — give a typed [WalException], change nothing, and leave the log (or the directory) usable.
 */
class ReadFailureSpec :
    FunSpec({

        /** A closed log with a sealed segment and an active one: 60 records of 3 KiB in 64 KiB segments. */
        suspend fun written(): Path {
            val dir = TestLogs.tempDir("kwal-read")
            Kwal.open(TestLogs.small(dir)).use { wal ->
                repeat(60) { wal.append("t", TestLogs.payload("t", it.toLong(), 3000)) }
            }
            return dir
        }

        fun snapshot(dir: Path): Map<String, List<Byte>> =
            Files.list(dir).use { s -> s.filter { it.fileName.toString().startsWith("seg-") }.toList() }
                .associate { it.fileName.toString() to Files.readAllBytes(it).toList() }

        test("a failed map during replay of a sealed segment is a typed error; the next replay works") {
            val dir = written()
            val io = FaultyFileIo()
            KwalEngine.open(TestLogs.small(dir), io).use { wal ->
                // Every segment is mapped by the reader that needs it (recovery keeps none of its mappings, and a
                // segment sealed after open is not mapped when its file is closed): the replay's map fails.
                io.failFrom(Op.MAP)
                repeat(40) { wal.append("t", TestLogs.payload("t", 60L + it, 3000)) }
                val e = shouldThrow<WalException> { wal.replay("t").toList() }
                e.cause.shouldBeInstanceOf<java.io.IOException>()
                io.clear()
                wal.replay("t").toList().size shouldBe 100
                wal.append("t", byteArrayOf(1)) shouldBe 100L
            }
        }

        test("a failed map during replay of the active segment is a typed error; the next replay works") {
            val dir = written()
            val io = FaultyFileIo()
            KwalEngine.open(TestLogs.small(dir), io).use { wal ->
                // Every segment is mapped on its first read, the active one too.
                io.failFrom(Op.MAP)
                val e = shouldThrow<WalException> { wal.replay("t").toList() }
                e.cause.shouldBeInstanceOf<java.io.IOException>()
                io.clear()
                wal.replay("t").toList().size shouldBe 60
            }
        }

        test("a failure of any call recovery makes fails the open with a typed error and changes nothing") {
            val dir = written()
            val probe = FaultyFileIo()
            KwalEngine.open(TestLogs.small(dir), probe).close()
            val before = snapshot(dir)
            for (op in listOf(Op.CREATE_DIRS, Op.LOCK, Op.LIST, Op.READ, Op.OPEN, Op.MAP, Op.FORCE)) {
                for (n in 1..maxOf(1, minOf(3, probe.count(op)))) {
                    val io = FaultyFileIo().apply { failNth(op, n) }
                    val result = runCatching { KwalEngine.open(TestLogs.small(dir), io).close() }
                    withClue("$op call $n of ${probe.count(op)}") {
                        io.allFired() shouldBe true // recovery makes the same calls on the same files every time
                        result.exceptionOrNull().shouldBeInstanceOf<WalException>()
                    }
                    snapshot(dir) shouldBe before
                }
            }
            // The lock was released every time: a normal open works and sees everything.
            Kwal.open(TestLogs.small(dir)).use { it.replay("t").toList().size shouldBe 60 }
        }
    })
