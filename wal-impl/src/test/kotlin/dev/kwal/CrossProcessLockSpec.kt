package dev.kwal

import dev.kwal.crash.ChildJvm
import dev.kwal.crash.CrashOptions
import dev.kwal.crash.CrashPayloads
import dev.kwal.crash.LockHolderProcess
import dev.kwal.crash.LockProbeProcess
import dev.kwal.engine.Kwal
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.flow.toList
import java.nio.file.Files
import java.nio.file.Path
import kotlin.time.Duration.Companion.seconds

/** The directory lock holds across processes, and the OS releases it when its holder is killed. */
class CrossProcessLockSpec :
    FunSpec({
        /**
         * What a [LockProbeProcess] child says when it tries to open [dir]: [LockProbeProcess.LOCKED] or
         * [LockProbeProcess.OPENED].
         */
        fun probe(dir: Path): String? {
            val child = ChildJvm.start(LockProbeProcess::class, dir.toString())
            try {
                return withClue(lazy { child.describe() }) {
                    child.awaitReady(30_000) shouldBe true
                    child.readyLine
                }
            } finally {
                child.close()
            }
        }

        // Regression: a refused second open in this JVM used to close its own channel on kwal.lock, and closing any
        // descriptor of a file drops the process's POSIX locks on it: another process could then open the directory
        // and write it while the first Wal was still appending.
        test(
            "a refused second open in this process does not release the lock that other processes see",
        ).config(timeout = 120.seconds) {
            val dir = TestLogs.tempDir("kwal-lock")
            val link = TestLogs.tempDir("kwal-lock-link").resolve("log")
            Files.createSymbolicLink(link, dir)
            val relative = Path.of("").toAbsolutePath().relativize(dir)
            val dotted = dir.resolve("..").resolve(dir.fileName).resolve(".")
            try {
                Kwal.open(CrashOptions.of(dir)).use { wal ->
                    wal.append("held", byteArrayOf(1)) shouldBe 0
                    for (same in listOf(dir, link, relative, dotted)) {
                        withClue("second open through $same") {
                            shouldThrow<WalLockedException> { Kwal.open(CrashOptions.of(same)) }.directory shouldBe same
                        }
                    }
                    withClue("another process, after the refused opens") { probe(dir) shouldBe LockProbeProcess.LOCKED }
                    withClue("another process, through the symlink") { probe(link) shouldBe LockProbeProcess.LOCKED }
                    // the first Wal kept working throughout
                    wal.append("held", byteArrayOf(2)) shouldBe 1
                }
                // Released on close: here, through any of the paths, and in another process.
                for (same in listOf(dir, link, relative, dotted)) {
                    withClue("open through $same after close") { Kwal.open(CrashOptions.of(same)).close() }
                }
                probe(dir) shouldBe LockProbeProcess.OPENED
                Kwal.open(CrashOptions.of(link)).use { wal ->
                    wal.nextSequence("held") shouldBe 2
                    shouldThrow<WalLockedException> { Kwal.open(CrashOptions.of(dir)) }
                    probe(dir) shouldBe LockProbeProcess.LOCKED
                }
            } finally {
                Files.deleteIfExists(link)
                Files.deleteIfExists(link.parent)
                dir.toFile().deleteRecursively()
            }
        }

        test("a log open in another process is locked until that process dies").config(timeout = 60.seconds) {
            val dir = TestLogs.tempDir("kwal-lock")
            val child = ChildJvm.start(LockHolderProcess::class, dir.toString())
            try {
                withClue(lazy { child.describe() }) {
                    child.awaitReady(30_000) shouldBe true
                    val e = shouldThrow<WalLockedException> { Kwal.open(CrashOptions.of(dir)) }
                    e.directory shouldBe dir
                    // Locked means untouched: still locked on a second try.
                    shouldThrow<WalLockedException> { Kwal.open(CrashOptions.of(dir)) }
                    child.kill() shouldBe true
                }
            } finally {
                child.close()
            }
            val held = child.acks.single()
            Kwal.open(CrashOptions.of(dir)).use { wal ->
                val records = wal.replay("held").toList()
                records.size shouldBe 1
                records[0].sequence shouldBe held.seq
                CrashPayloads.crc(records[0].payload) shouldBe held.crc
                CrashPayloads.problem("held", records[0].payload) shouldBe null
                wal.append("held", CrashPayloads.make("held", 0, 1, 1, 50)) shouldBe 1L
            }
            dir.toFile().deleteRecursively()
        }
    })
