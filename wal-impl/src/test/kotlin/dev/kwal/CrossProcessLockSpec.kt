package dev.kwal

import dev.kwal.crash.ChildJvm
import dev.kwal.crash.CrashOptions
import dev.kwal.crash.CrashPayloads
import dev.kwal.crash.LockHolderProcess
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.flow.toList
import kotlin.time.Duration.Companion.seconds

/** The directory lock holds across processes, and the OS releases it when its holder is killed. */
class CrossProcessLockSpec : FunSpec({
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
