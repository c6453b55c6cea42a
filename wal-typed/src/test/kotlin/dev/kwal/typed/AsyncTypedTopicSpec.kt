package dev.kwal.typed

import dev.kwal.AsyncWal
import dev.kwal.BatchPositions
import dev.kwal.Durability
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.shouldBe
import io.kotest.matchers.types.shouldBeInstanceOf
import java.lang.reflect.Modifier
import java.nio.ByteBuffer
import java.util.concurrent.CompletionException
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.CountDownLatch
import java.util.concurrent.ExecutionException
import java.util.concurrent.Flow.Publisher
import java.util.concurrent.TimeUnit
import java.util.function.Consumer
import java.util.function.Function

/** A class kotlinx.serialization knows nothing of, as a Java application would have. */
class Point(val x: Int, val y: Int) {
    override fun equals(other: Any?): Boolean = other is Point && x == other.x && y == other.y
    override fun hashCode(): Int = x * 31 + y
    override fun toString(): String = "Point($x, $y)"

    companion object {
        val encode: Function<Point, ByteArray> =
            Function { p -> ByteBuffer.allocate(8).putInt(p.x).putInt(p.y).array() }
        val decode: Function<ByteArray, Point> = Function { b ->
            require(b.size == 8) { "a Point is 8 bytes, not ${b.size}" }
            ByteBuffer.wrap(b).let { Point(it.int, it.int) }
        }
    }
}

/** AsyncTypedTopic, the Java API: its futures and callbacks, both codec kinds, errors, and its Java-only signatures. */
class AsyncTypedTopicSpec :
    FunSpec({
        val points = List(6) { Point(it, -it) }

        test("codec pair: append, appendBatch, forEach, read, page, follow, commit, committed") {
            TypedLogs.withLog { wal, _ ->
                val async = AsyncWal.of(wal)
                val topic = AsyncTypedTopic.of(async, "points", Point.encode, Point.decode)
                topic.append(points[0]).join() shouldBe 0
                topic.append(points[1], Durability.None).join() shouldBe 1
                topic.appendBatch(points.subList(2, 5)).join() shouldBe BatchPositions(2, 3)
                topic.appendBatch(emptyList()).join() shouldBe BatchPositions(5, 0)
                topic.nextSequence() shouldBe 5
                wal.read("points", 3)!!.payload.contentEquals(Point.encode.apply(points[3])) shouldBe true

                val seen = mutableListOf<Typed<Point>>()
                topic.forEach(1, Consumer { seen += it })
                seen.map { it.value } shouldBe points.subList(1, 5)
                seen.map { it.sequence } shouldBe listOf(1L, 2L, 3L, 4L)
                seen.all { it.topic == "points" && it.timestampMillis > 0 } shouldBe true

                topic.read(4).join()!!.value shouldBe points[4]
                topic.read(9).join().shouldBeNull()
                topic.read(1, 2, Int.MAX_VALUE).join().map { it.value } shouldBe points.subList(1, 3)
                topic.seek(0).join() shouldBe 0

                topic.committed("mover").shouldBeNull()
                topic.commit("mover", 3).join()
                topic.committed("mover") shouldBe 3
                val followed = CopyOnWriteArrayList<Point>()
                val three = CountDownLatch(3)
                val following = topic.follow(
                    "mover",
                    Consumer {
                        followed += it.value
                        three.countDown()
                    },
                )
                topic.append(points[5]).join() shouldBe 5
                three.await(10, TimeUnit.SECONDS) shouldBe true
                following.cancel(true)
                followed shouldBe points.subList(3, 6)

                val fromTwo = CopyOnWriteArrayList<Long>()
                val two = CountDownLatch(2)
                val f = topic.follow(
                    4,
                    Consumer {
                        fromTwo += it.sequence
                        two.countDown()
                    },
                )
                two.await(10, TimeUnit.SECONDS) shouldBe true
                f.cancel(true)
                fromTwo shouldBe listOf(4L, 5L)
                topic.truncateBefore(2).join()
                topic.firstSequence() shouldBe 2
            }
        }

        test("KSerializer: ProtoBuf by default, JSON when given, both readable by the Kotlin TypedTopic") {
            TypedLogs.withLog { wal, _ ->
                val async = AsyncWal.of(wal)
                val order = Order(7, "KWAL", Side.BUY, 3)
                AsyncTypedTopic.of(async, "p", Order.serializer()).append(order).join() shouldBe 0
                AsyncTypedTopic.of(async, "j", Order.serializer(), TopicFormats.json).append(order).join() shouldBe 0
                AsyncTypedTopic.of(async, "b", Order.serializer(), TopicFormats.protoBuf).append(order).join()
                wal.topic<Order>("p").read(0)!!.value shouldBe order
                wal.topic<Order>("b").read(0)!!.value shouldBe order
                wal.topic<Order>("j", TopicFormats.json).read(0)!!.value shouldBe order
                wal.read("j", 0)!!.payload.decodeToString() shouldBe
                    """{"id":7,"symbol":"KWAL","side":"BUY","quantity":3,"note":""}"""
            }
        }

        test("errors: an undecodable record fails forEach, read and follow naming it; a bad value writes nothing") {
            TypedLogs.withLog { wal, _ ->
                val async = AsyncWal.of(wal)
                val topic = AsyncTypedTopic.of(async, "points", Point.encode, Point.decode)
                topic.append(points[0]).join()
                async.append("points", byteArrayOf(1, 2, 3)).join() shouldBe 1

                val seen = mutableListOf<Long>()
                val e = shouldThrow<RecordDecodingException> { topic.forEach(0, Consumer { seen += it.sequence }) }
                seen shouldBe listOf(0L)
                e.topic shouldBe "points"
                e.sequence shouldBe 1
                e.cause!!.message shouldBe "a Point is 8 bytes, not 3"

                val read = shouldThrow<CompletionException> { topic.read(1).join() }
                read.cause.shouldBeInstanceOf<RecordDecodingException>().sequence shouldBe 1
                val page = shouldThrow<CompletionException> { topic.read(0, 10, Int.MAX_VALUE).join() }
                page.cause.shouldBeInstanceOf<RecordDecodingException>().sequence shouldBe 1
                val follow = shouldThrow<ExecutionException> { topic.follow(0, Consumer { }).get(10, TimeUnit.SECONDS) }
                follow.cause.shouldBeInstanceOf<RecordDecodingException>().sequence shouldBe 1

                val failing = AsyncTypedTopic.of<Point>(
                    async,
                    "strict",
                    Function { p -> require(p.x >= 0) { "negative x" }.let { Point.encode.apply(p) } },
                    Point.decode,
                )
                shouldThrow<ExecutionException> { failing.append(Point(-1, 0)).get() }
                    .cause.shouldBeInstanceOf<IllegalArgumentException>()
                shouldThrow<ExecutionException> { failing.appendBatch(listOf(Point(1, 1), Point(-1, 0))).get() }
                    .cause.shouldBeInstanceOf<IllegalArgumentException>()
                failing.nextSequence() shouldBe 0
                failing.appendBatch(listOf(Point(1, 1), Point(2, 2))).join() shouldBe BatchPositions(0, 2)
                failing.nextSequence() shouldBe 2
            }
        }

        test(
            "its public Java signatures use no Kotlin types (kotlin.*), only Java's, kwal's and kotlinx.serialization's",
        ) {
            val offenders = mutableListOf<String>()
            for (c in listOf(AsyncTypedTopic::class.java, AsyncTypedTopic.Companion::class.java, Typed::class.java)) {
                val members = c.declaredMethods.filter { Modifier.isPublic(it.modifiers) && !it.isSynthetic }
                    .map { it.toGenericString() } +
                    c.declaredConstructors.filter {
                        Modifier.isPublic(it.modifiers) && !it.isSynthetic
                    }.map { it.toGenericString() }
                members.filter { Regex("""\bkotlin\.""").containsMatchIn(it) }.forEach { offenders += it }
            }
            offenders.shouldBeEmpty()
            // And the factories are static methods on the class itself, as Java expects.
            AsyncTypedTopic::class.java.declaredMethods.count {
                it.name == "of" && Modifier.isStatic(it.modifiers)
            } shouldBe
                5
            // appendBatch gives the facade's BatchPositions; replay and follow are typed Flow.Publishers, for every
            // start (a sequence, an Instant, a consumer), beside the callback forms.
            val methods = AsyncTypedTopic::class.java.methods.filter { !it.isSynthetic }
            methods.filter { it.name == "appendBatch" }.map { it.genericReturnType.typeName }.toSet() shouldBe
                setOf("java.util.concurrent.CompletableFuture<dev.kwal.BatchPositions>")
            val publishers = methods.filter { it.returnType == Publisher::class.java }.map { m ->
                m.name + m.parameterTypes.joinToString(",", "(", ")") { it.simpleName } + " " +
                    m.genericReturnType.typeName
            }
            publishers.toSet() shouldBe listOf(
                "replay(long)",
                "replay(Instant)",
                "follow(long)",
                "follow(String)",
                "follow(Instant)",
            ).map { "$it java.util.concurrent.Flow\$Publisher<dev.kwal.typed.Typed<T>>" }.toSet()
            methods.filter { it.name == "forEach" || it.name == "follow" }
                .filter { it.parameterCount == 2 }
                .map { it.name + "(" + it.parameterTypes[0].simpleName + ")" }.toSet() shouldBe
                setOf("forEach(long)", "forEach(Instant)", "follow(long)", "follow(String)", "follow(Instant)")
        }

        test("the check can fail: TypedTopic's suspending calls take a kotlin.coroutines.Continuation") {
            TypedTopic::class.java.declaredMethods.filter { Modifier.isPublic(it.modifiers) }
                .map { it.toGenericString() }
                .any { Regex("""\bkotlin\.coroutines\.Continuation""").containsMatchIn(it) } shouldBe true
        }
    })
