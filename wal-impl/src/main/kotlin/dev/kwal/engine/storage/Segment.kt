package dev.kwal.engine.storage

import dev.kwal.engine.io.LogFile
import java.nio.ByteBuffer

/**
 * One segment file and where it is in its life ([state]), which only its [SegmentSet] changes:
 *
 * ```
 *   SPARE ──roll──▶ ACTIVE ──roll──▶ SEALED ──durable──▶ RELEASED
 *     ▲               │      ◀─undo──  │
 *     └─────undo──────┘                │
 * ```
 *
 * - [SegmentState.SPARE]: built in full (header, zeros) and named, but not yet part of the log's data.
 * - [SegmentState.ACTIVE]: the one segment the writer appends to (or an inline caller holding the writer's lock).
 * - [SegmentState.SEALED]: the writer has moved on; its bytes never change again. Its file stays open until it is
 *   durable.
 * - [SegmentState.RELEASED]: sealed and durable; its file is closed ([release]) and readers map it by path.
 * - [SegmentState.DELETED]: retention deleted its file ([SegmentSet.deleteBelow]) once no record in it was live.
 *   Readers that borrow its mapping read on; none can map it again.
 *
 * A group that fails after rolling is undone: the segments it rolled into become spares again, and the one it
 * sealed active again.
 *
 * Readers read every segment through a read-only mapping, which shows acknowledged bytes however they were written.
 * They borrow it ([borrowMapping]) while they read this segment and give it back ([returnMapping]); [mappings] decides
 * when a mapping no one borrows is unmapped, and maps the segment again, by path, when a reader needs it.
 *
 * Thread-safety: [state] is read by any thread; the mapping fields are guarded by [mappings]' lock.
 */
internal class Segment(val id: Int, val size: Int, val file: LogFile, private val mappings: MappingCache) {
    /** Where this segment is in its life; set only by [SegmentSet] (and [recoveredSealed]). */
    @Volatile var state: SegmentState = SegmentState.SPARE
        internal set

    // The mapping readers borrow, guarded by [mappings]' lock (see MappingCache).

    /** The read-only mapping, if mapped: the very buffer [LogFile.map] returned, which is unmapped through it. */
    internal var mapping: ByteBuffer? = null

    /** Readers holding a duplicate of [mapping] now. */
    internal var borrowers = 0

    /** No mapping of this segment is kept once no one borrows it (the log closed). */
    internal var retired = false

    /**
     * A duplicate of this segment's read-only mapping, which stays valid until [returnMapping]. The caller must give it
     * back exactly once, and touch neither it nor any view of it afterwards.
     */
    fun borrowMapping(): ByteBuffer = mappings.borrow(this)

    /** Gives back a mapping [borrowMapping] returned. */
    fun returnMapping() = mappings.giveBack(this)

    /** How many bytes a mapping covers once the file is closed (fixed then); -1 while it is open. Guarded by this. */
    private var closedLength = -1L

    /**
     * Makes a new read-only mapping of the segment (for [MappingCache]): of all of it, or of all the file holds if
     * shorter.
     */
    internal fun map(): ByteBuffer =
        file.map(synchronized(this) { if (closedLength >= 0) closedLength else minOf(size.toLong(), file.size()) })

    /**
     * For a sealed segment that is durable and will never be written again: closes its file, so a long log holds open
     * files only for its active and spare segments. Readers map it by path when they need it. [SegmentSet] only.
     */
    internal fun release() {
        if (state == SegmentState.RELEASED) return
        check(state == SegmentState.SEALED) { "$this is $state, not sealed" }
        state = SegmentState.RELEASED
        closeFile()
    }

    /** Closes the file (if open), noting first how much of it a mapping can cover. */
    internal fun closeFile() {
        synchronized(this) {
            if (closedLength <
                0
            ) {
                closedLength = runCatching { minOf(size.toLong(), file.size()) }.getOrDefault(size.toLong())
            }
        }
        file.close()
    }

    override fun toString(): String = "segment $id (${file.path.fileName})"

    companion object {
        /**
         * A segment recovery found sealed, and durable (it synced it), whose file holds [length] bytes of it (its
         * size, unless the file is shorter). It comes [SegmentState.RELEASED]: [closedFile] is already closed and only
         * names the file (`file.path`, for errors) and maps it; nothing may read or write through it.
         */
        fun recoveredSealed(id: Int, size: Int, closedFile: LogFile, length: Int, mappings: MappingCache): Segment =
            Segment(id, size, closedFile, mappings).apply {
                closedLength = minOf(length, size).toLong()
                state = SegmentState.RELEASED
            }
    }
}

/** Where a [Segment] is in its life; see [Segment]. */
internal enum class SegmentState { SPARE, ACTIVE, SEALED, RELEASED, DELETED }
