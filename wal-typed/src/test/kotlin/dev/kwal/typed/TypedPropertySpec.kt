package dev.kwal.typed

import dev.kwal.Durability
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.property.Arb
import io.kotest.property.arbitrary.bind
import io.kotest.property.arbitrary.boolean
import io.kotest.property.arbitrary.enum
import io.kotest.property.arbitrary.int
import io.kotest.property.arbitrary.list
import io.kotest.property.arbitrary.long
import io.kotest.property.arbitrary.map
import io.kotest.property.arbitrary.numericDouble
import io.kotest.property.arbitrary.orNull
import io.kotest.property.arbitrary.string
import io.kotest.property.checkAll
import kotlinx.coroutines.flow.toList
import kotlinx.serialization.Serializable

@Serializable
data class Line(val sku: String, val count: Int, val price: Double)

@Serializable
data class Event(
    val id: Long,
    val kind: Side,
    val label: String,
    val flag: Boolean,
    val comment: String? = null,
    val lines: List<Line> = emptyList(),
    val attributes: Map<String, Int> = emptyMap(),
    val score: Double? = null,
)

/** Random values round-trip through append, appendBatch and replay, in ProtoBuf and in JSON. */
class TypedPropertySpec :
    FunSpec({
        val line = Arb.bind(Arb.string(0..12), Arb.int(), Arb.numericDouble(), ::Line)
        val event = Arb.bind(
            Arb.long(),
            Arb.enum<Side>(),
            Arb.string(0..40),
            Arb.boolean(),
            Arb.string(0..20).orNull(0.3),
            Arb.list(line, 0..4),
            Arb.map(Arb.string(1..8), Arb.int(), maxSize = 4),
            Arb.numericDouble().orNull(0.3),
            ::Event,
        )

        for ((formatName, useJson) in listOf("ProtoBuf" to false, "JSON" to true)) {
            test("$formatName: random events round-trip through append, appendBatch and replay") {
                // Durability.None: the property is about encoding, not syncs; close() syncs everything.
                TypedLogs.withLog(Durability.None) { wal, _ ->
                    val topic = if (useJson) {
                        wal.topic<Event>("events", TopicFormats.json)
                    } else {
                        wal.topic<Event>("events")
                    }
                    var expected = 0L
                    checkAll(150, Arb.list(event, 0..12)) { values ->
                        val first = if (values.size == 1) {
                            topic.append(values.single()).also { it shouldBe expected }
                        } else {
                            topic.appendBatch(values).also { it.count() shouldBe values.size }.first
                        }
                        first shouldBe expected
                        val back = topic.replay(from = first).toList()
                        back.map { it.value } shouldBe values
                        back.map { it.sequence } shouldBe (first until first + values.size).toList()
                        expected += values.size
                    }
                    topic.replay().toList().size.toLong() shouldBe expected
                }
            }
        }
    })
