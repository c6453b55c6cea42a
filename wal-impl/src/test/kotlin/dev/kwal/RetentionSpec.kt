package dev.kwal

import dev.kwal.engine.Kwal
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldContainExactly
import io.kotest.matchers.ints.shouldBeInRange
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.takeWhile
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import java.nio.file.Files
import java.nio.file.Path
import java.time.Duration
import kotlin.io.path.name
import kotlin.random.Random

/**
 * Retention: truncation by policy, copying live blocks forward, and deleting whole segment files, with the manifest
 * that lets the log start at a later segment. Crash tests of the same are in RetentionCrashSpec.
 */
private const val STRIDE = dev.kwal.engine.storage.BlockIndex.STRIDE_BLOCKS

class RetentionSpec :
    FunSpec({
        fun options(dir: Path, vararg topics: Pair<String, Retention>, threshold: Double = 0.5) =
            TestLogs.small(dir).toBuilder()
                .retentionIntervalMillis(0)
                .topicRetention(topics.toMap())
                .compactionThreshold(threshold)
                .build()

        fun segmentFiles(dir: Path): List<Path> =
            Files.list(dir).use { s -> s.filter { it.name.matches(Regex("seg-\\d+\\.kwal")) }.toList().sorted() }

        fun diskBytes(dir: Path): Long = segmentFiles(dir).sumOf { Files.size(it) }

        suspend fun Wal.fill(topic: String, from: Long, until: Long, size: Int = 300) {
            for (s in from until until) append(topic, TestLogs.payload(topic, s, size)) shouldBe s
        }

        suspend fun Wal.shouldHold(topic: String, from: Long, until: Long, size: Int = 300) {
            val got = replay(topic).toList()
            withClue("$topic: ${got.firstOrNull()?.sequence}..${got.lastOrNull()?.sequence}") {
                got.map { it.sequence } shouldBe (from until until).toList()
                for (r in got) r.payload shouldBe TestLogs.payload(topic, r.sequence, size)
            }
        }

        test("retention by count truncates and deletes whole segments; the rest reads back, also after reopen") {
            val dir = TestLogs.tempDir()
            val opts = options(dir, "t" to Retention.records(100))
            Kwal.open(opts).use { wal ->
                wal.fill("t", 0, 2000) // about 600 KB: ten segments of 64 KiB
                wal.fill("u", 0, 5)
                val before = segmentFiles(dir).size
                val lastBefore = segmentFiles(dir).last().name
                // A block per synced append, a sample per run of them (and per segment: about ten).
                val entries = (wal as dev.kwal.engine.KwalEngine).indexEntries("t")
                entries shouldBeInRange 2000 / STRIDE..2000 / STRIDE + 12
                val report = wal.applyRetention()
                // The truncated blocks' samples go; copies retention made of live blocks are held one by one.
                wal.indexEntries("t") shouldBeInRange 100 / STRIDE..100 + 3
                withClue(report) {
                    report.truncated shouldBe mapOf("t" to 1900L)
                    report.recordsTruncated shouldBe 1900
                    (report.segmentsDeleted > 0) shouldBe true
                    // Those there before (a spare may have been built since, in the background).
                    segmentFiles(dir).count { it.name <= lastBefore } shouldBe before - report.segmentsDeleted
                    report.bytesReclaimed shouldBe report.segmentsDeleted * (64L shl 10)
                }
                wal.firstSequence("t") shouldBe 1900
                wal.shouldHold("t", 1900, 2000)
                wal.shouldHold("u", 0, 5) // "u" was in the first segment: its blocks were copied forward
                Files.exists(dir.resolve("kwal.manifest")) shouldBe true
                segmentFiles(dir).first().name shouldBe "seg-%010d.kwal".format(1 + report.segmentsDeleted)
                wal.applyRetention().segmentsDeleted shouldBe 0 // nothing more to do
            }
            Kwal.open(opts).use { wal ->
                withClue(wal.recovery) {
                    wal.firstSequence("t") shouldBe 1900
                    wal.nextSequence("t") shouldBe 2000
                    wal.shouldHold("t", 1900, 2000)
                    wal.shouldHold("u", 0, 5)
                    wal.topics() shouldBe setOf("t", "u")
                }
                wal.fill("t", 2000, 2100)
                wal.fill("v", 0, 3) // a new topic after the manifest
                wal.applyRetention()
                wal.shouldHold("t", 2000, 2100)
            }
            Kwal.open(opts).use { wal ->
                wal.shouldHold("t", 2000, 2100)
                wal.shouldHold("u", 0, 5)
                wal.shouldHold("v", 0, 3)
            }
        }

        test("retention by age and by bytes") {
            var now = 1_000_000L
            val dir = TestLogs.tempDir()
            val opts = options(dir, "aged" to Retention.age(Duration.ofSeconds(10)), "sized" to Retention.bytes(20_000))
            dev.kwal.engine.KwalEngine.open(opts, dev.kwal.engine.io.RealFileIo, clock = { now }).use { wal ->
                wal.fill("aged", 0, 50)
                now += 5_000
                wal.fill("aged", 50, 80)
                now += 6_000 // the first 50 are now 11 s old
                wal.fill("sized", 0, 300)
                wal.applyRetention().truncated["aged"] shouldBe 50
                wal.firstSequence("aged") shouldBe 50
                val kept = wal.replay("sized").toList()
                val bytes = kept.sumOf { 12L + it.payload.size }
                withClue("kept ${kept.size} records, $bytes bytes of frames") {
                    (bytes <= 20_000) shouldBe true
                    (bytes > 20_000 - 9_000) shouldBe true // whole blocks of at most 8 KiB: less than one too few
                    kept.last().sequence shouldBe 299
                }
            }
        }

        test("a consumer's committed position holds retention back, unless the option says otherwise") {
            for (overrides in listOf(false, true)) {
                val dir = TestLogs.tempDir()
                val opts = options(dir, "t" to Retention.records(10)).toBuilder()
                    .retentionOverridesConsumers(overrides).build()
                Kwal.open(opts).use { wal ->
                    wal.fill("t", 0, 100)
                    wal.commit("reader", "t", 40)
                    wal.commit("other", "u", 0) // a position in another topic holds nothing here
                    wal.applyRetention()
                    wal.firstSequence("t") shouldBe if (overrides) 90 else 40
                    wal.commit("reader", "t", 95)
                    wal.applyRetention()
                    wal.firstSequence("t") shouldBe 90
                }
            }
        }

        test("the skewed workload: one hot topic, 1,000 cold ones; disk stays within 2x of the live data") {
            fun run(threshold: Double): Triple<Long, Long, Long> {
                val dir = TestLogs.tempDir()
                val opts = options(dir, "hot" to Retention.records(200), threshold = threshold)
                val random = Random(42)
                var appended = 0L
                var copied = 0L
                val cold = HashMap<String, Long>()
                kotlinx.coroutines.runBlocking {
                    Kwal.open(opts).use { wal ->
                        var hot = 0L
                        repeat(40) { round ->
                            repeat(200) {
                                wal.append("hot", TestLogs.payload("hot", hot, 300))
                                hot++
                                appended += 312
                                if (random.nextInt(4) == 0) {
                                    val name = "cold-${random.nextInt(1000)}"
                                    val seq = cold[name] ?: 0
                                    wal.append(name, TestLogs.payload(name, seq, 100))
                                    cold[name] = seq + 1
                                    appended += 112
                                }
                            }
                            copied += wal.applyRetention().bytesCopied
                        }
                        // Every record still there that should be.
                        for ((name, n) in cold) wal.shouldHold(name, 0, n, 100)
                        wal.shouldHold("hot", hot - 200, hot)
                        val live = (
                            wal.topics().sumOf { t ->
                                wal.replay(t, wal.firstSequence(t)).toList().sumOf { 12L + it.payload.size }
                            }
                            )
                        val disk = diskBytes(dir)
                        println(
                            "SKEWED threshold=$threshold live=$live disk=$disk ratio=${"%.2f".format(
                                disk.toDouble() / live,
                            )} " +
                                "appended=$appended copied=$copied extra=${"%.2f".format(
                                    copied.toDouble() / appended,
                                )}",
                        )
                        return@runBlocking Triple(live, disk, copied)
                    }
                }.let { return it }
            }
            val (live, disk, copied) = run(0.5)
            withClue("live $live, disk $disk") { (disk <= 2 * live) shouldBe true }
            (copied > 0) shouldBe true
            // Without copying forward, the cold topics pin every segment: the same workload keeps it all.
            val (live0, disk0, copied0) = run(0.0)
            copied0 shouldBe 0
            withClue("live $live0, disk $disk0") { (disk0 > 4 * live0) shouldBe true }
        }

        test("retention deletes segments under a running follow and replay: each reads on, losing nothing live") {
            val dir = TestLogs.tempDir()
            val opts = options(dir, "hot" to Retention.records(50))
            Kwal.open(opts).use { wal ->
                wal.fill("cold", 0, 40, 100)
                wal.fill("hot", 0, 400)
                withContext(Dispatchers.Default) {
                    // A replay of the cold topic, slowed down, while its blocks are copied and their segments deleted.
                    val coldReplay = async {
                        wal.replay("cold").toList().also { kotlinx.coroutines.delay(1) }
                    }
                    val slowCold = async {
                        val out = ArrayList<Record>()
                        wal.replay("cold").collect {
                            out.add(it)
                            kotlinx.coroutines.delay(5)
                        }
                        out
                    }
                    val follower = async {
                        withTimeout(60_000) { wal.follow("hot").takeWhile { it.sequence < 2999 }.toList() }
                    }
                    val writer = launch {
                        for (s in 400L until 3000) {
                            wal.append("hot", TestLogs.payload("hot", s, 300))
                            if (s % 200 == 0L) wal.applyRetention()
                        }
                    }
                    writer.join()
                    for (got in listOf(coldReplay.await(), slowCold.await())) {
                        got.map { it.sequence } shouldBe (0L until 40).toList()
                        for (r in got) r.payload shouldBe TestLogs.payload("cold", r.sequence, 100)
                    }
                    val followed = follower.await()
                    val seqs = followed.map { it.sequence }
                    seqs shouldBe seqs.sorted().distinct() // in order, each once; truncated ones may be skipped
                    for (r in followed) r.payload shouldBe TestLogs.payload("hot", r.sequence, 300)
                    (segmentFiles(dir).first().name != "seg-0000000001.kwal") shouldBe true
                }
                wal.shouldHold("cold", 0, 40, 100)
            }
        }

        test("a block too large for today's smaller segments is not copied forward; its segment stays") {
            // segmentSize shrank between opens, and the active segment (of the old size) has too little room left for
            // a live block to copy: the copy goes to the next segment, of today's size. It used to be checked against
            // the active segment's size only, and ran past the end of the new one: corruption at the next open.
            val dir = TestLogs.tempDir()
            val big = WalOptions(dir, segmentSize = 256 shl 10, blockSize = 128 shl 10, maxRecordSize = 100 shl 10)
            Kwal.open(big).use { wal ->
                wal.append("cold", TestLogs.payload("cold", 0, 100 shl 10)) // a block of 102,460 bytes
                // One block of 360 bytes each: 443 fill segment 1, 727 each segments 2 and 3, and 500 leave 82 KB
                // free in segment 4, the active one.
                wal.fill("hot", 0, 2397)
            }
            val small = options(dir, "hot" to Retention.records(10))
            Kwal.open(small).use { wal ->
                val report = wal.applyRetention()
                withClue(report) {
                    report.blocksCopied shouldBe 0
                    report.segmentsDeleted shouldBe 0 // the cold block keeps segment 1
                }
                wal.shouldHold("cold", 0, 1, 100 shl 10)
                wal.shouldHold("hot", 2387, 2397)
            }
            Kwal.open(small).use { wal ->
                withClue(wal.recovery) {
                    wal.recovery.corruption shouldBe null
                    wal.shouldHold("cold", 0, 1, 100 shl 10)
                    wal.shouldHold("hot", 2387, 2397)
                }
            }
        }

        test("a block too large to copy, between blocks that are copied, keeps its segment: copies are not a prefix") {
            // The sparse index took a topic's copies for its oldest live records, densely, and counted its blocks in
            // place as live only after them: a block left in place (too large for today's segments) between copied
            // ones counted as dead, and its segment was deleted (the power-cut torture lost records that way).
            val dir = TestLogs.tempDir()
            val big = WalOptions(dir, segmentSize = 256 shl 10, blockSize = 128 shl 10, maxRecordSize = 100 shl 10)
            Kwal.open(big).use { wal ->
                for (s in 0L until 5) wal.append("t", TestLogs.payload("t", s, 200)) shouldBe s
                wal.append("t", TestLogs.payload("t", 5, 100 shl 10)) shouldBe 5 // a block of 102,460 bytes
                for (s in 6L until 11) wal.append("t", TestLogs.payload("t", s, 200)) shouldBe s
                // 360 bytes each: the rest of segment 1 (about 420), segment 2 (727), and about 550 in segment 3,
                // leaving less room there than the large block needs: its copy would go to a segment of today's size.
                wal.fill("filler", 0, 1700)
            }
            val small = options(dir, "filler" to Retention.records(1), threshold = 0.9)
            suspend fun Wal.holdsT() {
                val got = replay("t").toList()
                got.map { it.sequence } shouldBe (0L until 11).toList()
                got.forEach { it.payload.size shouldBe if (it.sequence == 5L) 100 shl 10 else 200 }
            }
            Kwal.open(small).use { wal ->
                repeat(3) {
                    val report = wal.applyRetention()
                    withClue(report) { wal.holdsT() }
                }
                segmentFiles(dir).first().name shouldBe "seg-0000000001.kwal" // the large block keeps segment 1
            }
            Kwal.open(small).use { wal ->
                withClue(wal.recovery) {
                    wal.recovery.corruption shouldBe null
                    wal.holdsT()
                }
            }
        }

        test("a group written but not yet acknowledged keeps its segments: retention does not take them for dead") {
            // Retention counted live blocks from the index, which holds only completed groups: a group held at its
            // sync, that registered a topic in segment 2 and rolled into segment 3, left segments 1 and 2 looking
            // dead, and the manifest (topics: only those acknowledged) started the log at segment 3 — the next open
            // found a block of an unknown topic (the power-cut torture found it). Now retention looks only before the
            // last completed group's end.
            val io = dev.kwal.engine.io.FaultyFileIo()
            val dir = TestLogs.tempDir()
            val opts = options(dir)
            dev.kwal.engine.KwalEngine.open(opts, io).use { wal ->
                // 94 KB: all of segment 1 and 30 KB of segment 2, then truncated: dead. The roll starts building
                // segment 3 as the next spare: wait for it, so that the held group below rolls without a sync.
                wal.fill("old", 0, 94, 1000)
                wal.truncateBefore("old", 94)
                withTimeout(30_000) { while (segmentFiles(dir).size < 3) kotlinx.coroutines.delay(10) }
                val gate = java.util.concurrent.CountDownLatch(1)
                io.forceGate = gate
                val scope = kotlinx.coroutines.CoroutineScope(Dispatchers.Default)
                try {
                    // Registers "new" in segment 2; its 50 KB do not fit there: they roll into segment 3.
                    val group = scope.async {
                        wal.appendBatch("new", List(50) { TestLogs.payload("new", it.toLong(), 1000) })
                    }
                    kotlinx.coroutines.delay(200) // written, held at its sync
                    val retention = scope.async { wal.applyRetention() }
                    kotlinx.coroutines.delay(200) // looked at the segments, waits for its own sync
                    gate.countDown()
                    group.await() shouldBe (0L until 50L)
                    // Segment 1 is dead and before the last completed group: it may go; segment 2 may not.
                    withClue(retention.await()) { (retention.await().segmentsDeleted <= 1) shouldBe true }
                } finally {
                    io.forceGate = null
                    gate.countDown()
                }
            }
            Kwal.open(opts).use { wal ->
                withClue(wal.recovery) { wal.shouldHold("new", 0, 50, 1000) }
            }
        }

        test("a bad manifest fails the open, naming it; a missing first segment too") {
            val dir = TestLogs.tempDir()
            val opts = options(dir, "t" to Retention.records(10))
            Kwal.open(opts).use { wal ->
                wal.fill("t", 0, 1000)
                wal.applyRetention().segmentsDeleted.let { (it > 0) shouldBe true }
            }
            val manifest = dir.resolve("kwal.manifest")
            val good = Files.readAllBytes(manifest)
            Files.write(manifest, good.copyOf().also { it[it.size - 3] = (it[it.size - 3] + 1).toByte() })
            shouldThrow<WalCorruptedException> { Kwal.open(opts) }.message shouldContain "manifest"
            Files.write(manifest, good)
            val first = segmentFiles(dir).first()
            val saved = Files.readAllBytes(first)
            Files.delete(first)
            shouldThrow<WalCorruptedException> { Kwal.open(opts) }.message shouldContain first.name
            Files.write(first, saved)
            Kwal.open(opts).use { wal -> wal.shouldHold("t", 990, 1000) }
        }

        test("options: retention settings are checked and carried by the builder") {
            shouldThrow<IllegalArgumentException> { Retention(maxRecords = -1) }
            shouldThrow<IllegalArgumentException> { Retention(maxAge = Duration.ofSeconds(-1)) }
            shouldThrow<IllegalArgumentException> { WalOptions(Path.of("x"), compactionThreshold = 1.0) }
            shouldThrow<IllegalArgumentException> {
                WalOptions(Path.of("x"), topicRetention = mapOf("../x" to Retention.records(1)))
            }
            val o = WalOptions(
                Path.of("x"),
                retention = Retention.age(Duration.ofHours(1)),
                topicRetention = mapOf("a" to Retention.records(5)),
                retentionIntervalMillis = 7,
                retentionOverridesConsumers = true,
                compactionThreshold = 0.25,
            )
            val b = o.toBuilder().build()
            b.retention shouldBe o.retention
            b.topicRetention shouldBe o.topicRetention
            b.retentionOf("a") shouldBe Retention.records(5)
            b.retentionOf("b") shouldBe Retention.age(Duration.ofHours(1))
            listOf(b.retentionIntervalMillis, b.compactionThreshold, b.retentionOverridesConsumers) shouldContainExactly
                listOf(7L, 0.25, true)
        }
    })
