package dev.kwal.typed

import io.kotest.assertions.throwables.shouldThrow
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.types.shouldBeInstanceOf
import kotlinx.coroutines.flow.toList
import kotlinx.serialization.MissingFieldException
import kotlinx.serialization.SerialName
import kotlinx.serialization.Serializable
import kotlinx.serialization.SerializationException
import kotlinx.serialization.StringFormat
import kotlinx.serialization.json.Json

/** Version 1 of a customer, as an older release wrote it. */
@Serializable
@SerialName("Customer")
data class CustomerV1(val id: Long, val name: String)

/** Version 2: fields added at the end, each with a default. */
@Serializable
@SerialName("Customer")
data class CustomerV2(
    val id: Long,
    val name: String,
    val email: String = "unknown",
    val tags: List<String> = emptyList(),
    val vip: Boolean = false,
)

/** Version 2 in a later release that changed its defaults. */
@Serializable
@SerialName("Customer")
data class CustomerV2NewDefaults(
    val id: Long,
    val name: String,
    val email: String = "changed",
    val tags: List<String> = listOf("new"),
    val vip: Boolean = true,
)

/** An incompatible version 3: a field added without a default. */
@Serializable
@SerialName("Customer")
data class CustomerV3(val id: Long, val name: String, val region: String)

/**
 * Records written by one version of a class read by another, in both formats, through the log: added fields with
 * defaults are compatible both ways; a field added without a default is a [RecordDecodingException], not a crash or a
 * skipped record.
 */
class SchemaEvolutionSpec :
    FunSpec({
        val v1 = listOf(CustomerV1(1, "Ada"), CustomerV1(2, "Grace"))
        val v2 = CustomerV2(3, "Edsger", "ed@example.org", listOf("a", "b"), vip = true)

        for ((formatName, useJson) in listOf("ProtoBuf" to false, "JSON" to true)) {
            fun <T> open(wal: dev.kwal.Wal, serializer: kotlinx.serialization.KSerializer<T>): TypedTopic<T> =
                if (useJson) {
                    wal.topic("customers", serializer, TopicFormats.json)
                } else {
                    wal.topic("customers", serializer)
                }

            test("$formatName: V1 records read as V2 with defaults, V2 records read as V1, across a reopen") {
                val dir = kotlin.io.path.createTempDirectory("kwal-typed-evolve")
                TypedLogs.open(dir).use { wal -> open(wal, CustomerV1.serializer()).appendBatch(v1) shouldBe 0L..1L }
                TypedLogs.open(dir).use { wal ->
                    val newer = open(wal, CustomerV2.serializer())
                    newer.append(v2) shouldBe 2
                    newer.replay().toList().map { it.value } shouldBe listOf(
                        CustomerV2(1, "Ada"),
                        CustomerV2(2, "Grace"),
                        v2,
                    )
                    withClue("an older reader skips the fields it does not know") {
                        open(wal, CustomerV1.serializer()).replay().toList().map { it.value } shouldBe
                            v1 + CustomerV1(3, "Edsger")
                    }
                }
            }

            test("$formatName: a field added without a default is a RecordDecodingException at the first old record") {
                TypedLogs.withLog { wal, _ ->
                    open(wal, CustomerV1.serializer()).appendBatch(v1)
                    val e =
                        shouldThrow<RecordDecodingException> { open(wal, CustomerV3.serializer()).replay().toList() }
                    e.topic shouldBe "customers"
                    e.sequence shouldBe 0
                    e.cause.shouldBeInstanceOf<MissingFieldException>()
                    // The records are still there for a compatible reader.
                    open(wal, CustomerV2.serializer()).replay().toList().size shouldBe 2
                }
            }
        }

        test("JSON without ignoreUnknownKeys cannot read newer records: why TopicFormats.json sets it") {
            TypedLogs.withLog { wal, _ ->
                wal.topic("customers", CustomerV2.serializer(), TopicFormats.json).append(v2)
                val strict: StringFormat = Json
                val e = shouldThrow<RecordDecodingException> {
                    wal.topic("customers", CustomerV1.serializer(), strict).replay().toList()
                }
                e.sequence shouldBe 0
                e.cause.shouldBeInstanceOf<SerializationException>()
                wal.topic("customers", CustomerV1.serializer(), TopicFormats.json).read(0)!!.value shouldBe
                    CustomerV1(3, "Edsger")
            }
        }

        test("JSON writes default values, so a later change of a default keeps old records; ProtoBuf does not") {
            TypedLogs.withLog { wal, _ ->
                wal.topic<CustomerV2>("c-json", TopicFormats.json).append(CustomerV2(1, "Ada"))
                wal.read("c-json", 0)!!.payload.decodeToString() shouldBe
                    """{"id":1,"name":"Ada","email":"unknown","tags":[],"vip":false}"""
                wal.topic<CustomerV2NewDefaults>("c-json", TopicFormats.json).read(0)!!.value shouldBe
                    CustomerV2NewDefaults(1, "Ada", "unknown", emptyList(), false)

                // ProtoBuf leaves out values equal to their defaults (and empty lists): they read as today's defaults.
                wal.topic<CustomerV2>("c-proto").append(CustomerV2(1, "Ada"))
                wal.topic<CustomerV2NewDefaults>("c-proto").read(0)!!.value shouldBe CustomerV2NewDefaults(1, "Ada")
            }
        }
    })
