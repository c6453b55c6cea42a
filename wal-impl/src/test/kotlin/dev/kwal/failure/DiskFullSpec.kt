package dev.kwal.failure

import dev.kwal.Wal
import dev.kwal.WalException
import dev.kwal.WalOptions
import dev.kwal.engine.Kwal
import dev.kwal.engine.KwalEngine
import dev.kwal.engine.io.FaultyFileIo
import dev.kwal.engine.io.RealFileIo
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.ints.shouldBeGreaterThan
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import kotlinx.coroutines.flow.toList
import java.nio.ByteBuffer
import java.nio.channels.FileChannel
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.StandardOpenOption.CREATE
import java.nio.file.StandardOpenOption.WRITE
import java.util.concurrent.TimeUnit

/**
 * A full disk: appends that need space fail with a typed error and roll back, nothing acknowledged is lost,
 * and once space is back the same open log goes on. On a real 4 MiB tmpfs where this process may mount one
 * (root on Linux), else through the I/O seam.
 */
class DiskFullSpec :
    FunSpec({

        test("a full disk fails the appends that need space; the log goes on once space is back") {
            val mountPoint = Files.createTempDirectory("kwal-tmpfs")
            val mounted = run("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mountPoint.toString())
            try {
                if (mounted) {
                    println("DiskFullSpec: running on a real 4 MiB tmpfs at $mountPoint")
                    val dir = mountPoint.resolve("wal")
                    val ballast = mountPoint.resolve("ballast")
                    scenario(
                        dir,
                        io = RealFileIo,
                        fillDisk = { fill(ballast, mountPoint) },
                        freeSpace = { Files.delete(ballast) },
                    )
                } else {
                    println(
                        "DiskFullSpec: cannot mount a tmpfs here (not root?); " +
                            "running the same scenario through the I/O seam",
                    )
                    val io = FaultyFileIo()
                    scenario(mountPoint.resolve("wal"), io, fillDisk = {
                        io.diskFullAfter(600L shl 10)
                    }, freeSpace = { io.clear() })
                }
            } finally {
                if (mounted) run("umount", mountPoint.toString())
                mountPoint.toFile().deleteRecursively()
            }
        }
    }) {
    companion object {
        private fun run(vararg command: String): Boolean = try {
            val p = ProcessBuilder(*command).redirectErrorStream(true).start()
            p.waitFor(20, TimeUnit.SECONDS) && p.exitValue() == 0
        } catch (e: Exception) {
            false
        }

        /** Fills the file system of [mountPoint] with [ballast] until about 600 KiB are left. */
        private fun fill(ballast: Path, mountPoint: Path) {
            val store = Files.getFileStore(mountPoint)
            val target = store.usableSpace - (600L shl 10)
            FileChannel.open(ballast, CREATE, WRITE).use { ch ->
                val chunk = ByteBuffer.allocate(64 shl 10)
                var written = 0L
                while (written < target) {
                    chunk.clear()
                    written += ch.write(chunk, written)
                }
            }
        }

        private suspend fun scenario(
            dir: Path,
            io: dev.kwal.engine.io.FileIo,
            fillDisk: () -> Unit,
            freeSpace: () -> Unit,
        ) {
            val options = WalOptions(dir, segmentSize = 256 shl 10, blockSize = 64 shl 10, maxRecordSize = 8 shl 10)
            val acked = HashMap<Long, ByteArray>()
            val failed = ArrayList<ByteArray>()
            fun payload(i: Int) =
                ByteArray(4000) { (it * 7 + i).toByte() }.also { "rec-$i".encodeToByteArray().copyInto(it) }
            val wal: Wal = KwalEngine.open(options, io)
            try {
                fillDisk()
                var i = 0
                var firstError: WalException? = null
                while (i < 2000 && failed.size < 5) {
                    val p = payload(i++)
                    val before = wal.nextSequence("t")
                    try {
                        acked[wal.append("t", p)] = p
                    } catch (e: WalException) {
                        if (firstError == null) firstError = e
                        failed.add(p)
                        withClue("a failed append gives its sequence back") { wal.nextSequence("t") shouldBe before }
                    }
                }
                withClue("the disk filled up") { failed.size shouldBe 5 }
                firstError!!.toString() shouldContain "No space left"
                acked.size shouldBeGreaterThan 0
                freeSpace()
                repeat(100) {
                    val p = payload(i++)
                    acked[wal.append("t", p)] = p
                }
            } finally {
                wal.close()
            }
            Kwal.open(options).use { again ->
                val records = again.replay("t").toList()
                records.map { it.sequence } shouldBe records.indices.map { it.toLong() }
                records.size shouldBe acked.size
                for (r in records) {
                    withClue("record ${r.sequence}") {
                        r.payload.contentEquals(acked[r.sequence]) shouldBe
                            true
                    }
                }
                val failedNames = failed.map { it.copyOf(12).decodeToString() }.toSet()
                records.none { it.payload.copyOf(12).decodeToString() in failedNames } shouldBe true
            }
        }
    }
}
