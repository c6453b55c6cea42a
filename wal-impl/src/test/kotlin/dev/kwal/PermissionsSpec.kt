package dev.kwal

import dev.kwal.engine.Kwal
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldContain
import io.kotest.matchers.shouldBe
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.attribute.PosixFilePermission
import java.nio.file.attribute.PosixFilePermissions

/**
 * What kwal creates gets [WalOptions.filePermissions] and [WalOptions.directoryPermissions]; what exists is left
 * alone.
 */
class PermissionsSpec :
    FunSpec({
        val newDir = Contract.dirs(this)

        /** The process's umask from `/proc/self/status` (Linux); 0 where unknown. It can only remove bits. */
        val umask: Int = runCatching {
            Files.readAllLines(Path.of("/proc/self/status")).first {
                it.startsWith("Umask:")
            }.substringAfter(':').trim().toInt(8)
        }.getOrDefault(0)

        /** [requested] less what the umask removes, as `rwxr-x---`. */
        fun expected(requested: Set<PosixFilePermission>): String {
            val s = PosixFilePermissions.toString(requested).toCharArray()
            for (i in 0 until 9) if (umask and (1 shl (8 - i)) != 0) s[i] = '-'
            return String(s)
        }

        fun permissionsOf(p: Path): String = PosixFilePermissions.toString(Files.getPosixFilePermissions(p))

        fun posix(dir: Path) = Files.getFileStore(dir).supportsFileAttributeView("posix")

        /** Appends enough to [options]' log to roll segments (and pre-create a spare), then closes it. */
        suspend fun fill(options: WalOptions) {
            Kwal.open(options).use { wal ->
                repeat(6) { b ->
                    wal.appendBatch("t", List(30) { TestLogs.payload("t", (b * 30 + it).toLong(), size = 1000) })
                }
            }
        }

        /** Every file in [dir] (segments, the lock file), checked to be [perms]; returns their names. */
        fun checkFiles(dir: Path, perms: String): List<String> {
            val files = Files.list(dir).use { s -> s.toList() }
            for (f in files) {
                withClue(f) {
                    Files.isRegularFile(f) shouldBe true
                    permissionsOf(f) shouldBe perms
                }
            }
            return files.map { it.fileName.toString() }
        }

        test("by default a new directory is rwx------ and every file in it rw-------") {
            val parent = newDir()
            if (!posix(parent)) return@test
            val dir = parent.resolve("a/b")
            fill(TestLogs.small(dir))
            withClue("umask ${umask.toString(8)}") {
                permissionsOf(parent.resolve("a")) shouldBe expected(PosixFilePermissions.fromString("rwx------"))
                permissionsOf(dir) shouldBe expected(PosixFilePermissions.fromString("rwx------"))
                val names = checkFiles(dir, expected(PosixFilePermissions.fromString("rw-------")))
                names shouldContain "kwal.lock"
                names.count { it.endsWith(".kwal") } shouldBe 4 // rolled, and a spare was created
            }
        }

        test("filePermissions rw-r----- gives files rw-r----- and a new directory rwxr-x---") {
            val parent = newDir()
            if (!posix(parent)) return@test
            val dir = parent.resolve("log")
            val options = TestLogs.small(
                dir,
            ).toBuilder().filePermissions(PosixFilePermissions.fromString("rw-r-----")).build()
            options.directoryPermissions shouldBe PosixFilePermissions.fromString("rwxr-x---")
            fill(options)
            withClue("umask ${umask.toString(8)}") {
                permissionsOf(dir) shouldBe expected(PosixFilePermissions.fromString("rwxr-x---"))
                checkFiles(dir, expected(PosixFilePermissions.fromString("rw-r-----"))) shouldContain "kwal.lock"
            }
        }

        test("an existing directory and existing files keep their permissions") {
            val dir = newDir()
            if (!posix(dir)) return@test
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"))
            val lock = Files.createFile(dir.resolve("kwal.lock"))
            Files.setPosixFilePermissions(lock, PosixFilePermissions.fromString("rw-rw-r--"))
            fill(TestLogs.small(dir))
            permissionsOf(dir) shouldBe "rwxr-xr-x"
            permissionsOf(lock) shouldBe "rw-rw-r--"
            Files.list(dir).use { s -> s.toList() }.filter { it != lock }.forEach { f ->
                withClue(f) { permissionsOf(f) shouldBe expected(PosixFilePermissions.fromString("rw-------")) }
            }
        }
    })
