package dev.kwal.typed

import dev.kwal.InvalidTopicException
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.types.shouldBeInstanceOf
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.serialization.json.Json
import kotlinx.serialization.protobuf.ProtoBuf
import java.util.function.Function

/** TypedTopic over a real log: each Wal call with values, the formats, and what happens to bytes it cannot decode. */
class TypedTopicSpec :
    FunSpec({
        val orders = List(5) { Order(it.toLong(), "SYM$it", if (it % 2 == 0) Side.BUY else Side.SELL, it * 10) }

        test("append, appendBatch, replay, read, page, seek: values and positions, ProtoBuf by default") {
            TypedLogs.withLog { wal, _ ->
                val topic = wal.topic<Order>("orders")
                topic.name shouldBe "orders"
                val before = System.currentTimeMillis()
                topic.append(orders[0]) shouldBe 0
                topic.append(orders[1]) shouldBe 1
                topic.appendBatch(orders.drop(2)) shouldBe 2L..4L
                topic.nextSequence() shouldBe 5

                val all = topic.replay().toList()
                all.map { it.value } shouldBe orders
                all.map { it.sequence } shouldBe (0L..4L).toList()
                all.forEach {
                    it.topic shouldBe "orders"
                    (it.timestampMillis >= before - 1000) shouldBe true
                }
                topic.replay(from = 3).toList().map { it.value } shouldBe orders.drop(3)
                topic.read(2) shouldBe all[2]
                topic.read(5).shouldBeNull()
                topic.read(from = 1, maxRecords = 2).map { it.value } shouldBe orders.subList(1, 3)
                topic.seek(0) shouldBe 0

                // The payload is ProtoBuf, as TopicFormats.protoBuf writes it.
                val raw = wal.read("orders", 0)!!.payload
                ProtoBuf.decodeFromByteArray(Order.serializer(), raw) shouldBe orders[0]
                raw.contentEquals(TopicFormats.protoBuf.encodeToByteArray(Order.serializer(), orders[0])) shouldBe true
            }
        }

        test("a JSON topic stores UTF-8 JSON, and topics of one log are independent") {
            TypedLogs.withLog { wal, _ ->
                val json = wal.topic("orders-json", Order.serializer(), TopicFormats.json)
                val proto = wal.topic("orders-proto", Order.serializer())
                json.append(orders[1]) shouldBe 0
                proto.append(orders[2]) shouldBe 0
                val text = wal.read("orders-json", 0)!!.payload.decodeToString()
                text shouldBe """{"id":1,"symbol":"SYM1","side":"SELL","quantity":10,"note":""}"""
                json.replay().toList().single().value shouldBe orders[1]
                proto.replay().toList().single().value shouldBe orders[2]
                wal.topic<Order>("orders-json", Json).read(0)!!.value shouldBe orders[1]
            }
        }

        test("follow, and follow by consumer with commit and committed, across a reopen") {
            val dir = kotlin.io.path.createTempDirectory("kwal-typed")
            TypedLogs.open(dir).use { wal ->
                val topic = wal.topic<Order>("orders")
                topic.appendBatch(orders.take(3))
                topic.follow(from = 1).take(2).toList().map { it.value } shouldBe orders.subList(1, 3)
                topic.committed("billing").shouldBeNull()
                val seen = topic.follow(consumer = "billing").take(2).toList()
                seen.map { it.value } shouldBe orders.take(2)
                topic.commit("billing", seen.last().sequence + 1)
                topic.committed("billing") shouldBe 2
                wal.committed("billing", "orders") shouldBe 2
            }
            TypedLogs.open(dir).use { wal ->
                val topic = wal.topic<Order>("orders")
                topic.append(orders[3]) shouldBe 3
                topic.follow(consumer = "billing").take(2).toList().map { it.sequence } shouldBe listOf(2L, 3L)
                topic.truncateBefore(2)
                topic.firstSequence() shouldBe 2
                topic.replay().toList().map { it.value } shouldBe orders.subList(2, 4)
            }
        }

        test("an undecodable record is a RecordDecodingException naming topic and sequence, never skipped") {
            TypedLogs.withLog { wal, _ ->
                val topic = wal.topic<Order>("orders")
                topic.appendBatch(orders.take(2))
                wal.append("orders", byteArrayOf(-1, -1, -1, -1)) shouldBe 2 // not ProtoBuf: a broken tag
                topic.append(orders[2]) shouldBe 3

                val seen = mutableListOf<Typed<Order>>()
                val e = shouldThrow<RecordDecodingException> { topic.replay().collect { seen += it } }
                seen.map { it.sequence } shouldBe listOf(0L, 1L) // everything before it, then the error
                e.topic shouldBe "orders"
                e.sequence shouldBe 2
                e.message shouldContain "record 2 of topic \"orders\""
                e.shouldBeInstanceOf<dev.kwal.WalException>()
                shouldThrow<RecordDecodingException> { topic.read(2) }.sequence shouldBe 2
                shouldThrow<RecordDecodingException> { topic.read(0, 10) }.sequence shouldBe 2
                shouldThrow<RecordDecodingException> { topic.follow(0).take(4).toList() }.sequence shouldBe 2
                // Past it, reading goes on.
                topic.replay(from = 3).toList().map { it.value } shouldBe listOf(orders[2])

                val jsonTopic = wal.topic<Order>("orders", TopicFormats.json)
                shouldThrow<RecordDecodingException> { jsonTopic.read(0) }.sequence shouldBe 0
            }
        }

        test("a value that cannot be encoded fails its call and writes nothing, in a batch too") {
            TypedLogs.withLog { wal, _ ->
                val codec = TopicCodec.of<String>(
                    Function { s -> require(s != "bad") { "cannot encode bad" }.let { s.encodeToByteArray() } },
                    Function { b -> b.decodeToString() },
                )
                val topic = wal.topic("words", codec)
                topic.append("one") shouldBe 0
                shouldThrow<IllegalArgumentException> { topic.append("bad") }
                shouldThrow<IllegalArgumentException> { topic.appendBatch(listOf("two", "bad", "three")) }
                topic.appendBatch(listOf("two", "three")) shouldBe 1L..2L
                topic.replay().toList().map { it.value } shouldBe listOf("one", "two", "three")
            }
        }

        test("a topic name is checked when the topic is made") {
            TypedLogs.withLog { wal, _ ->
                shouldThrow<InvalidTopicException> { wal.topic<Order>("a/b") }
                shouldThrow<InvalidTopicException> { wal.topic<Order>("") }
            }
        }
    })
