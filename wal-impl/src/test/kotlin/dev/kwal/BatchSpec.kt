package dev.kwal

import dev.kwal.Contract.readAll
import dev.kwal.Contract.seqs
import dev.kwal.engine.Kwal
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.ints.shouldBeGreaterThanOrEqual
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import java.nio.file.Files
import java.util.concurrent.ConcurrentHashMap
import kotlin.io.path.name

/** [Wal.appendBatch]: consecutive ranges, all-or-nothing, contiguity under concurrency, size limits. */
class BatchSpec :
    FunSpec({
        val newDir = Contract.dirs(this)

        fun segmentFiles(wal: Wal) = Files.list(wal.directory).use { s ->
            s.filter { it.name.endsWith(".kwal") }.count()
        }

        test("a batch gets a consecutive range after the topic's existing records") {
            val dir = newDir()
            Kwal.open(TestLogs.small(dir)).use { wal ->
                repeat(5) { wal.append("b", TestLogs.payload("b", it.toLong())) shouldBe it.toLong() }
                val range = wal.appendBatch("b", (5L until 15).map { TestLogs.payload("b", it) })
                range shouldBe (5L until 15)
                wal.nextSequence("b") shouldBe 15
                wal.append("b", TestLogs.payload("b", 15)) shouldBe 15
                wal.appendBatch("b", listOf(TestLogs.payload("b", 16))) shouldBe (16L..16L)
            }
            Kwal.open(TestLogs.small(dir)).use { wal ->
                val records = wal.readAll("b")
                records.seqs() shouldBe (0L until 17).toList()
                records.forEach { it.payload shouldBe TestLogs.payload("b", it.sequence) }
            }
        }

        test("an empty batch writes nothing and returns an empty range at nextSequence") {
            Kwal.open(TestLogs.small(newDir())).use { wal ->
                val none = wal.appendBatch("e", emptyList())
                none.isEmpty() shouldBe true
                none.first shouldBe 0
                wal.topics() shouldBe emptySet() // the topic is not created by an empty batch
                repeat(3) { wal.append("e", byteArrayOf(it.toByte())) }
                val empty = wal.appendBatch("e", emptyList(), Durability.Sync)
                empty.isEmpty() shouldBe true
                empty.first shouldBe 3
                wal.nextSequence("e") shouldBe 3
                wal.append("e", byteArrayOf(3)) shouldBe 3
            }
        }

        test("batches bigger than a block, and batches that force segment rolls, replay exactly after reopen") {
            val dir = newDir()
            val options = TestLogs.small(dir) // 8 KiB blocks, 64 KiB segments
            val expected = ArrayList<ByteArray>()
            Kwal.open(options).use { wal ->
                // 30 x 1000 bytes: ~30 KiB, four blocks or more; two of them fill most of a segment
                for (b in 0 until 8) {
                    val payloads = (0 until 30).map { TestLogs.payload("big", (b * 30 + it).toLong(), size = 1000) }
                    wal.appendBatch("big", payloads) shouldBe (b * 30L until b * 30L + 30)
                    expected += payloads
                    wal.append("small", TestLogs.payload("small", b.toLong())) shouldBe b.toLong()
                }
                // one batch almost as large as a segment: it must roll rather than be split
                val huge = (0 until 50).map { TestLogs.payload("big", 240L + it, size = 1000) }
                wal.appendBatch("big", huge) shouldBe (240L until 290)
                expected += huge
                // data alone needs five; a pre-created spare may add one
                segmentFiles(wal).toInt() shouldBeGreaterThanOrEqual 5
                wal.readAll("big").map { it.payload.toList() } shouldBe expected.map { it.toList() }
            }
            Kwal.open(options).use { wal ->
                wal.recovery.truncatedBytes shouldBe 0
                val records = wal.readAll("big")
                records.seqs() shouldBe (0L until 290).toList()
                records.map { it.payload.toList() } shouldBe expected.map { it.toList() }
                wal.readAll("big", 275).map { it.payload.toList() } shouldBe expected.drop(275).map { it.toList() }
                wal.readAll("small").seqs() shouldBe (0L until 8).toList()
            }
        }

        test("a batch bigger than a block with default options replays after reopen") {
            val dir = newDir()
            val payloads =
                (0 until 5).map { TestLogs.payload("mb", it.toLong(), size = WalOptions.DEFAULT_MAX_RECORD_SIZE) }
            Kwal.open(WalOptions(dir)).use { wal ->
                wal.appendBatch("mb", payloads) shouldBe (0L until 5) // 5 MiB > the 4 MiB block
            }
            Kwal.open(WalOptions(dir)).use { wal ->
                wal.readAll("mb").map { it.payload.toList() } shouldBe payloads.map { it.toList() }
            }
        }

        test("concurrent batches and singles to one topic: every batch stays contiguous") {
            val dir = newDir()
            val options = TestLogs.small(dir)
            // sequence -> payload, for every acknowledged record
            val acked = ConcurrentHashMap<Long, String>()
            withTimeout(Contract.HANG) {
                Kwal.open(options).use { wal ->
                    withContext(Dispatchers.Default) {
                        coroutineScope {
                            repeat(8) { c ->
                                launch {
                                    repeat(25) { b ->
                                        val size = 1 + (c * 7 + b * 3) % 20
                                        val payloads = (0 until size).map { "batch-$c-$b-$it-of-$size" }
                                        val range = wal.appendBatch("mix", payloads.map { it.encodeToByteArray() })
                                        range.count() shouldBe size
                                        range.forEachIndexed { k, seq -> acked.put(seq, payloads[k]) shouldBe null }
                                    }
                                }
                            }
                            repeat(8) { c ->
                                launch {
                                    repeat(60) { i ->
                                        val p = "single-$c-$i"
                                        acked.put(wal.append("mix", p.encodeToByteArray()), p) shouldBe null
                                    }
                                }
                            }
                        }
                    }
                }
            }
            Kwal.open(options).use { wal ->
                val records = wal.readAll("mix")
                records.seqs() shouldBe (0L until acked.size).toList()
                val texts = records.map { it.payload.decodeToString() }
                texts.forEachIndexed { seq, t -> withClue("seq $seq") { t shouldBe acked[seq.toLong()] } }
                // each batch occupies consecutive sequences, in order
                var i = 0
                while (i < texts.size) {
                    val t = texts[i]
                    if (t.startsWith("batch-")) {
                        val parts = t.split("-")
                        val size = parts[5].toInt()
                        parts[3] shouldBe "0"
                        val prefix = "batch-${parts[1]}-${parts[2]}-"
                        for (k in 0 until size) texts[i + k] shouldBe "$prefix$k-of-$size"
                        i += size
                    } else {
                        i++
                    }
                }
            }
        }

        test("a batch larger than a segment is refused with RecordTooLargeException and writes nothing") {
            val dir = newDir()
            val options = TestLogs.small(dir)
            Kwal.open(options).use { wal ->
                wal.append("t", TestLogs.payload("t", 0)) shouldBe 0
                val tooBig = (0 until 80).map { ByteArray(1000) { 7 } } // ~80 KiB > 64 KiB segment
                val e = shouldThrow<RecordTooLargeException> { wal.appendBatch("t", tooBig) }
                (e.size > e.limit) shouldBe true
                wal.nextSequence("t") shouldBe 1
                shouldThrow<RecordTooLargeException> { wal.appendBatch("fresh", tooBig) }
                wal.topics() shouldBe setOf("t")
                wal.append("t", TestLogs.payload("t", 1)) shouldBe 1
                wal.appendBatch("t", listOf(TestLogs.payload("t", 2))) shouldBe (2L..2L)
            }
            Kwal.open(options).use { wal ->
                wal.topics() shouldBe setOf("t")
                wal.readAll("t").map { it.payload.toList() } shouldBe
                    (0L..2L).map { TestLogs.payload("t", it).toList() }
                wal.readAll("fresh").shouldBeEmpty()
            }
        }

        test("a batch with one oversized payload is refused whole") {
            val dir = newDir()
            val options = TestLogs.small(dir)
            Kwal.open(options).use { wal ->
                val batch = listOf(byteArrayOf(1), ByteArray(options.maxRecordSize + 1), byteArrayOf(3))
                val e = shouldThrow<RecordTooLargeException> { wal.appendBatch("t", batch) }
                e.size shouldBe options.maxRecordSize + 1L
                e.limit shouldBe options.maxRecordSize.toLong()
                wal.nextSequence("t") shouldBe 0
                wal.topics() shouldBe emptySet()
                wal.appendBatch(
                    "t",
                    listOf(byteArrayOf(1), ByteArray(options.maxRecordSize), byteArrayOf(3)),
                ) shouldBe (0L..2L)
            }
            Kwal.open(options).use { wal ->
                wal.readAll("t").map { it.payload.size } shouldBe listOf(1, options.maxRecordSize, 1)
            }
        }

        test("the caller may reuse its list and arrays once appendBatch returns") {
            Kwal.open(TestLogs.small(newDir())).use { wal ->
                val list = mutableListOf(byteArrayOf(1), byteArrayOf(2))
                wal.appendBatch("reuse", list)
                list[0].fill(9)
                list.clear()
                wal.readAll("reuse").map { it.payload.toList() } shouldBe listOf(listOf<Byte>(1), listOf<Byte>(2))
            }
        }
    })
