package dev.kwal.engine.recovery

import dev.kwal.engine.io.FileIo
import dev.kwal.engine.io.Listed
import dev.kwal.engine.storage.SegmentFiles
import java.nio.file.Path

/**
 * Phase 1, **list**: the ids of the segment files in [listing] (of [directory]), in ascending order.
 *
 * Deletes every temporary segment file (`seg-*.kwal.tmp`, a segment whose creation a crash cut short: see
 * [SegmentFiles.create]) on the way, and syncs the directory once if it deleted any, before anything else reads
 * the log. Names that are not segment names are left alone. An empty result is an empty log: the caller creates
 * segment 1.
 */
internal fun listSegmentIds(io: FileIo, directory: Path, listing: List<Listed>): List<Int> {
    var removedTemporary = false
    val ids = ArrayList<Int>()
    for (f in listing) {
        val name = f.name
        if (SegmentFiles.isTemporary(name)) {
            io.delete(f.path)
            removedTemporary = true
        }
        SegmentFiles.idOf(name)?.let(ids::add)
    }
    if (removedTemporary) io.syncDirectory(directory)
    ids.sort()
    return ids
}
