package dev.kwal.engine.commit

import dev.kwal.engine.storage.LogLifecycle
import kotlinx.coroutines.sync.Mutex
import java.nio.ByteBuffer

/**
 * Writes one group into the log: encodes it ([GroupEncoder]) and writes its bytes, one write per segment touched, or
 * undoes it if either fails. Used by the [CommitLoop] (suspending writes, on the writer thread) and by the
 * [InlineAppender] (stores through the segment's mapping, on the caller's thread).
 *
 * Everything the writer keeps — the active segment, the tail, the encoder, topic reservations — is touched only under
 * [lock], by one thread at a time: whoever builds, writes and routes a group holds it from taking the group's first
 * request to handing the group on.
 */
internal class GroupWriter(
    private val encoder: GroupEncoder,
    private val completer: Completer,
    private val lifecycle: LogLifecycle,
) {
    /** Held while a group is built, written and routed, by the commit loop or by an inline caller. */
    val lock = Mutex()

    /** Whether a unit that may take [bytes] fits the active segment without a roll (see [GroupEncoder.fits]). */
    fun fits(bytes: Long): Boolean = encoder.fits(bytes)

    /**
     * Encodes and writes [group] with suspending writes. Returns null once it is written (its [Group.end] set), or the
     * error its callers must get: then it was undone, or never written because the log had failed. Tells no caller.
     */
    suspend fun write(group: Group): Throwable? =
        encodeAndWrite(group) { bytes, r -> r.segment.file.write(bytes, r.fileOffset.toLong()) }

    /** As [write], but stores the group through the segment's mapping, on the calling thread. */
    fun store(group: Group): Throwable? =
        encodeAndWrite(group) { bytes, r -> r.segment.file.store(bytes, r.fileOffset.toLong()) }

    private inline fun encodeAndWrite(group: Group, write: (ByteBuffer, Group.Region) -> Unit): Throwable? {
        if (lifecycle.failure != null) {
            encoder.abandon(group)
            return lifecycle.unavailable()
        }
        try {
            // Encoding can fail too: rolling may have to create a segment, and the disk may be full.
            encoder.encode(group, completer.durableFrontier)
            for (r in group.regions) write(encoder.bytesOf(r), r)
        } catch (e: Throwable) {
            return encoder.undo(group, e)
        }
        group.end = encoder.end()
        return null
    }
}
