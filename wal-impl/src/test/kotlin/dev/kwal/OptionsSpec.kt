package dev.kwal

import dev.kwal.Contract.readAll
import dev.kwal.engine.Kwal
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.types.shouldBeSameInstanceAs
import java.net.URLClassLoader
import java.nio.file.Path
import java.nio.file.attribute.PosixFilePermissions

/** [WalOptions] validation and the builder; options that may change between opens. */
class OptionsSpec :
    FunSpec({
        val newDir = Contract.dirs(this)
        val dir = Path.of("/tmp/kwal-options-never-opened")
        val kib = 1 shl 10

        fun fields(o: WalOptions) = listOf(
            o.directory,
            o.segmentSize,
            o.blockSize,
            o.maxRecordSize,
            o.maxGroupBytes,
            o.durability,
            o.corruptionPolicy,
            o.filePermissions,
            o.compression,
            o.compressionThreshold,
        )

        test("defaults") {
            val o = WalOptions(dir)
            fields(o) shouldBe listOf(
                dir,
                64 shl 20,
                4 shl 20,
                1 shl 20,
                4 shl 20,
                Durability.Sync,
                CorruptionPolicy.FAIL,
                PosixFilePermissions.fromString("rw-------"),
                Compression.None,
                1024,
            )
            o.directoryPermissions shouldBe PosixFilePermissions.fromString("rwx------")
            o.toString() shouldContain "filePermissions=rw-------"
        }

        test(
            "filePermissions must include owner read and write and no execute; directoryPermissions derive from them",
        ) {
            for (bad in listOf(
                "---------",
                "r--------",
                "-w-------",
                "rwx------",
                "rw---x---",
                "rw-r---wx",
                "-w-rw-rw-",
            )) {
                val perms = PosixFilePermissions.fromString(bad)
                shouldThrow<IllegalArgumentException> { WalOptions(dir, filePermissions = perms) }
                shouldThrow<IllegalArgumentException> { WalOptions.builder(dir).filePermissions(perms).build() }
            }
            for ((file, directory) in listOf(
                "rw-------" to "rwx------",
                "rw-r-----" to "rwxr-x---",
                "rw-rw----" to "rwxr-x---",
                "rw-r--r--" to "rwxr-xr-x",
                "rw-rw-rw-" to "rwxr-xr-x",
                "rw----r--" to "rwx---r-x",
                "rw--w----" to "rwx------",
            )) {
                val o = WalOptions(dir, filePermissions = PosixFilePermissions.fromString(file))
                PosixFilePermissions.toString(o.filePermissions) shouldBe file
                PosixFilePermissions.toString(o.directoryPermissions) shouldBe directory
            }
            // a copy: changing the set given later changes nothing
            val given = PosixFilePermissions.fromString("rw-r-----")
            val o = WalOptions(dir, filePermissions = given)
            given.add(java.nio.file.attribute.PosixFilePermission.OTHERS_READ)
            PosixFilePermissions.toString(o.filePermissions) shouldBe "rw-r-----"
        }

        test("segmentSize must be in 64 KiB..1 GiB") {
            for (bad in listOf(0, -1, 64 * kib - 1, (1 shl 30) + 1, Int.MIN_VALUE, Int.MAX_VALUE)) {
                shouldThrow<IllegalArgumentException> {
                    WalOptions(dir, segmentSize = bad, maxRecordSize = 1 * kib, maxGroupBytes = 1 * kib)
                }
                shouldThrow<IllegalArgumentException> {
                    WalOptions.builder(dir).segmentSize(bad).maxRecordSize(1 * kib).build()
                }
            }
            WalOptions(dir, segmentSize = 64 * kib, maxRecordSize = 1 * kib).segmentSize shouldBe 64 * kib
            WalOptions(dir, segmentSize = 1 shl 30).segmentSize shouldBe (1 shl 30)
        }

        test("blockSize is clamped to the segment less its reserve, and must be at least 4 KiB") {
            WalOptions(dir, segmentSize = 64 * kib, maxRecordSize = 1 * kib).blockSize shouldBe
                64 * kib - WalOptions.SEGMENT_RESERVE
            WalOptions(dir, segmentSize = 64 * kib, blockSize = 8 * kib, maxRecordSize = 1 * kib).blockSize shouldBe
                8 * kib
            WalOptions(
                dir,
                blockSize = 4 * kib,
                maxRecordSize = 4 * kib - WalOptions.RECORD_OVERHEAD,
                maxGroupBytes = 4 * kib,
            ).blockSize shouldBe 4 * kib
            for (bad in listOf(4 * kib - 1, 0, -4096)) {
                shouldThrow<IllegalArgumentException> {
                    WalOptions(dir, blockSize = bad, maxRecordSize = 1, maxGroupBytes = 1)
                }
                shouldThrow<IllegalArgumentException> {
                    WalOptions.builder(dir).blockSize(bad).maxRecordSize(1).maxGroupBytes(1).build()
                }
            }
        }

        test("maxRecordSize must be positive and fit in a block with its overhead") {
            for (bad in listOf(0, -1, Int.MIN_VALUE)) {
                shouldThrow<IllegalArgumentException> { WalOptions(dir, maxRecordSize = bad) }
            }
            val block = 8 * kib
            WalOptions(
                dir,
                blockSize = block,
                maxRecordSize = block - WalOptions.RECORD_OVERHEAD,
            ).maxRecordSize shouldBe
                block - WalOptions.RECORD_OVERHEAD
            shouldThrow<IllegalArgumentException> {
                WalOptions(dir, blockSize = block, maxRecordSize = block - WalOptions.RECORD_OVERHEAD + 1)
            }
            // the default 1 MiB record does not fit a 64 KiB segment's block
            shouldThrow<IllegalArgumentException> { WalOptions(dir, segmentSize = 64 * kib) }
            shouldThrow<IllegalArgumentException> {
                WalOptions(dir, maxRecordSize = Int.MAX_VALUE, maxGroupBytes = Int.MAX_VALUE)
            }
        }

        test("maxGroupBytes must be at least maxRecordSize") {
            shouldThrow<IllegalArgumentException> { WalOptions(dir, maxGroupBytes = (1 shl 20) - 1) }
            shouldThrow<IllegalArgumentException> {
                WalOptions(dir, maxRecordSize = 2 * kib, maxGroupBytes = 2 * kib - 1)
            }
            shouldThrow<IllegalArgumentException> { WalOptions.builder(dir).maxGroupBytes(0).build() }
            WalOptions(dir, maxRecordSize = 2 * kib, maxGroupBytes = 2 * kib).maxGroupBytes shouldBe 2 * kib
        }

        test("Durability.Interval must be positive") {
            shouldThrow<IllegalArgumentException> { Durability.Interval(0) }
            shouldThrow<IllegalArgumentException> { Durability.Interval(-10) }
            shouldThrow<IllegalArgumentException> { Durability.interval(0) }
            Durability.interval(7) shouldBe Durability.Interval(7)
        }

        // A regression test: SYNC/NONE constants once read Sync/None before their initialisation finished (null).
        // Checked in a fresh class loader so the result does not depend on what other specs touched first.
        test("Durability.sync() and none() are the Sync and None objects whatever class is initialised first") {
            val api = Durability::class.java.protectionDomain.codeSource.location
            val stdlib = KotlinVersion::class.java.protectionDomain.codeSource.location
            for (first in listOf("Sync", "None", "Interval", "Companion", null)) {
                URLClassLoader(arrayOf(api, stdlib), ClassLoader.getPlatformClassLoader()).use { loader ->
                    if (first != null) Class.forName("dev.kwal.Durability\$$first", true, loader)
                    val durability = Class.forName("dev.kwal.Durability", true, loader)
                    val sync = Class.forName("dev.kwal.Durability\$Sync", true, loader).getField("INSTANCE").get(null)
                    val none = Class.forName("dev.kwal.Durability\$None", true, loader).getField("INSTANCE").get(null)
                    withClue("after initialising ${first ?: "Durability"} first") {
                        durability.getMethod("sync").invoke(null) shouldBeSameInstanceAs sync
                        durability.getMethod("none").invoke(null) shouldBeSameInstanceAs none
                    }
                }
            }
        }

        test("the builder builds what the constructor builds; toBuilder round-trips") {
            val viaBuilder = WalOptions.builder(dir).segmentSize(128 * kib).blockSize(16 * kib).maxRecordSize(8 * kib)
                .maxGroupBytes(32 * kib).durability(Durability.Interval(25)).corruptionPolicy(CorruptionPolicy.TRUNCATE)
                .filePermissions(PosixFilePermissions.fromString("rw-r-----"))
                .compression(Compression.zstd(5)).compressionThreshold(300).build()
            val viaConstructor = WalOptions(
                dir,
                segmentSize = 128 * kib,
                blockSize = 16 * kib,
                maxRecordSize = 8 * kib,
                maxGroupBytes = 32 * kib,
                durability = Durability.Interval(25),
                corruptionPolicy = CorruptionPolicy.TRUNCATE,
                filePermissions = PosixFilePermissions.fromString("rw-r-----"),
                compression = Compression.Zstd(5),
                compressionThreshold = 300,
            )
            fields(viaBuilder) shouldBe fields(viaConstructor)
            viaBuilder.toString() shouldBe viaConstructor.toString()
            fields(viaConstructor.toBuilder().build()) shouldBe fields(viaConstructor)
            fields(WalOptions.builder(dir).build()) shouldBe fields(WalOptions(dir))
            fields(WalOptions(dir).toBuilder().build()) shouldBe fields(WalOptions(dir))
            val small = TestLogs.small(dir, Durability.None)
            fields(small.toBuilder().build()) shouldBe fields(small)
            // the builder's clamped block size agrees with the constructor's
            fields(WalOptions.builder(dir).segmentSize(64 * kib).maxRecordSize(kib).build()) shouldBe
                fields(WalOptions(dir, segmentSize = 64 * kib, maxRecordSize = kib))
        }

        test("records of exactly maxRecordSize at the largest allowed for the block work end to end") {
            val d = newDir()
            val options = WalOptions(
                d,
                segmentSize = 64 * kib,
                blockSize = 8 * kib,
                maxRecordSize = 8 * kib - WalOptions.RECORD_OVERHEAD,
                maxGroupBytes = 16 * kib,
            )
            val payloads = (0 until 26).map { TestLogs.payload("max", it.toLong(), size = options.maxRecordSize) }
            Kwal.open(options).use { wal ->
                payloads.take(20).forEachIndexed { i, p -> wal.append("max", p) shouldBe i.toLong() }
                wal.appendBatch("max", payloads.drop(20)) shouldBe (20L until 26) // a batch must fit in one segment
            }
            Kwal.open(options).use { wal ->
                wal.readAll("max").map { it.payload.toList() } shouldBe payloads.map { it.toList() }
            }
        }

        test("segment size and other options may change between opens") {
            val d = newDir()
            Kwal.open(TestLogs.small(d)).use { wal ->
                repeat(300) { wal.append("grow", TestLogs.payload("grow", it.toLong(), size = 500)) }
            }
            Kwal.open(
                WalOptions(
                    d,
                    segmentSize = 128 * kib,
                    blockSize = 16 * kib,
                    maxRecordSize = 8 * kib,
                    maxGroupBytes = 8 * kib,
                    durability = Durability.None,
                ),
            ).use { wal ->
                wal.nextSequence("grow") shouldBe 300
                repeat(300) { wal.append("grow", TestLogs.payload("grow", 300L + it, size = 500)) shouldBe 300L + it }
            }
            Kwal.open(TestLogs.small(d)).use { wal ->
                val records = wal.readAll("grow")
                records.size shouldBe 600
                records.forEach { it.payload shouldBe TestLogs.payload("grow", it.sequence, size = 500) }
                wal.append("grow", byteArrayOf(1)) shouldBe 600
            }
        }
    })
