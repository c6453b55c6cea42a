package dev.kwal

import dev.kwal.Contract.readAll
import dev.kwal.Contract.seqs
import dev.kwal.engine.Kwal
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.types.shouldBeInstanceOf
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicInteger

/** Bad input gets its typed error and loses nothing; closed logs refuse calls without hanging. */
class BadInputSpec :
    FunSpec({
        val newDir = Contract.dirs(this)

        val invalidNames = listOf(
            "", "a".repeat(256), "é".repeat(128), "\uD83D\uDE00".repeat(64),
            "a\u0000b", "a\nb", "\t", "x\u001f", "\u007f", "a\u0085", "\u009f",
            "/", "a/b", "/abs", "a\\b", "..", "../x", "x/..", "a..b", "...", ".", "\uD800", "x\uDC00",
        )

        test(
            "invalid topic names get InvalidTopicException from append, appendBatch, replay and follow; " +
                "nothing is written",
        ) {
            val dir = newDir()
            Kwal.open(TestLogs.small(dir)).use { wal ->
                wal.append("good", byteArrayOf(0)) shouldBe 0
                for (name in invalidNames) {
                    withClue("topic ${name.map { it.code }}") {
                        TopicNames.isValid(name) shouldBe false
                        shouldThrow<InvalidTopicException> { wal.append(name, byteArrayOf(1)) }.topic shouldBe name
                        shouldThrow<InvalidTopicException> { wal.append(name, byteArrayOf(1), Durability.None) }
                        shouldThrow<InvalidTopicException> {
                            wal.appendBatch(name, listOf(byteArrayOf(1), byteArrayOf(2)))
                        }.topic shouldBe name
                        shouldThrow<InvalidTopicException> { wal.appendBatch(name, emptyList()) }
                        val flow = wal.replay(name) // cold: nothing thrown until collected
                        shouldThrow<InvalidTopicException> {
                            withTimeout(Contract.HANG) { flow.toList() }
                        }.topic shouldBe name
                        shouldThrow<InvalidTopicException> {
                            withTimeout(Contract.HANG) { wal.replay(name, 5).toList() }
                        }
                        wal.nextSequence(name) shouldBe 0
                    }
                }
                wal.topics() shouldBe setOf("good")
                wal.append("good", byteArrayOf(1)) shouldBe 1
            }
            Kwal.open(TestLogs.small(dir)).use { wal ->
                wal.topics() shouldBe setOf("good")
                wal.readAll("good").map { it.payload[0].toInt() } shouldBe listOf(0, 1)
                // a new valid topic after all those rejected ones works normally
                wal.append("next", byteArrayOf(2)) shouldBe 0
            }
        }

        test("an oversized record gets RecordTooLargeException and nothing is written") {
            val dir = newDir()
            val options = TestLogs.small(dir)
            val max = options.maxRecordSize
            Kwal.open(options).use { wal ->
                wal.append("t", byteArrayOf(0)) shouldBe 0
                val e = shouldThrow<RecordTooLargeException> { wal.append("t", ByteArray(max + 1)) }
                e.size shouldBe max + 1L
                e.limit shouldBe max.toLong()
                e.shouldBeInstanceOf<WalException>()
                shouldThrow<RecordTooLargeException> { wal.append("t", ByteArray(max * 10), Durability.None) }
                shouldThrow<RecordTooLargeException> { wal.append("new-topic", ByteArray(max + 1)) }
                wal.nextSequence("t") shouldBe 1
                wal.topics() shouldBe setOf("t")
                wal.append("t", ByteArray(max) { 5 }) shouldBe 1 // exactly the limit is fine
                wal.append("t", byteArrayOf(2)) shouldBe 2
            }
            Kwal.open(options).use { wal ->
                wal.topics() shouldBe setOf("t")
                val records = wal.readAll("t")
                records.seqs() shouldBe listOf(0L, 1L, 2L)
                records[1].payload shouldBe ByteArray(max) { 5 }
                records[2].payload shouldBe byteArrayOf(2)
            }
        }

        test("calls after close throw WalClosedException; close is idempotent") {
            val dir = newDir()
            val wal = Kwal.open(TestLogs.small(dir))
            wal.append("t", byteArrayOf(1))
            wal.close()
            wal.close()
            withTimeout(Contract.HANG) {
                shouldThrow<WalClosedException> { wal.append("t", byteArrayOf(2)) }
                shouldThrow<WalClosedException> { wal.append("brand-new", byteArrayOf(2), Durability.None) }
                shouldThrow<WalClosedException> { wal.appendBatch("t", listOf(byteArrayOf(2))) }
                shouldThrow<WalClosedException> { wal.appendBatch("t", emptyList()) }
                shouldThrow<WalClosedException> { wal.sync() }
            }
            wal.close()
            Kwal.open(TestLogs.small(dir)).use { again -> again.readAll("t").size shouldBe 1 }
        }

        test(
            "close while many appends are in flight: each call returns a sequence or throws WalClosedException, " +
                "none hangs, nothing acknowledged is lost",
        ) {
            val dir = newDir()
            val acked = ConcurrentHashMap<Pair<String, Long>, String>()
            val refused = AtomicInteger()
            val wal = Kwal.open(TestLogs.small(dir))
            try {
                withTimeout(Contract.HANG) {
                    withContext(Dispatchers.Default) {
                        val enough = CompletableDeferred<Unit>()
                        val appenders = (0 until 64).map { c ->
                            async {
                                var i = 0
                                while (true) {
                                    val topic = "c${c % 10}"
                                    val p = "$c-$i"
                                    try {
                                        if (i % 5 == 4) {
                                            val range = wal.appendBatch(
                                                topic,
                                                listOf("$p-a".encodeToByteArray(), "$p-b".encodeToByteArray()),
                                            )
                                            acked.put(topic to range.first, "$p-a") shouldBe null
                                            acked.put(topic to range.last, "$p-b") shouldBe null
                                        } else {
                                            acked.put(topic to wal.append(topic, p.encodeToByteArray()), p) shouldBe
                                                null
                                        }
                                    } catch (e: WalClosedException) {
                                        refused.incrementAndGet()
                                        break
                                    }
                                    if (acked.size >= 2000) enough.complete(Unit)
                                    i++
                                }
                            }
                        }
                        enough.await()
                        launch(Dispatchers.IO) { wal.close() }.join()
                        appenders.awaitAll()
                    }
                }
            } finally {
                wal.close()
            }
            refused.get() shouldBe 64
            Kwal.open(TestLogs.small(dir)).use { again ->
                again.recovery.truncatedBytes shouldBe 0
                val stored = again.topics().sumOf { topic ->
                    val records = again.readAll(topic)
                    records.seqs() shouldBe (0L until records.size).toList()
                    // close reports WalClosedException only for records it did not write: what is stored is what was
                    // acknowledged
                    records.forEach { r ->
                        withClue("$topic/${r.sequence}") {
                            r.payload.decodeToString() shouldBe
                                acked[topic to r.sequence]
                        }
                    }
                    records.size
                }
                stored shouldBe acked.size
            }
        }

        test("a failed call leaves the topic's sequence untouched for the next one") {
            val options = TestLogs.small(newDir())
            Kwal.open(options).use { wal ->
                val big = ByteArray(options.maxRecordSize + 1)
                for (i in 0L until 20) {
                    shouldThrow<RecordTooLargeException> { wal.append("s", big) }
                    shouldThrow<InvalidTopicException> { wal.append("s/", byteArrayOf(1)) }
                    wal.append("s", byteArrayOf(i.toByte())) shouldBe i
                }
                wal.readAll("s").map { it.payload[0].toLong() } shouldBe (0L until 20).toList()
                wal.topics() shouldBe setOf("s")
            }
        }
    })
