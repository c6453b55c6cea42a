package dev.kwal.engine.recovery

import dev.kwal.TopicNames
import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.CompressedBody
import dev.kwal.engine.format.ControlRecord
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.format.RecordFrame
import dev.kwal.engine.storage.TopicTable
import java.nio.ByteBuffer
import java.nio.charset.CodingErrorAction
import java.util.zip.CRC32C

/** A block that passed every check, as the scan keeps it until its group is complete. */
internal class Block(
    val position: LogPosition,
    val topicId: Int,
    val firstSeq: Long,
    val count: Int,
    /** The segment offset just past its body: where the next block starts. */
    val end: Int,
    val continued: Boolean,
    /** For a registry block: the names it registers, checked (known ones included: see [ScanStart]). */
    val names: List<String>?,
    /** Its bytes, header included. */
    val length: Int,
    /** A relocated copy (see `FORMAT.md`, "Relocation"): its sequences were acknowledged before. */
    val relocated: Boolean,
)

/** What checking one block found. */
internal sealed interface BlockCheck {
    class Ok(val block: Block) : BlockCheck

    /**
     * The block is no sound continuation of the log, for [reason]. [corrupt] if it passed every checksum, so that
     * it is no torn write but corruption (or a bug): a registry block whose names are invalid.
     */
    class Bad(val reason: String, val corrupt: Boolean = false) : BlockCheck
}

/**
 * Checks blocks completely, against the log as the scan has it: the committed groups in [table] and the [group]
 * being read. Checks, in order: the header (magic, position-bound CRC, version, flags, count, body length), that
 * the body lies within the segment, the topic (the registry, a registered topic, or one named by a registry block
 * of the same group), that its sequences continue the topic densely, for a compressed block its body (uncompressed
 * length in bounds, body CRC, decompression to exactly that length: see [CompressedBody]), every frame's CRC, that the
 * frames fill the (decompressed) body exactly, and for a registry block that every name is valid UTF-8, a valid topic
 * name, and new.
 */
internal class BlockChecker(
    private val table: TopicTable,
    private val group: PendingGroup,
    private val start: ScanStart = ScanStart.NONE,
) {
    private val crc = CRC32C()
    private val codec = RecordFrame.Codec()
    private val decompressor = CompressedBody.Decompressor()
    private val utf8 = Charsets.UTF_8.newDecoder()
        .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT)

    /**
     * Checks the block at index [at] of [view] (a duplicate of a segment's mapping, which this moves the limit of),
     * found at [position] of a segment readable up to [limit], of [segmentSize] bytes (its header's). A compressed
     * block is checked as [CompressedBody.Decompressor] does, then its frames as a plain block's.
     */
    fun check(view: ByteBuffer, at: Int, limit: Int, position: LogPosition, segmentSize: Int = limit): BlockCheck {
        view.limit(view.capacity())
        BlockHeader.check(view, at, position, crc)?.let { return BlockCheck.Bad(it) }
        val topicId = view.getInt(at + BlockHeader.OFF_TOPIC)
        val firstSeq = view.getLong(at + BlockHeader.OFF_FIRST_SEQ)
        val count = view.getInt(at + BlockHeader.OFF_COUNT)
        val body = view.getInt(at + BlockHeader.OFF_BODY_LENGTH)
        val end = at.toLong() + BlockHeader.SIZE + body
        if (body < 0 || end > limit) return BlockCheck.Bad("block body runs past the segment")
        // Topics named by a registry block of this same group are known too.
        val known = topicId == 0 || table.byId(topicId) != null || topicId - table.count in 1..group.namedTopics
        if (!known) return BlockCheck.Bad("block of unknown topic $topicId")
        val relocated = BlockHeader.isRelocated(view, at)
        if (relocated && (topicId == 0 || table.byId(topicId) == null)) {
            return BlockCheck.Bad("relocated block of topic $topicId, which is not a topic registered before it")
        }
        val expected = group.nextSequence(topicId)
            ?: (if (topicId == 0) table.registry else table.byId(topicId))?.reserved ?: 0L
        // A relocated copy repeats sequences acknowledged before; a topic's first block after the manifest's first
        // segment may start before where the manifest has it (blocks below its first sequence stay until their
        // segment goes), never after.
        val inOrder = relocated || firstSeq == expected ||
            (group.nextSequence(topicId) == null && start.relaxed(topicId) && firstSeq in 0..expected)
        if (!inOrder) {
            return BlockCheck.Bad("topic $topicId continues at sequence $firstSeq, expected $expected")
        }
        var frames = view
        var from = at + BlockHeader.SIZE
        var until = end.toInt()
        if (BlockHeader.isCompressed(view, at)) {
            decompressor.decompress(view, at, position, segmentSize)?.let { return BlockCheck.Bad(it) }
            frames = decompressor.plain
            from = 0
            until = decompressor.plainLength
        }
        recordsProblem(frames, from, until, topicId, firstSeq, count)?.let { return BlockCheck.Bad(it) }
        val names = if (topicId == 0) {
            val names = names(frames, from, count)
            val problem = nameProblem(names, firstSeq)
            if (problem != null) {
                return BlockCheck.Bad("topic registry holds an invalid name ($problem)", corrupt = true)
            }
            names.map { it!! }
        } else {
            null
        }
        val continued = view.get(at + BlockHeader.OFF_FLAGS).toInt() and BlockHeader.FLAG_CONTINUED != 0
        val length = (end - at).toInt()
        return BlockCheck.Ok(
            Block(position, topicId, firstSeq, count, end.toInt(), continued, names, length, relocated),
        )
    }

    /**
     * What is wrong with the [count] frames at [from] of [view] (a block's body, plain or decompressed), which ends at
     * [end]; null if they are records [firstSeq].. of [topicId], each passing its checksum, and fill the body exactly.
     */
    private fun recordsProblem(
        view: ByteBuffer,
        from: Int,
        end: Int,
        topicId: Int,
        firstSeq: Long,
        count: Int,
    ): String? {
        var p = from
        for (i in 0 until count) {
            val len = codec.check(view, p, end, topicId, firstSeq + i)
            if (len < 0) return "record ${firstSeq + i} of topic $topicId fails its checksum"
            p += RecordFrame.HEADER_SIZE + len
        }
        return if (p != end) "block body length does not match its records" else null
    }

    /** The names in the [count] frames at [from] of [b] (a registry block's body), each null if it is not UTF-8. */
    private fun names(b: ByteBuffer, from: Int, count: Int): List<String?> {
        val out = ArrayList<String?>(count)
        var p = from
        for (i in 0 until count) {
            val len = b.getInt(p + 4)
            val bytes = ByteArray(len) // bounded: the frame passed its check inside the block
            b.get(p + RecordFrame.HEADER_SIZE, bytes)
            out.add(
                try {
                    utf8.decode(ByteBuffer.wrap(bytes)).toString()
                } catch (e: Exception) {
                    null
                },
            )
            p += RecordFrame.HEADER_SIZE + len
        }
        return out
    }

    /**
     * What is wrong with the first name of [names] (registry records [firstSeq]..) that is not valid and new, or null
     * if all are. A name the manifest registered already ([ScanStart]) must be the one the manifest has.
     */
    private fun nameProblem(names: List<String?>, firstSeq: Long): String? {
        val seen = HashSet<String>()
        for ((i, name) in names.withIndex()) {
            val id = firstSeq + i + 1
            if (id <= start.knownTopics) {
                if (name != table.byId(id.toInt())?.name) return "topic $id named otherwise in the manifest"
                continue
            }
            val problem = when {
                name == null -> "not UTF-8"

                // The engine's control topic, whose name no user topic can have, is registered like any other.
                name != ControlRecord.TOPIC && TopicNames.problem(name) != null -> TopicNames.problem(name)

                table[name] != null || group.registers(name) || name in seen -> "registered twice"

                else -> null
            }
            if (problem != null) return problem
            seen.add(name!!)
        }
        return null
    }
}
