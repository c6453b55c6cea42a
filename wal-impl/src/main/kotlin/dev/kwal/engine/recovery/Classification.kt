package dev.kwal.engine.recovery

import dev.kwal.WalCorruptedException
import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.format.SegmentHeader
import dev.kwal.engine.storage.SegmentFiles
import java.nio.ByteBuffer
import java.util.zip.CRC32C

/** What a stop is: the verdict of phase 4, **classify**. */
internal sealed interface Verdict {
    /** The user records counted by the sound block headers from P on, which truncation drops. */
    val dropped: Long

    /** Bytes of groups that were being written when the process or machine stopped: always truncated. */
    class TornTail(override val dropped: Long) : Verdict

    /** Damage to bytes that had been durable: fails the open, unless the corruption policy allows truncating it. */
    class Corruption(
        private val stop: Stop,
        /** Whether a later block says P had been synced (rather than the stop being corrupt in itself). */
        private val syncedPast: Boolean,
        override val dropped: Long,
    ) : Verdict {
        /** What was found, for the report. */
        val description: String get() = "corruption at ${stop.found}: ${stop.reason}"

        /** The error that fails the open: it names the file and offset of the bad place. */
        fun failure(files: SegmentFiles): WalCorruptedException = WalCorruptedException(
            "$description${if (syncedPast) " (later blocks show it had been synced)" else ""}; " +
                "open with CorruptionPolicy.TRUNCATE to drop it and everything after it",
            files.pathOf(stop.found.segmentId),
            stop.found.offset.toLong(),
        )
    }
}

/**
 * Phase 4, **classify**: decides whether [stop] is a torn tail or corruption, from the [stop] itself and from the
 * evidence after it ([Evidence.after]). A stop that is corrupt in itself ([Stop.corrupt]: structural, or invalid
 * registry names) is corruption; any other is corruption if a later sound block says, by its synced-through
 * position, that P had been made durable before it was written, and else a torn tail. Reads the segments from P's
 * on; changes nothing.
 */
internal fun classify(stop: Stop, segments: List<ProbedSegment>, base: Int = 1): Verdict {
    val evidence = Evidence.after(stop.position, segments, base)
    return if (stop.corrupt || evidence.syncedPast) {
        Verdict.Corruption(stop, evidence.syncedPast, evidence.records)
    } else {
        Verdict.TornTail(evidence.records)
    }
}

/** What the bytes from a stop P to the end of the log say about P. */
internal class Evidence(
    /** Whether a sound block header after P records a synced-through position greater than P. */
    val syncedPast: Boolean,
    /** The user records those sound block headers count. */
    val records: Long,
) {
    companion object {
        /**
         * Looks at every byte from [p] to the end of [segments] (the probed files, the first being segment [base]'s
         * place) for block headers that pass their check where they
         * lie: bytes past a stop are no sound log, but such a header is a block that was written there.
         */
        fun after(p: LogPosition, segments: List<ProbedSegment>, base: Int): Evidence {
            val crc = CRC32C()
            var syncedPast = false
            var count = 0L
            for (i in (p.segmentId - base) until segments.size) {
                val f = segments[i]
                val from = if (i == p.segmentId - base) maxOf(p.offset, SegmentHeader.SIZE) else SegmentHeader.SIZE
                f.read { map ->
                    val view = map.duplicate()
                    forEachSoundHeader(view, f.id, from, f.limit, crc) { at ->
                        if (LogPosition(view.getLong(at + BlockHeader.OFF_SYNCED)) > p) syncedPast = true
                        if (view.getInt(at + BlockHeader.OFF_TOPIC) != 0) {
                            count += view.getInt(at + BlockHeader.OFF_COUNT)
                        }
                    }
                }
            }
            return Evidence(syncedPast, count)
        }

        /**
         * Calls [action] with the index of every sound block header in [view] (segment [id]) that starts in
         * [from, limit), trying every offset but skipping aligned zero words.
         */
        private inline fun forEachSoundHeader(
            view: ByteBuffer,
            id: Int,
            from: Int,
            limit: Int,
            crc: CRC32C,
            action: (Int) -> Unit,
        ) {
            var at = from
            while (at <= limit - BlockHeader.SIZE) {
                if ((at and 7) == 0 && at + 8 <= limit && view.getLong(at) == 0L) {
                    at += 8
                    continue
                }
                val sound = view.getInt(at) == BlockHeader.MAGIC &&
                    BlockHeader.check(view, at, LogPosition(id, at), crc) == null
                if (sound) action(at)
                at++
            }
        }
    }
}
