package dev.kwal.engine.recovery

import dev.kwal.CorruptionPolicy
import dev.kwal.RecoveryReport
import dev.kwal.WalCorruptedException
import dev.kwal.WalOptions
import dev.kwal.engine.format.LogPosition
import dev.kwal.engine.format.SegmentHeader
import dev.kwal.engine.io.FileIo
import dev.kwal.engine.io.LogFile
import dev.kwal.engine.storage.ManifestStore
import dev.kwal.engine.storage.Segment
import dev.kwal.engine.storage.SegmentFiles
import dev.kwal.engine.storage.SummaryStore
import dev.kwal.engine.storage.TopicTable
import dev.kwal.engine.summary.SummaryResume
import org.slf4j.LoggerFactory
import java.security.SecureRandom

/**
 * The open-time recovery of a log: it checks every byte that was written, rebuilds the topic registry and each
 * topic's block index from what it finds, cuts off what is not a sound continuation of the log, and hands the
 * writer a consistent log ([RecoveredLog]). `FORMAT.md` ("Recovery") specifies it; it runs in phases:
 *
 * 1. **list** ([listSegmentIds]): one listing of the directory, with each file's size, serves the whole open (the
 *    manifest, the segments, the summaries); delete temporary segment files, collect the segment ids in order. No segment:
 *    create segment 1 of a new log, and stop.
 * 2. **summaries** ([SummaryChain]): unless [WalOptions.verifyOnOpen], the segments' summaries, in order, as long as
 *    they chain, stand for the segments they cover (each summary read in one read; the segment files it covers not
 *    opened at all, their sizes the listing's: [ProbedSegment.known]); the rest of the log (the tail) is probed and scanned. A summary
 *    that disagrees with the log so far makes the open start again without summaries. Summaries past the chain are
 *    deleted (durably) before anything is truncated; without a chain, all of them.
 * 3. **probe** ([ProbedSegment.probe]): open each segment of the tail, sync it, decode its header, close it again.
 * 4. **scan** ([LogScan]): every block of the tail, in order, fully checked ([BlockChecker]) and kept in
 *    whole groups ([PendingGroup]), up to the end of the log ([ScanResult.Clean]) or the first position P that is
 *    no sound continuation ([ScanResult.Stopped]).
 * 5. **classify** ([classify]): a stop is a torn tail or corruption ([Verdict]).
 * 6. **truncate** ([Truncation]): remove everything from P on.
 * 7. **finish** ([Handover]): the segments kept become sealed ones and the active one, and, if nothing was
 *    truncated, the empty segments after the active one become spares.
 *
 * The rules:
 * - a group (every block up to and including one without the CONTINUED flag) is kept whole or not at all, so a
 *   stop inside a group moves P back to the group's first block;
 * - a **torn tail** — bytes of groups that were being written when the process or machine stopped — is truncated
 *   (zeroed from P and synced; later segments deleted) and reported. P is a torn tail when no sound block after it
 *   says, by its synced-through position, that P had been made durable;
 * - **corruption** — P lies in bytes a later block says were durable, or a segment header is bad, or a segment is
 *   missing, or a registry block holds invalid names — fails the open with [WalCorruptedException] (naming the
 *   file and offset of the bad place) under [CorruptionPolicy.FAIL], and is truncated like a torn tail under
 *   [CorruptionPolicy.TRUNCATE];
 * - truncation deletes later segments newest first, each deletion durable before the next, so that a crash during
 *   recovery leaves an unbroken run of segments, never a gap that would read as corruption.
 *
 * Thread-safety: none needed. [run] is called once, on the thread opening the log (holding its lock), before any
 * other thread sees the log; an instance is not reused.
 */
internal class Recovery(
    private val options: WalOptions,
    private val io: FileIo,
    private val files: SegmentFiles,
    /** Whether segment summaries may stand for segments (see [SummaryChain]); false: every segment is scanned. */
    private val useSummaries: Boolean = !options.verifyOnOpen,
) {
    private val log = LoggerFactory.getLogger(Recovery::class.java)
    private val table = TopicTable()

    /** The newest timestamp of the groups the scan kept: the writer goes on from there ([RecoveredLog]). */
    private var newestTimestamp = Long.MIN_VALUE

    /**
     * Recovers the log in [files]' directory. Throws [WalCorruptedException] for corruption under
     * [CorruptionPolicy.FAIL], and what the file system throws; either way, no file it opened is left open.
     */
    fun run(): RecoveredLog {
        val started = System.nanoTime()
        // One listing of the directory serves the whole open: nothing else changes it while the lock is held.
        val listing = io.list(files.directory)
        val manifest = ManifestStore(io, files).read(listing)
        start = ScanStart(manifest?.firstSegment ?: 1, manifest)
        start.seed(table)
        val listed = listSegmentIds(io, files.directory, listing) // 1. list
        val ids = listed.filter { it >= start.firstSegment }
        if (ids.isEmpty()) {
            SummaryStore(io, files).list(listing).let { (sums, tmps) ->
                untrusted = sums.keys.toList()
                temporaries = tmps
            }
            if (manifest == null) {
                dropUntrusted()
                return freshLog(logId = null) { report(started, it, records = 0) }
            }
            // The manifest's first segment is gone: what it held, and everything after, is lost.
            val missing = "segment file ${SegmentFiles.nameOf(start.firstSegment)} is missing"
            if (options.corruptionPolicy == CorruptionPolicy.FAIL) {
                throw WalCorruptedException(missing, files.pathOf(start.firstSegment), 0)
            }
            log.warn("kwal: {}; starting the log again there, as CorruptionPolicy.TRUNCATE allows", missing)
            dropUntrusted()
            assemble(emptyList())
            deleteBelowFirst(listed)
            return freshLog(manifest.logId) { report(started, it, records = 0, corruption = missing) }
        }
        val summaries = SummaryStore(io, files)
        val known = HashMap<Int, ProbedSegment>()
        val segmentSizes = HashMap<Int, Long>()
        for (f in listing) SegmentFiles.idOf(f.name)?.let { segmentSizes[it] = f.size }
        fun knownSegment(id: Int): ProbedSegment = known[id]
            ?: ProbedSegment.known(files, id, segmentSizes.getValue(id)).also { known[id] = it }
        val chainer = SummaryChain(summaries, start)
        val (present, temporary) = summaries.list(listing)
        val chain = if (useSummaries) {
            chainer.load(ids, present) { id -> knownSegment(id).fileSize }
        } else {
            emptyList()
        }
        // Summaries past the chain are not to be trusted: deleted, durably, before anything is truncated or written.
        val lastSummarized = chain.lastOrNull()?.segmentId ?: Int.MIN_VALUE
        untrusted = present.keys.filter { it > lastSummarized || it < start.firstSegment }
        temporaries = temporary
        val relocated = try {
            chainer.apply(chain, table)
        } catch (e: SummaryChain.Mismatch) {
            log.warn("kwal: segment summaries disagree with the log ({}); reading every segment", e.message)
            return Recovery(options, io, files, useSummaries = false).run()
        }
        val tailStart = chain.lastOrNull()?.to ?: LogPosition(start.firstSegment, SegmentHeader.SIZE)
        resume = SummaryResume(tailStart, chain.lastOrNull { it.segmentId == tailStart.segmentId })
        val opened = ArrayList<LogFile>()
        try {
            val tailAt = ids.indexOf(tailStart.segmentId).coerceAtLeast(0)
            val logId = chain.lastOrNull()?.logId ?: manifest?.logId
            val sizes = chain.associate { it.segmentId to it.segmentSize }
            val head = ids.subList(0, tailAt).map { id -> knownSegment(id).withHeader(sizes.getValue(id), logId!!) }
            val tail = ids.subList(tailAt, ids.size).map { ProbedSegment.probe(files, it, options.segmentSize) } // 3.
            val scanner = LogScan(table, start)
            val scanned = scanner.scan(tail, tailStart.segmentId, tailStart.offset, logId) // 4. scan
            newestTimestamp = maxOf(scanner.newestTimestamp, chain.maxOfOrNull { it.newestTimestamp } ?: Long.MIN_VALUE)
            table.registry.reserved = maxOf(table.registry.reserved, table.count.toLong())
            table.registry.acked = table.registry.reserved
            assemble(relocated + scanner.relocated)
            segmentsScanned = tail.size
            val segments = head + tail
            val headEnds = head.map { it.limit }
            val summarized = chain.sumOf { it.records }
            val recovered = when (scanned) {
                is ScanResult.Clean ->
                    continueLog(
                        ScanResult.Clean(scanned.logId, headEnds + scanned.dataEnds, summarized + scanned.records),
                        segments,
                        opened,
                        started,
                    )

                is ScanResult.Stopped ->
                    truncateAndContinue(
                        ScanResult.Stopped(
                            scanned.stop,
                            scanned.logId ?: logId,
                            headEnds + scanned.dataEnds,
                            summarized + scanned.records,
                        ),
                        segments,
                        opened,
                        started,
                    )
            }
            deleteBelowFirst(listed)
            return recovered
        } catch (e: Throwable) {
            opened.forEach { runCatching { it.close() } }
            throw e
        }
    }

    /** Summaries not to be trusted: [dropUntrusted] deletes them before the open changes anything else. */
    private var untrusted: List<Int> = emptyList()

    /** Deletes the [untrusted] summaries, durably: an open that refuses the log changes nothing, one that goes on this. */
    private fun dropUntrusted() {
        SummaryStore(io, files).delete(untrusted, temporaries)
        untrusted = emptyList()
        temporaries = emptyList()
    }

    /** Summaries being written when the log last stopped: deleted with [untrusted]. */
    private var temporaries: List<Int> = emptyList()

    /** Where the summary builder goes on (see [SummaryResume]): where the summaries end, or the log's start. */
    private lateinit var resume: SummaryResume

    /** How many segments the scan read. */
    private var segmentsScanned = 0

    /** Where the scan starts; what the manifest, if any, says. */
    private lateinit var start: ScanStart

    /**
     * Builds the topics' indexes from the blocks kept ([IndexAssembly]); a record that should be there and is not is
     * corruption: it fails the open under [CorruptionPolicy.FAIL], and is cut off under [CorruptionPolicy.TRUNCATE].
     */
    private fun assemble(relocated: List<Block>) {
        val repair = options.corruptionPolicy == CorruptionPolicy.TRUNCATE
        val assembly = IndexAssembly(table, start)
        assembly.assemble(relocated, repair)
        if (assembly.problems.isEmpty()) return
        val what = assembly.problems.joinToString("; ")
        if (!repair) {
            throw WalCorruptedException(
                "the log lacks records it must hold: $what; open with CorruptionPolicy.TRUNCATE to drop them",
                files.pathOf(start.firstSegment),
                0,
            )
        }
        log.warn("kwal: the log lacks records it must hold: {}; dropped, as CorruptionPolicy.TRUNCATE allows", what)
        lacking = what
    }

    /** What [assemble] found missing and dropped, for the report. */
    private var lacking: String? = null

    /**
     * Deletes the segment files below the manifest's first segment that a crash left behind (retention deletes them
     * right after writing the manifest), oldest first, and syncs the directory once.
     */
    private fun deleteBelowFirst(listed: List<Int>) {
        val below = listed.filter { it < start.firstSegment }
        for (id in below) io.delete(files.pathOf(id))
        if (below.isNotEmpty()) io.syncDirectory(files.directory)
    }

    /**
     * No stop: the last segment holding data becomes the active one (segment 1 if none does), the log continuing at
     * the end of its data; the empty segments after it are spares.
     */
    private fun continueLog(
        scan: ScanResult.Clean,
        segments: List<ProbedSegment>,
        opened: MutableList<LogFile>,
        started: Long,
    ): RecoveredLog {
        dropUntrusted()
        val active = scan.dataEnds.indexOfLast { it > SegmentHeader.SIZE }.coerceAtLeast(0)
        val handover = Handover(options.segmentSize, io, files, opened)
        val spares = handover.spares(segments.subList(active + 1, segments.size)) // 6. finish
        val tail = scan.dataEnds[active]
        val kept = handover.segments(segments.subList(0, active + 1), tail, zeroed = null, scan.logId)
        val report = report(started, kept.size, scan.records)
        return recoveredLog(scan.logId, kept, spares, tail, report)
    }

    /** A stop: classified, the policy applied, truncated at P; the log continues at P (or before P's segment). */
    private fun truncateAndContinue(
        scan: ScanResult.Stopped,
        segments: List<ProbedSegment>,
        opened: MutableList<LogFile>,
        started: Long,
    ): RecoveredLog {
        val stop = scan.stop
        val verdict = classify(stop, segments, start.firstSegment) // 4. classify
        applyPolicy(stop, verdict)
        dropUntrusted()
        val cut = Truncation(io, files, opened).truncate(stop.position, segments, start.firstSegment) // 5. truncate
        val corruption = (verdict as? Verdict.Corruption)?.description
        fun reportOf(segments: Int) = report(started, segments, scan.records, cut.bytes, verdict.dropped, corruption)
        if (cut.kept == 0) return freshLog(scan.logId, ::reportOf)
        val logId = checkNotNull(scan.logId) { "segment 1 is kept, yet its log id was not read" }
        // Where each kept segment's data ends now. The active one is the last holding data: empty segments kept
        // after it (P at the header of a segment that followed empty ones, or just past a header) must not stay
        // behind it as sealed ones, or the next open would read "an empty segment, then data". They go the way of
        // the spares of a clean log.
        val ends = List(cut.kept) { i ->
            if (cut.keptStopSegment &&
                i == cut.kept - 1
            ) {
                stop.position.offset
            } else {
                scan.dataEnds[i]
            }
        }
        val active = ends.indexOfLast { it > SegmentHeader.SIZE }.coerceAtLeast(0)
        val handover = Handover(options.segmentSize, io, files, opened) // 6. finish
        var zeroed = cut.zeroed
        if (active < cut.kept - 1 && zeroed != null) {
            opened.remove(zeroed) // the stop segment, emptied: a spare now, reopened as such
            zeroed.close()
            zeroed = null
        }
        val spares = handover.spares(segments.subList(active + 1, cut.kept))
        val tail = ends[active]
        val kept = handover.segments(segments.subList(0, active + 1), tail, zeroed, logId)
        return recoveredLog(logId, kept, spares, tail, reportOf(kept.size))
    }

    /** Corruption fails the open under [CorruptionPolicy.FAIL]; what is to be truncated is logged. */
    private fun applyPolicy(stop: Stop, verdict: Verdict) {
        when (verdict) {
            is Verdict.TornTail -> log.info("kwal: truncating a torn tail at {} ({})", stop.position, stop.reason)

            is Verdict.Corruption -> {
                if (options.corruptionPolicy == CorruptionPolicy.FAIL) throw verdict.failure(files)
                val message = "kwal: truncating the log at {} ({}) as CorruptionPolicy.TRUNCATE allows"
                log.warn(message, stop.position, stop.reason)
            }
        }
    }

    /** A log of one empty segment 1 of today's size, with [logId] or else a new one: an empty or emptied log. */
    private inline fun freshLog(logId: Long?, report: (segments: Int) -> RecoveryReport): RecoveredLog {
        val id = logId ?: SecureRandom().nextLong()
        val first = files.create(start.firstSegment, options.segmentSize, id)
        return recoveredLog(id, listOf(first), emptyList(), SegmentHeader.SIZE, report(1))
    }

    private fun recoveredLog(
        logId: Long,
        kept: List<Segment>,
        spares: List<Segment>,
        tail: Int,
        report: RecoveryReport,
    ) = RecoveredLog(
        logId,
        kept,
        spares,
        tail,
        table,
        report,
        newestTimestamp,
        start.manifest?.consumers.orEmpty(),
        if (::resume.isInitialized) {
            resume
        } else {
            SummaryResume(
                LogPosition(start.firstSegment, SegmentHeader.SIZE),
                null,
            )
        },
    )

    private fun report(
        started: Long,
        segments: Int,
        records: Long,
        truncated: Long = 0,
        dropped: Long = 0,
        corruption: String? = null,
    ) = RecoveryReport(
        segments,
        records,
        truncated,
        dropped,
        listOfNotNull(corruption, lacking).joinToString("; ").ifEmpty { null },
        (System.nanoTime() - started) / 1_000_000,
        segmentsScanned,
    )
}
