package dev.kwal

import dev.kwal.Contract.readAll
import dev.kwal.MappingsSpec.Companion.mapLines
import dev.kwal.MappingsSpec.Companion.mapsOf
import dev.kwal.engine.Kwal
import dev.kwal.engine.KwalEngine
import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.RecordFrame
import dev.kwal.engine.io.RealFileIo
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.booleans.shouldBeTrue
import io.kotest.matchers.ints.shouldBeGreaterThan
import io.kotest.matchers.ints.shouldBeLessThanOrEqual
import io.kotest.matchers.shouldBe
import io.kotest.matchers.types.shouldBeSameInstanceAs
import io.kotest.property.Arb
import io.kotest.property.arbitrary.long
import io.kotest.property.checkAll
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.job
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import java.io.File
import java.nio.ByteBuffer
import kotlin.random.Random
import java.util.concurrent.CancellationException as JavaCancellation

/**
 * [Wal.replayViews] and [Wal.followViews]: the views show exactly what [Wal.replay] returns (random logs: sizes,
 * batches, topics, block and segment sizes, LZ4 and zstd), from any start; a damaged record ends the read before the
 * action sees it; a view is dead once its action returns; an action's exception, or a cancellation, ends the read and
 * gives its mapping back.
 */
class RecordViewSpec :
    FunSpec({
        timeout = 300_000L
        val linux = File("/proc/self/maps").isFile
        val newDir = Contract.dirs(this)

        /**
         * Every record of [topic] from [from] through views, each read through every accessor and checked to agree
         * with [RecordView.toRecord].
         */
        suspend fun Wal.viewAll(topic: String, from: Long = 0, checks: RecordChecks = RecordChecks.ALL): List<Record> {
            val out = ArrayList<Record>()
            val scratch = ByteArray(64 shl 10)
            val direct = ByteBuffer.allocateDirect(64 shl 10)
            withTimeout(Contract.HANG) {
                replayViews(topic, from, checks) { v ->
                    val r = v.toRecord()
                    v.topic shouldBe r.topic
                    v.sequence shouldBe r.sequence
                    v.timestampMillis shouldBe r.timestampMillis
                    v.payloadSize shouldBe r.payload.size
                    for (i in r.payload.indices) if (v[i] != r.payload[i]) v[i] shouldBe r.payload[i]
                    v.copyPayloadTo(scratch, 7)
                    scratch.copyOfRange(7, 7 + r.payload.size) shouldBe r.payload
                    direct.clear().position(3)
                    v.copyPayloadTo(direct)
                    direct.position() shouldBe 3 + r.payload.size
                    ByteArray(r.payload.size).also { direct.get(3, it) } shouldBe r.payload
                    out += r
                }
            }
            return out
        }

        fun describe(records: List<Record>) = records.map { "${it.topic}/${it.sequence}@${it.timestampMillis}" }

        test("views show what replay returns, from any start, over random logs (plain, LZ4, zstd; small blocks)") {
            checkAll(12, Arb.long()) { seed ->
                val rnd = Random(seed)
                val blockSize = listOf(4 shl 10, 8 shl 10, 64 shl 10)[rnd.nextInt(3)]
                val options = WalOptions(
                    directory = newDir(),
                    segmentSize = listOf(64 shl 10, 128 shl 10, 256 shl 10)[rnd.nextInt(3)],
                    blockSize = blockSize,
                    maxRecordSize = blockSize / 2,
                    maxGroupBytes = 32 shl 10,
                    durability = if (rnd.nextBoolean()) Durability.None else Durability.Sync,
                    compression = listOf(Compression.None, Compression.Lz4, Compression.Zstd(3))[rnd.nextInt(3)],
                    compressionThreshold = rnd.nextInt(2) * 512,
                )
                val topics = listOf("a", "b", "c")
                withClue("seed $seed, $options") {
                    Kwal.open(options).use { wal ->
                        var bytes = 0L
                        while (bytes < 300_000 || LogFiles.dataSegments(options.directory).size < 2) {
                            val topic = topics[rnd.nextInt(topics.size)]

                            // Half compressible text, half noise; a lone record's size from empty to the largest
                            // record, a batch's records' up to 299 bytes (a batch must fit in one segment).
                            fun payload(large: Boolean): ByteArray {
                                val n = if (large && rnd.nextInt(10) == 0) {
                                    rnd.nextInt(options.maxRecordSize + 1)
                                } else {
                                    rnd.nextInt(300)
                                }
                                return if (rnd.nextBoolean()) {
                                    rnd.nextBytes(n)
                                } else {
                                    ByteArray(n) {
                                        (it % 7 + 97).toByte()
                                    }
                                }
                            }
                            val n = if (rnd.nextInt(4) == 0) 2 + rnd.nextInt(19) else 1
                            val batch = List(n) { payload(large = n == 1) }
                            if (batch.size > 1) wal.appendBatch(topic, batch) else wal.append(topic, batch[0])
                            bytes += batch.sumOf { it.size + RecordFrame.HEADER_SIZE }
                        }
                        for (topic in topics) {
                            val all = wal.readAll(topic)
                            val next = wal.nextSequence(topic)
                            all.size.toLong() shouldBe next
                            // From the start, the middle of a block, a random record, the last, the end and past it.
                            val blocks = LogFiles.allBlocks(options.directory)
                                .filter { it.topicId == LogFiles.topicIds(options.directory)[topic] && it.count > 1 }
                            val starts = listOfNotNull(
                                0L,
                                blocks.getOrNull(rnd.nextInt(maxOf(1, blocks.size)))?.let { it.firstSeq + 1 },
                                rnd.nextLong(next),
                                next - 1,
                                next,
                                next + 3,
                            )
                            for (from in starts) {
                                for (checks in RecordChecks.entries) {
                                    withClue("$topic from $from, $checks") {
                                        val viewed = wal.viewAll(topic, from, checks)
                                        val replayed = all.drop(from.coerceAtMost(next).toInt())
                                        describe(viewed) shouldBe describe(replayed)
                                        viewed shouldBe replayed
                                    }
                                }
                            }
                        }
                        // An unknown topic is an empty range too.
                        wal.viewAll("nothing-here") shouldBe emptyList()
                    }
                }
            }
        }

        test(
            "a start in the middle of a block shows the rest of the block, and a truncated start begins at the first",
        ) {
            Kwal.open(TestLogs.small(newDir())).use { wal ->
                wal.appendBatch("t", List(40) { TestLogs.payload("t", it.toLong()) })
                wal.appendBatch("t", List(40) { TestLogs.payload("t", 40L + it) })
                val first = LogFiles.allBlocks(wal.directory).first { it.count > 3 }
                val from = first.firstSeq + 2
                wal.viewAll("t", from).map { it.sequence } shouldBe (from until 80L).toList()
                wal.viewAll("t", from).map { it.payload.toList() } shouldBe
                    (from until 80L).map { TestLogs.payload("t", it).toList() }
                wal.truncateBefore("t", 50)
                wal.viewAll("t", 3).map { it.sequence } shouldBe (50 until 80L).toList()
            }
        }

        for (where in listOf("sealed", "active")) {
            test("a payload bit flipped in the $where segment: the read fails there and the action never sees it") {
                val size = 3000
                val dir = newDir()
                Kwal.open(TestLogs.small(dir)).use { wal ->
                    // Pairs: each batch is one block of two records (8 KiB blocks hold two of 3000 B).
                    repeat(30) { i -> wal.appendBatch("t", List(2) { TestLogs.payload("t", 2L * i + it, size) }) }
                    val topicId = LogFiles.topicIds(dir).getValue("t")
                    val active = LogFiles.dataSegments(dir).last()
                    val block = LogFiles.allBlocks(dir).filter { it.topicId == topicId && it.count > 1 }
                        .first { (it.segment == active) == (where == "active") }
                    val victim = block.firstSeq + 1
                    val frame = block.at + BlockHeader.SIZE + (size + RecordFrame.HEADER_SIZE)
                    val file = LogFiles.segment(dir, block.segment)
                    LogFiles.flipBit(file, frame + RecordFrame.HEADER_SIZE + size / 2L, bit = 3)

                    for (from in listOf(0L, block.firstSeq, victim)) {
                        val seen = mutableListOf<Long>()
                        val e = shouldThrow<WalCorruptedException> {
                            wal.replayViews("t", from) { v ->
                                v.toRecord().payload shouldBe TestLogs.payload("t", v.sequence, size)
                                seen += v.sequence
                            }
                        }
                        seen shouldBe (from until victim).toList()
                        e.file?.fileName shouldBe file.fileName
                    }
                    // Skipping the records' own checks applies to sealed segments only.
                    val seen = mutableListOf<Record>()
                    val skipping = runCatching {
                        wal.replayViews("t", checks = RecordChecks.SKIP_SEALED) {
                            seen +=
                                it.toRecord()
                        }
                    }
                    if (where == "active") {
                        (skipping.exceptionOrNull() is WalCorruptedException).shouldBeTrue()
                        seen.map { it.sequence } shouldBe (0 until victim).toList()
                    } else {
                        // The cost of SKIP_SEALED, as documented: the damaged record is shown as it now reads.
                        skipping.exceptionOrNull() shouldBe null
                        seen.size shouldBe 60
                        (seen[victim.toInt()].payload.contentEquals(TestLogs.payload("t", victim, size))) shouldBe false
                    }
                    // A follower fails the same way instead of waiting for more.
                    val followed = mutableListOf<Long>()
                    shouldThrow<WalCorruptedException> {
                        withTimeout(Contract.HANG) { wal.followViews("t") { followed += it.sequence } }
                    }
                    followed shouldBe (0 until victim).toList()
                }
            }
        }

        test("SKIP_SEALED still checks block headers and compressed bodies in sealed segments") {
            val dir = newDir()
            val options = WalOptions(
                directory = dir,
                segmentSize = 64 shl 10,
                blockSize = 8 shl 10,
                maxRecordSize = 4 shl 10,
                compression = Compression.Lz4,
                compressionThreshold = 0,
            )
            Kwal.open(options).use { wal ->
                // Half noise, half repetition: compressed, yet enough of it to fill sealed segments.
                val rnd = Random(7)
                repeat(80) { wal.appendBatch("t", List(2) { rnd.nextBytes(750) + ByteArray(750) }) }
                val active = LogFiles.dataSegments(dir).last()
                val sealed = LogFiles.allBlocks(dir).filter { it.segment != active && it.count > 1 }
                val compressed = sealed.first { it.compressed }
                // A bit of the compressed body (past its 8-byte prefix), then a bit of another block's header.
                LogFiles.flipBit(LogFiles.segment(dir, compressed.segment), compressed.at + BlockHeader.SIZE + 20L)
                val seen = mutableListOf<Long>()
                shouldThrow<WalCorruptedException> {
                    wal.replayViews("t", checks = RecordChecks.SKIP_SEALED) { seen += it.sequence }
                }
                seen shouldBe (0 until compressed.firstSeq).toList()
                val header = sealed.last { it.firstSeq > compressed.firstSeq }
                LogFiles.flipBit(LogFiles.segment(dir, header.segment), header.at + BlockHeader.OFF_TIMESTAMP + 1L)
                seen.clear()
                shouldThrow<WalCorruptedException> {
                    wal.replayViews("t", compressed.firstSeq + compressed.count, RecordChecks.SKIP_SEALED) {
                        seen += it.sequence
                    }
                }
                seen shouldBe (compressed.firstSeq + compressed.count until header.firstSeq).toList()
            }
        }

        test("a view kept past its read throws IllegalStateException") {
            Kwal.open(TestLogs.small(newDir())).use { wal ->
                wal.appendBatch("t", List(3) { TestLogs.payload("t", it.toLong()) })
                var kept: RecordView? = null
                var calls = 0
                wal.replayViews("t") { v ->
                    kept = v
                    calls++
                    v.sequence shouldBe calls - 1L
                    v.toString() shouldBe "RecordView(topic=t, sequence=${calls - 1}, " +
                        "timestampMillis=${v.timestampMillis}, payload=${v.payloadSize} bytes)"
                }
                calls shouldBe 3
                val v = kept!!
                val uses = listOf<Pair<String, () -> Any>>(
                    "topic" to { v.topic },
                    "sequence" to { v.sequence },
                    "timestampMillis" to { v.timestampMillis },
                    "payloadSize" to { v.payloadSize },
                    "get" to { v[0] },
                    "copyPayloadTo(ByteArray)" to { v.copyPayloadTo(ByteArray(100), 0) },
                    "copyPayloadTo(ByteBuffer)" to { v.copyPayloadTo(ByteBuffer.allocate(100)) },
                    "toRecord" to { v.toRecord() },
                )
                for ((name, use) in uses) withClue(name) { shouldThrow<IllegalStateException> { use() } }
                v.toString() shouldBe "RecordView(invalid: its read has ended)"
                // A view that escaped an action that threw is dead too.
                var escaped: RecordView? = null
                shouldThrow<IllegalArgumentException> {
                    wal.replayViews("t") {
                        escaped = it
                        throw IllegalArgumentException("stop")
                    }
                }
                shouldThrow<IllegalStateException> { escaped!!.sequence }
            }
        }

        test("a view's accessors check their bounds") {
            Kwal.open(TestLogs.small(newDir())).use { wal ->
                wal.append("t", ByteArray(10) { it.toByte() })
                wal.replayViews("t") { v ->
                    v[9] shouldBe 9.toByte()
                    shouldThrow<IndexOutOfBoundsException> { v[10] }
                    shouldThrow<IndexOutOfBoundsException> { v[-1] }
                    shouldThrow<IndexOutOfBoundsException> { v.copyPayloadTo(ByteArray(15), 6) }
                    val small = ByteBuffer.allocate(12).position(3)
                    shouldThrow<java.nio.BufferOverflowException> { v.copyPayloadTo(small) }
                    small.position() shouldBe 3
                    shouldThrow<java.nio.ReadOnlyBufferException> {
                        v.copyPayloadTo(ByteBuffer.allocate(20).asReadOnlyBuffer())
                    }
                }
            }
        }

        test("an exception thrown by the action ends the read as is and gives its mapping back") {
            val dir = newDir().toRealPath()
            val wal = KwalEngine.open(TestLogs.small(dir), RealFileIo, idleMappings = 0)
            try {
                repeat(30) { i -> wal.appendBatch("t", List(15) { TestLogs.payload("t", 15L * i + it, 4000) }) }
                LogFiles.dataSegments(dir).size shouldBeGreaterThan 3
                // The summary builder maps each sealed segment once, in the background: let it finish first.
                val summaries = wal.summaries!!
                kotlinx.coroutines.withTimeout(30_000) {
                    while (summaries.written < LogFiles.dataSegments(dir).size - 1) kotlinx.coroutines.delay(10)
                }
                val before = if (linux) mapsOf(dir) else 0
                val boom = RuntimeException("the action failed")
                for (at in listOf(0L, 20L, 200L, 449L)) {
                    val seen = mutableListOf<Long>()
                    val thrown = shouldThrow<RuntimeException> {
                        wal.replayViews("t") { v ->
                            seen += v.sequence
                            if (v.sequence == at) throw boom
                        }
                    }
                    thrown shouldBeSameInstanceAs boom
                    seen shouldBe (0..at).toList()
                    if (linux) withClue(mapLines(dir).joinToString("\n")) { mapsOf(dir) shouldBe before }
                }
                // The log reads again, and closes holding nothing.
                wal.viewAll("t").map { it.sequence } shouldBe (0 until 450L).toList()
                wal.close()
                if (linux) withClue(mapLines(dir).joinToString("\n")) { mapsOf(dir) shouldBe 0 }
                Kwal.open(TestLogs.small(dir)).use { again -> again.viewAll("t").size shouldBe 450 }
            } finally {
                wal.close()
            }
        }

        test("an action may close the log: the read runs to its end, and the closed log holds no mapping after it") {
            val dir = newDir().toRealPath()
            val wal = KwalEngine.open(TestLogs.small(dir), RealFileIo, idleMappings = 0)
            repeat(10) { i -> wal.appendBatch("t", List(15) { TestLogs.payload("t", 15L * i + it, 4000) }) }
            val seen = mutableListOf<Long>()
            wal.replayViews("t") { v ->
                if (v.sequence == 20L) wal.close()
                v.toRecord().payload shouldBe TestLogs.payload("t", v.sequence, 4000)
                seen += v.sequence
            }
            seen shouldBe (0 until 150L).toList()
            if (linux) withClue(mapLines(dir).joinToString("\n")) { mapsOf(dir) shouldBe 0 }
            shouldThrow<WalClosedException> { wal.replayViews("t") {} }
        }

        test("cancelling the reading coroutine stops the read within 1,024 records and gives its mapping back") {
            val dir = newDir().toRealPath()
            val options = WalOptions(dir, durability = Durability.None)
            val wal = KwalEngine.open(options, RealFileIo, idleMappings = 0)
            try {
                // One block of 20,000 small records: no block boundary to stop at.
                wal.appendBatch("t", List(20_000) { ByteArray(10) { b -> (it + b).toByte() } })
                LogFiles.allBlocks(dir).count { it.count == 20_000 } shouldBe 1
                val before = if (linux) mapsOf(dir) else 0
                var seen = 0
                val read = withContext(Dispatchers.Default) {
                    async {
                        val job = currentCoroutineContext().job
                        wal.replayViews("t") { v ->
                            seen++
                            if (v.sequence == 10L) job.cancel()
                        }
                    }
                }
                shouldThrow<CancellationException> { read.await() }
                withClue("records seen after the cancellation") { seen shouldBeLessThanOrEqual 1024 }
                seen shouldBeGreaterThan 10
                if (linux) withClue(mapLines(dir).joinToString("\n")) { mapsOf(dir) shouldBe before }
            } finally {
                wal.close()
            }
        }

        test("followViews shows new records as they are acknowledged, stops when cancelled, ends when the log closes") {
            val dir = newDir()
            val wal = Kwal.open(TestLogs.small(dir))
            try {
                withContext(Dispatchers.Default) {
                    val got = java.util.concurrent.ConcurrentLinkedQueue<Record>()
                    val tenth = CompletableDeferred<Unit>()
                    // From before the topic exists: it waits on the registry, then on the topic.
                    val follower = launch {
                        wal.followViews("t", checks = RecordChecks.SKIP_SEALED) { v ->
                            got += v.toRecord()
                            if (v.sequence == 9L) tenth.complete(Unit)
                        }
                    }
                    val closing = async { wal.followViews("t", from = 5) { v -> got += v.toRecord() } }
                    repeat(10) { wal.append("t", TestLogs.payload("t", it.toLong())) }
                    withTimeout(Contract.HANG) { tenth.await() }
                    follower.cancelAndJoin()
                    follower.isCancelled.shouldBeTrue()
                    wal.append("t", TestLogs.payload("t", 10))
                    wal.close()
                    withTimeout(Contract.HANG) { closing.await() } // returns normally once closed
                    val firstFollower = got.filter { it.sequence < 10 }.sortedBy { it.sequence }
                    firstFollower.map { it.sequence }.distinct() shouldBe (0 until 10L).toList()
                    got.count { it.sequence == 10L } shouldBe 1 // only the second follower, still following
                    got.filter { it.sequence >= 5 }.groupBy { it.sequence }.mapValues { it.value.size } shouldBe
                        (5..10L).associateWith { if (it < 10) 2 else 1 }
                    got.all { it.payload.contentEquals(TestLogs.payload("t", it.sequence)) }.shouldBeTrue()
                }
            } finally {
                wal.close()
            }
        }

        test("AsyncWal: replayViews and followViews run the action on the callback executor; cancel stops them") {
            val dir = newDir()
            AsyncWal.of(Kwal.open(TestLogs.small(dir))).use { wal ->
                repeat(50) { wal.append("t", TestLogs.payload("t", it.toLong())).join() }
                val caller = Thread.currentThread()
                val seen = mutableListOf<Record>()
                wal.replayViews("t", 20) { v ->
                    (Thread.currentThread() !== caller).shouldBeTrue()
                    seen += v.toRecord()
                }.join()
                seen shouldBe wal.wal.readAll("t", 20)
                val followed = java.util.concurrent.LinkedBlockingQueue<Long>()
                val follow = wal.followViews("t", 45, RecordChecks.SKIP_SEALED) { v -> followed.put(v.sequence) }
                wal.append("t", TestLogs.payload("t", 50)).join()
                List(6) { followed.poll(30, java.util.concurrent.TimeUnit.SECONDS) } shouldBe (45..50L).toList()
                follow.cancel(true)
                shouldThrow<JavaCancellation> { follow.join() }
                val failing = wal.replayViews("t", 0, RecordChecks.ALL) { v -> if (v.sequence == 3L) error("no") }
                shouldThrow<java.util.concurrent.CompletionException> { failing.join() }.cause!!.message shouldBe "no"
            }
        }
    })
