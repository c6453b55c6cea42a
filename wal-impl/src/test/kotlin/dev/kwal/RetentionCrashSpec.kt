package dev.kwal

import dev.kwal.crash.ChildJvm
import dev.kwal.crash.ControlProcess
import dev.kwal.crash.CrashPayloads
import dev.kwal.engine.Kwal
import dev.kwal.engine.KwalEngine
import dev.kwal.engine.io.PowerLossFileIo
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.flow.toList
import java.nio.file.Path
import kotlin.random.Random

/**
 * Retention under crashes: a power cut (the simulator) at every kind of step of an application — truncation, copies
 * forward, the sync, the manifest's replacement, segment deletions — and SIGKILLs of a child process that applies
 * retention in a loop. Nothing acknowledged that should live is lost; nothing truncated comes back.
 */
class RetentionCrashSpec :
    FunSpec({
        fun options(dir: Path, compression: Compression = Compression.None) = TestLogs.small(dir).toBuilder()
            .retentionIntervalMillis(0)
            .topicRetention("hot", Retention.records(100))
            .compression(compression)
            .compressionThreshold(256)
            .build()

        test("a power cut anywhere in an application of retention loses nothing live and brings nothing back") {
            var cutsInside = 0
            var manifests = 0
            for (seed in 1L..40L) {
                val random = Random(seed)
                val disk = PowerLossFileIo(seed)
                val dir = Path.of("/disk/retention-$seed")
                // A third of the logs compress their blocks: copies of compressed blocks get a new body checksum.
                val opts = options(dir, if (seed % 3 == 0L) Compression.Lz4 else Compression.None)
                var hot = 0L
                val cold = HashMap<String, Long>()
                suspend fun Wal.work(n: Int) {
                    repeat(n) {
                        append("hot", TestLogs.payload("hot", hot, 300)) shouldBe hot
                        hot++
                        if (random.nextInt(5) == 0) {
                            val name = "cold-${random.nextInt(20)}"
                            val s = cold[name] ?: 0
                            append(name, TestLogs.payload(name, s, 100)) shouldBe s
                            cold[name] = s + 1
                        }
                    }
                }
                var wal = KwalEngine.open(opts, disk.session())
                wal.work(600 + random.nextInt(600))
                wal.applyRetention()
                val firstBefore = wal.firstSequence("hot")
                wal.work(300 + random.nextInt(600))
                // The cut lands inside the application, at a random seam call, or just after it.
                disk.armCut(random.nextLong(1, 40), Random(seed))
                val outcome = runCatching { wal.applyRetention() }
                if (disk.disarm()) disk.cut(Random(seed)) else cutsInside++
                runCatching { wal.close() }
                wal = KwalEngine.open(opts, disk.session())
                withClue("seed $seed, ${outcome.exceptionOrNull() ?: outcome.getOrNull()}, ${wal.recovery}") {
                    val first = wal.firstSequence("hot")
                    (first >= firstBefore) shouldBe true
                    wal.nextSequence("hot") shouldBe hot
                    val records = wal.replay("hot").toList()
                    records.map { it.sequence } shouldBe (first until hot).toList()
                    for (r in records) r.payload shouldBe TestLogs.payload("hot", r.sequence, 300)
                    for ((name, n) in cold) {
                        wal.firstSequence(name) shouldBe 0
                        val got = wal.replay(name).toList()
                        got.map { it.sequence } shouldBe (0 until n).toList()
                        for (r in got) r.payload shouldBe TestLogs.payload(name, r.sequence, 100)
                    }
                }
                if (disk.exists(dir.resolve("kwal.manifest"))) manifests++
                // The log goes on: more work, retention again, a clean reopen.
                wal.work(200)
                wal.applyRetention()
                wal.close()
                KwalEngine.open(opts, disk.session()).use { again ->
                    again.replay("hot").toList().map { it.sequence } shouldBe
                        (again.firstSequence("hot") until hot).toList()
                    for ((name, n) in cold) again.replay(name).toList().size.toLong() shouldBe n
                }
            }
            println("RETENTION-CUTS cuts inside an application: $cutsInside of 40; logs with a manifest: $manifests")
            (cutsInside >= 20) shouldBe true
            (manifests >= 20) shouldBe true
        }

        test("SIGKILL while retention truncates, copies forward and deletes: nothing acknowledged that lives is lost") {
            val dir = TestLogs.tempDir()
            val known = HashMap<String, HashMap<Long, Long>>() // topic -> acknowledged sequence -> crc
            var truncatedTo = 0L
            var deletedSegments = 0L
            var copiedBlocks = 0L
            for (cycle in 1..4) {
                val child = ChildJvm.start(ControlProcess::class, dir.toString(), cycle.toString(), "retention")
                try {
                    withClue(child.describe()) { child.awaitReady(30_000) shouldBe true }
                    child.awaitAcks(2_000 + Random(cycle).nextInt(3_000), 60_000, stallMillis = 10_000)
                    child.kill() shouldBe true
                    withClue(child.describe()) {
                        child.error.shouldBeNull()
                        child.malformed.shouldBeNull()
                    }
                    for (a in child.acks) {
                        when (a.topic) {
                            "TRUNC" -> truncatedTo = maxOf(truncatedTo, a.seq)

                            "COMMIT" -> {}

                            "RET" -> {
                                deletedSegments += a.seq
                                copiedBlocks += a.crc
                            }

                            else -> known.getOrPut(a.topic) { HashMap() }[a.seq] = a.crc
                        }
                    }
                } finally {
                    child.close()
                }
                Kwal.open(TestLogs.small(dir)).use { wal ->
                    withClue("cycle $cycle: ${wal.recovery}") {
                        val first = wal.firstSequence("t")
                        (first >= truncatedTo) shouldBe true
                        for ((topic, acked) in known) {
                            val from = wal.firstSequence(topic)
                            if (topic != "t") from shouldBe 0 // cold topics are never truncated
                            val records = wal.replay(topic).toList()
                            records.map { it.sequence } shouldBe (from until wal.nextSequence(topic)).toList()
                            val held = records.associate { it.sequence to CrashPayloads.crc(it.payload) }
                            for ((seq, crc) in acked) if (seq >= from) held[seq] shouldBe crc
                        }
                        truncatedTo = first
                    }
                }
            }
            println("RETENTION-KILLS segments deleted $deletedSegments, blocks copied $copiedBlocks")
            (deletedSegments > 0) shouldBe true
            (copiedBlocks > 0) shouldBe true
        }
    })
