package dev.kwal.engine.storage

import dev.kwal.engine.format.LogPosition
import java.nio.ByteBuffer

/**
 * What [BlockIndex] reads the log through when it walks from one of its samples to a block it does not hold: block
 * headers, checked. A reader implements it over the segment mappings it borrows (`replay.TopicReader`).
 */
internal interface BlockHeaders {
    /**
     * A view holding a sound block header at `position.offset` — magic, its CRC at that very place, version, flags —
     * and the whole body the header announces. Valid until the next call. Throws [corrupt]'s exception if the header is
     * not sound, or the implementation's own if the segment is gone.
     */
    fun header(position: LogPosition): ByteBuffer

    /** The exception for a walk that finds the log not as its index says, at [position]. */
    fun corrupt(what: String, position: LogPosition): Exception
}
