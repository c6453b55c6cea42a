package dev.kwal.engine.recovery

import dev.kwal.CorruptionPolicy
import dev.kwal.RecoveryReport
import dev.kwal.WalCorruptedException
import dev.kwal.WalOptions
import dev.kwal.engine.format.BlockHeader
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.format.RecordFrame
import dev.kwal.engine.format.SegmentHeader
import dev.kwal.engine.io.FileIo
import dev.kwal.engine.io.LogFile
import dev.kwal.engine.storage.Segment
import dev.kwal.engine.storage.SegmentFiles
import dev.kwal.engine.storage.TopicTable
import dev.kwal.TopicNames
import org.slf4j.LoggerFactory
import java.nio.ByteBuffer
import java.nio.charset.CodingErrorAction
import java.security.SecureRandom
import java.util.zip.CRC32C

/**
 * The open-time scan. It reads every segment in order and every block in it, checks every header and record
 * checksum and that each topic's sequences continue densely, and rebuilds the topic registry and each
 * topic's block index from what it finds.
 *
 * Scanning stops at the first place P where the bytes are not a sound continuation of the log. What P is
 * decides what happens:
 * - a **torn tail** — bytes of groups that were being written when the process or machine stopped — is
 *   truncated (overwritten with zeros and synced; later segments deleted) and reported. P is a torn tail
 *   when no sound block after it says, by its synced-through field, that P had been made durable.
 * - **corruption** — P lies in bytes a later block says were durable, or a segment header is bad, or a
 *   segment is missing — fails the open with [WalCorruptedException] under [CorruptionPolicy.FAIL], and is
 *   truncated like a torn tail under [CorruptionPolicy.TRUNCATE].
 *
 * A group (every block up to and including one without the CONTINUED flag, see `FORMAT.md`) is kept whole or
 * not at all, so a stop inside a group moves P back to the group's first block.
 */
internal class Recovery(
    private val options: WalOptions,
    private val io: FileIo,
    private val files: SegmentFiles,
) {
    private val log = LoggerFactory.getLogger(Recovery::class.java)
    private val crc = CRC32C()
    private val codec = RecordFrame.Codec()
    private val table = TopicTable()
    private var records = 0L

    private class Block(
        val position: LogPosition, val topicId: Int, val firstSeq: Long, val count: Int, val end: Int, val continued: Boolean,
        /** For a registry block: the names it registers, checked. */
        val names: List<String>?,
    )

    /** Where scanning stopped and why: [found] is the bad place, [position] where truncation must start. */
    private class Stop(val position: LogPosition, val reason: String, val corrupt: Boolean, val found: LogPosition = position)

    fun run(): RecoveredLog {
        val started = System.nanoTime()
        val dir = files.directory
        var removedTemporary = false
        val ids = ArrayList<Int>()
        for (p in io.list(dir)) {
            val name = p.fileName.toString()
            if (SegmentFiles.isTemporary(name)) { io.delete(p); removedTemporary = true }
            SegmentFiles.idOf(name)?.let(ids::add)
        }
        if (removedTemporary) io.syncDirectory(dir)
        ids.sort()
        if (ids.isEmpty()) {
            val logId = SecureRandom().nextLong()
            val first = files.create(1, options.segmentSize, logId)
            return RecoveredLog(logId, listOf(first), emptyList(), SegmentHeader.SIZE, table, report(started, 1, 0, 0, null))
        }

        val opened = ArrayList<LogFile>()
        try {
            return scan(ids, opened, started)
        } catch (e: Throwable) {
            opened.forEach { runCatching { it.close() } }
            throw e
        }
    }

    /** A segment file as recovery found it, its [file] closed again: it is read through a mapping made by path ([read]). */
    private class Found(
        val id: Int, val file: LogFile, val fileSize: Long, val header: SegmentHeader.Result,
        /** The size its header declares (if sound and in range), else today's. */
        val size: Int,
        /** How far it can be read: its size, or less if the file is shorter. */
        val limit: Int,
    )

    /**
     * Opens segment [id], makes it durable, reads its header and closes it again. Recovery holds open only the files it
     * hands to the writer, and maps one segment at a time ([read]), so a log of any length opens under an ordinary
     * limit on open files and on mappings.
     */
    private fun probe(id: Int): Found {
        val file = files.openFile(id)
        try {
            val fileSize = file.size()
            // Whatever survived may still be only in the page cache (a crash under Durability.None): make it durable
            // now, so that the synced-through positions the writer records from here on are true.
            file.force()
            val map = file.map(fileSize)
            val header = try { SegmentHeader.decode(map.duplicate()) } finally { file.unmap(map) }
            val declared = (header as? SegmentHeader.Result.Ok)?.header?.segmentSize
                ?.takeIf { it in WalOptions.MIN_SEGMENT_SIZE..WalOptions.MAX_SEGMENT_SIZE } ?: options.segmentSize
            return Found(id, file, fileSize, header, declared, minOf(fileSize, declared.toLong()).toInt())
        } finally {
            file.close()
        }
    }

    /**
     * Runs [block] on a read-only mapping of [f] (its whole file), unmapped when it returns: nothing may keep the
     * mapping, or any view of it, past [block].
     */
    private inline fun <T> read(f: Found, block: (ByteBuffer) -> T): T {
        val map = f.file.map(f.fileSize)
        try {
            return block(map)
        } finally {
            f.file.unmap(map)
        }
    }

    /** Opens [f]'s file again, for the writer (or to truncate it), and notes it in [opened]. */
    private fun reopen(f: Found, opened: MutableList<LogFile>): LogFile = files.openFile(f.id).also { opened.add(it) }

    private fun scan(ids: List<Int>, opened: MutableList<LogFile>, started: Long): RecoveredLog {
        // Probe every segment first (each synced, its header read); the scan then maps one at a time.
        val found = ids.map(::probe)

        var logId: Long? = null
        var stop: Stop? = null
        val dataEnds = ArrayList<Int>()
        var firstEmpty = -1 // the first segment with no data, while no later one has data
        for ((index, id) in ids.withIndex()) {
            val at0 = LogPosition(index + 1, 0)
            if (id != index + 1) { stop = stopAt(at0, "segment file ${SegmentFiles.nameOf(index + 1)} is missing", true); break }
            val header = when (val h = found[index].header) {
                is SegmentHeader.Result.Bad -> { stop = stopAt(at0, h.reason, true); break }
                is SegmentHeader.Result.Ok -> h.header
            }
            if (header.segmentId != id) { stop = stopAt(at0, "header names segment ${header.segmentId}", true); break }
            if (logId != null && header.logId != logId) { stop = stopAt(at0, "segment belongs to another log", true); break }
            if (header.segmentSize != found[index].size) { stop = stopAt(at0, "segment size ${header.segmentSize} out of range", true); break }
            logId = header.logId
            val scanned = read(found[index]) { map ->
                // After an empty segment, any byte of data is a stop, not only a block header where one would start: a
                // power cut may have lost the first sector of a segment the writer had rolled into and kept later ones.
                if (firstEmpty >= 0 && !BlockHeader.allZero(map, SegmentHeader.SIZE, found[index].limit)) null
                else scanSegment(id, map, found[index].limit)
            }
            if (scanned == null) {
                stop = stopAt(LogPosition(ids[firstEmpty], SegmentHeader.SIZE), "segment ${ids[firstEmpty]} is empty but a later one has data", false)
                break
            }
            val (end, segmentStop) = scanned
            dataEnds.add(end)
            if (segmentStop != null) { stop = segmentStop; break }
            if (end == SegmentHeader.SIZE && firstEmpty < 0) firstEmpty = index
        }
        // A group still open at the end of the last segment never got its last block: a torn tail.
        if (stop == null && pending.isNotEmpty()) stop = stopAt(pending[0].position, "group cut off at the end of the log", false)

        var truncatedBytes = 0L
        var dropped = 0L
        var corruption: String? = null
        val kept: Int // segments kept with data (or the one empty segment of a log without any): the last is the active one
        var activeFile: LogFile? = null
        val spares: List<Segment>
        val tail: Int
        if (stop == null) {
            val lastData = dataEnds.indexOfLast { it > SegmentHeader.SIZE }.coerceAtLeast(0)
            kept = lastData + 1
            // Empty segments after the active one are reused as spares, but only at today's segment size: a batch
            // is checked against that size, and must fit the segment it rolls into.
            val trailing = found.subList(lastData + 1, found.size)
            val keep = trailing.takeWhile { it.size == options.segmentSize }
            for (f in trailing.drop(keep.size)) io.delete(f.file.path)
            if (keep.size < trailing.size) io.syncDirectory(files.directory)
            spares = keep.map { Segment(it.id, it.size, reopen(it, opened), files.mappings) }
            tail = dataEnds[lastData]
        } else {
            val p = stop.position
            val evidence = evidenceAfter(p, found)
            val corrupt = stop.corrupt || evidence.syncedPast
            dropped = evidence.records
            if (corrupt) {
                val what = "corruption at ${stop.found}: ${stop.reason}"
                if (options.corruptionPolicy == CorruptionPolicy.FAIL) {
                    throw WalCorruptedException(
                        "$what${if (evidence.syncedPast) " (later blocks show it had been synced)" else ""}; " +
                            "open with CorruptionPolicy.TRUNCATE to drop it and everything after it",
                        files.pathOf(stop.found.segmentId), stop.found.offset.toLong(),
                    )
                }
                corruption = what
                log.warn("kwal: truncating the log at {} ({}) as CorruptionPolicy.TRUNCATE allows", p, stop.reason)
            } else {
                log.info("kwal: truncating a torn tail at {} ({})", p, stop.reason)
            }
            // Truncate: delete every segment after the stop, newest first, each deletion made durable before the
            // next — so a cut at any moment leaves an unbroken run of segments, never a gap that would read as
            // corruption — then zero the stop segment from P (if it is sound, else delete it too).
            val keepStopSegment = p.offset >= SegmentHeader.SIZE
            for (i in found.size - 1 downTo p.segmentId - 1) {
                val f = found[i]
                if (i == p.segmentId - 1 && keepStopSegment) {
                    val last = read(f) { BlockHeader.lastNonZero(it, p.offset, f.limit) }
                    if (last >= 0) {
                        truncatedBytes += last + 1 - p.offset
                        val file = reopen(f, opened).also { activeFile = it }
                        SegmentFiles.writeZeros(file, p.offset.toLong(), (last + 1).toLong())
                        file.force()
                    }
                } else {
                    truncatedBytes += maxOf(0, read(f) { BlockHeader.lastNonZero(it, SegmentHeader.SIZE, f.limit) } + 1 - SegmentHeader.SIZE).toLong()
                    io.delete(f.file.path)
                    io.syncDirectory(files.directory)
                }
            }
            kept = if (keepStopSegment) p.segmentId else p.segmentId - 1
            spares = emptyList()
            if (kept == 0) {
                val id = logId ?: SecureRandom().nextLong()
                val fresh = files.create(1, options.segmentSize, id)
                return RecoveredLog(id, listOf(fresh), spares, SegmentHeader.SIZE, table,
                    report(started, 1, truncatedBytes, dropped, corruption))
            }
            tail = if (keepStopSegment) p.offset else dataEnds[kept - 1]
        }

        // Sealed segments are mapped by path when read; their files stay closed (see [probe]).
        val segments = ArrayList<Segment>(kept)
        for (i in 0 until kept - 1) found[i].let { segments.add(Segment.recoveredSealed(it.id, it.size, it.file, it.limit, files.mappings)) }
        val last = found[kept - 1]
        val active = if (tail == SegmentHeader.SIZE && last.size != options.segmentSize) {
            // The active segment is empty and of another size: segmentSize changed between opens. The writer must
            // never roll past an empty segment — recovery reads "an empty segment, then data" as a torn tail — yet a
            // unit checked against today's size may not fit an older, smaller one. So it is replaced, atomically,
            // by a fresh segment of today's size (same id and log id): a crash leaves the old file or the new one,
            // both empty.
            activeFile?.let { opened.remove(it); it.close() }
            files.create(last.id, options.segmentSize, logId!!).also { opened.add(it.file) }
        } else {
            val file = activeFile ?: reopen(last, opened)
            if (file.size() < last.size) SegmentFiles.writeZeros(file, file.size(), last.size.toLong())
            file.force()
            Segment(last.id, last.size, file, files.mappings)
        }
        segments.add(active)
        return RecoveredLog(logId!!, segments, spares, tail, table,
            report(started, segments.size, truncatedBytes, dropped, corruption))
    }

    private fun report(started: Long, segments: Int, truncated: Long, dropped: Long, corruption: String?) =
        RecoveryReport(segments, records, truncated, dropped, corruption, (System.nanoTime() - started) / 1_000_000)

    // ---- one segment ----

    /** The blocks of the group being read, not yet applied; the next sequence of each topic within it. */
    private val pending = ArrayList<Block>()
    private val pendingNext = HashMap<Int, Long>()
    private var pendingNames = 0

    /** A stop at [position]; inside a group, truncation must start at the group's first block. */
    private fun stopAt(position: LogPosition, reason: String, corrupt: Boolean): Stop =
        if (pending.isEmpty()) Stop(position, reason, corrupt)
        else Stop(pending[0].position, "$reason (inside the group at ${pending[0].position})", corrupt, found = position)

    /**
     * Scans the blocks of segment [id]; returns where its data ends and, if it stopped early, why. A group may
     * run on into the next segment: it stays pending.
     */
    private fun scanSegment(id: Int, map: ByteBuffer, limit: Int): Pair<Int, Stop?> {
        val view = map.duplicate()
        var at = SegmentHeader.SIZE
        while (true) {
            if (at + BlockHeader.SIZE > limit || BlockHeader.isZero(view, at)) {
                if (!BlockHeader.allZero(view, at, limit)) return at to stopAt(LogPosition(id, at), "unreadable bytes where a block should start", false)
                return at to null
            }
            val position = LogPosition(id, at)
            val block = readBlock(view, at, limit, position) ?: return at to stopAt(position, lastReason, lastCorrupt)
            pending.add(block)
            pendingNext[block.topicId] = block.firstSeq + block.count
            if (block.topicId == 0) pendingNames += block.count
            if (!block.continued) commitGroup()
            at = block.end
        }
    }

    private var lastReason = ""

    /** Whether the last bad block passed every checksum (so it is no torn write, but corruption or a bug). */
    private var lastCorrupt = false
    private val pendingNameSet = HashSet<String>()

    /** Checks the block at [at] completely; returns it, or null with [lastReason] set. */
    private fun readBlock(view: ByteBuffer, at: Int, limit: Int, position: LogPosition): Block? {
        lastCorrupt = false
        view.limit(view.capacity())
        BlockHeader.check(view, at, position, crc)?.let { lastReason = it; return null }
        val topicId = view.getInt(at + BlockHeader.OFF_TOPIC)
        val firstSeq = view.getLong(at + BlockHeader.OFF_FIRST_SEQ)
        val count = view.getInt(at + BlockHeader.OFF_COUNT)
        val body = view.getInt(at + BlockHeader.OFF_BODY_LENGTH)
        val end = at.toLong() + BlockHeader.SIZE + body
        if (body < 0 || end > limit) { lastReason = "block body runs past the segment"; return null }
        // Topics named by a registry block of this same group are known too.
        val known = topicId == 0 || table.byId(topicId) != null || topicId - table.count in 1..pendingNames
        if (!known) { lastReason = "block of unknown topic $topicId"; return null }
        val expected = pendingNext[topicId] ?: (if (topicId == 0) table.registry else table.byId(topicId))?.reserved ?: 0L
        if (firstSeq != expected) { lastReason = "topic $topicId continues at sequence $firstSeq, expected $expected"; return null }
        var p = at + BlockHeader.SIZE
        for (i in 0 until count) {
            val len = codec.check(view, p, end.toInt(), topicId, firstSeq + i)
            if (len < 0) { lastReason = "record ${firstSeq + i} of topic $topicId fails its checksum"; return null }
            p += RecordFrame.HEADER_SIZE + len
        }
        if (p.toLong() != end) { lastReason = "block body length does not match its records"; return null }
        val names = if (topicId == 0) checkNames(view, at, count) ?: run { lastCorrupt = true; return null } else null
        val continued = view.get(at + BlockHeader.OFF_FLAGS).toInt() and BlockHeader.FLAG_CONTINUED != 0
        return Block(position, topicId, firstSeq, count, end.toInt(), continued, names)
    }

    private val utf8 = Charsets.UTF_8.newDecoder()
        .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT)

    /** The [i]th name of the registry block at [at] of [b], or null if it is not valid UTF-8. */
    private fun names(b: ByteBuffer, at: Int, count: Int): List<String?> {
        val out = ArrayList<String?>(count)
        var p = at + BlockHeader.SIZE
        for (i in 0 until count) {
            val len = b.getInt(p + 4)
            val bytes = ByteArray(len) // bounded: the frame passed its check inside the block
            b.get(p + RecordFrame.HEADER_SIZE, bytes)
            out.add(try { utf8.decode(ByteBuffer.wrap(bytes)).toString() } catch (e: Exception) { null })
            p += RecordFrame.HEADER_SIZE + len
        }
        return out
    }

    /** The names of the registry block at [at], if every one is valid and new; else null, with [lastReason] set. */
    private fun checkNames(view: ByteBuffer, at: Int, count: Int): List<String>? {
        val names = names(view, at, count)
        for (name in names) {
            val problem = when {
                name == null -> "not UTF-8"
                TopicNames.problem(name) != null -> TopicNames.problem(name)
                table[name] != null || name in pendingNameSet -> "registered twice"
                else -> null
            }
            if (problem != null) { lastReason = "topic registry holds an invalid name ($problem)"; return null }
            pendingNameSet.add(name!!)
        }
        return names.map { it!! }
    }

    private fun commitGroup() {
        for (b in pending) {
            if (b.topicId == 0) {
                for (name in b.names!!) table.add(name)
                table.registry.reserved = b.firstSeq + b.count
                table.registry.acked = b.firstSeq + b.count
            } else {
                val topic = table.byId(b.topicId)!!
                topic.index.add(b.firstSeq, b.position)
                topic.reserved = b.firstSeq + b.count
                topic.acked = topic.reserved
            }
            if (b.topicId != 0) records += b.count // registry records name topics; they are not user records
        }
        pending.clear()
        pendingNext.clear()
        pendingNames = 0
        pendingNameSet.clear()
    }

    // ---- after the stop ----

    private class Evidence(val syncedPast: Boolean, val records: Long)

    /**
     * Looks past [p] for blocks that pass their header check where they lie, to count what is dropped and to
     * see whether any says [p] had been synced.
     */
    private fun evidenceAfter(p: LogPosition, found: List<Found>): Evidence {
        var syncedPast = false
        var count = 0L
        for (i in (p.segmentId - 1) until found.size) {
            val f = found[i]
            read(f) { map ->
                val view = map.duplicate()
                var at = if (i == p.segmentId - 1) maxOf(p.offset, SegmentHeader.SIZE) else SegmentHeader.SIZE
                val limit = f.limit - BlockHeader.SIZE
                while (at <= limit) {
                    if ((at and 7) == 0 && at + 8 <= f.limit && view.getLong(at) == 0L) { at += 8; continue }
                    if (view.getInt(at) == BlockHeader.MAGIC && BlockHeader.check(view, at, LogPosition(f.id, at), crc) == null) {
                        if (LogPosition(view.getLong(at + BlockHeader.OFF_SYNCED)) > p) syncedPast = true
                        if (view.getInt(at + BlockHeader.OFF_TOPIC) != 0) count += view.getInt(at + BlockHeader.OFF_COUNT)
                    }
                    at++
                }
            }
        }
        return Evidence(syncedPast, count)
    }
}
