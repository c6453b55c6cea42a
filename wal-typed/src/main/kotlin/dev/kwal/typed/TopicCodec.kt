package dev.kwal.typed

import kotlinx.serialization.BinaryFormat
import kotlinx.serialization.KSerializer
import kotlinx.serialization.StringFormat
import kotlinx.serialization.json.Json
import kotlinx.serialization.protobuf.ProtoBuf
import java.util.function.Function

/**
 * How a typed topic turns its values into record payloads and back.
 *
 * Build one from a kotlinx.serialization serializer and a format ([of]), or from a pair of plain functions. A codec
 * must be thread-safe: topics call it from any thread. [decode] may throw anything for bytes it cannot read; the
 * topic reports that as a [RecordDecodingException] naming the record.
 */
public interface TopicCodec<T> {
    /** The payload of [value]. */
    public fun encode(value: T): ByteArray

    /** The value [bytes] hold; throws if they hold none. */
    public fun decode(bytes: ByteArray): T

    public companion object {
        /** [serializer] in [format], ProtoBuf ([TopicFormats.protoBuf]) unless given. */
        @JvmStatic
        @JvmOverloads
        public fun <T> of(serializer: KSerializer<T>, format: BinaryFormat = TopicFormats.protoBuf): TopicCodec<T> =
            BinaryCodec(serializer, format)

        /** [serializer] in [format] (JSON: [TopicFormats.json]), stored as UTF-8. */
        @JvmStatic
        public fun <T> of(serializer: KSerializer<T>, format: StringFormat): TopicCodec<T> =
            TextCodec(serializer, format)

        /** A codec of two plain functions, for values kotlinx.serialization does not describe (Java classes). */
        @JvmStatic
        public fun <T> of(encode: Function<T, ByteArray>, decode: Function<ByteArray, T>): TopicCodec<T> =
            FunctionCodec(encode, decode)
    }
}

/**
 * The formats typed topics use unless told otherwise, configured so that a type may evolve: a record written by an
 * older version of a class decodes into a newer one whose added properties have defaults, and the other way round.
 */
public object TopicFormats {
    /**
     * ProtoBuf, the default: compact; unknown fields are skipped (an older class reads a newer record) and missing
     * ones take their defaults (a newer class reads an older record). Protocol Buffers' own rules apply:
     * - properties are numbered in declaration order unless annotated with `@ProtoNumber`: add new ones at the end,
     *   or number them, and never reuse a number;
     * - a value equal to its property's default is not written, so it decodes to whatever the default is when it is
     *   read: do not change a default once records are written (the JSON format writes them);
     * - an empty list or map is not written either, and a nullable property must default to `null`.
     */
    @JvmField
    public val protoBuf: BinaryFormat = ProtoBuf

    /**
     * JSON: readable, larger. Unknown keys are ignored (an older class reads a newer record), missing keys take their
     * defaults (a newer class reads an older record), and values equal to their defaults are written, so a record
     * keeps its meaning if a default changes later.
     */
    @JvmField
    public val json: StringFormat = Json {
        ignoreUnknownKeys = true
        encodeDefaults = true
    }
}

private class BinaryCodec<T>(private val serializer: KSerializer<T>, private val format: BinaryFormat) :
    TopicCodec<T> {
    override fun encode(value: T): ByteArray = format.encodeToByteArray(serializer, value)

    override fun decode(bytes: ByteArray): T = format.decodeFromByteArray(serializer, bytes)

    override fun toString(): String = "TopicCodec(${serializer.descriptor.serialName}, $format)"
}

private class TextCodec<T>(private val serializer: KSerializer<T>, private val format: StringFormat) : TopicCodec<T> {
    override fun encode(value: T): ByteArray = format.encodeToString(serializer, value).encodeToByteArray()

    override fun decode(bytes: ByteArray): T =
        format.decodeFromString(serializer, bytes.decodeToString(throwOnInvalidSequence = true))

    override fun toString(): String = "TopicCodec(${serializer.descriptor.serialName}, $format)"
}

private class FunctionCodec<T>(
    private val encoder: Function<T, ByteArray>,
    private val decoder: Function<ByteArray, T>,
) : TopicCodec<T> {
    override fun encode(value: T): ByteArray = encoder.apply(value)

    override fun decode(bytes: ByteArray): T = decoder.apply(bytes)
}
