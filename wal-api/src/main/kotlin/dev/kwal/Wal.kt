package dev.kwal

import kotlinx.coroutines.flow.Flow
import java.nio.file.Path
import java.time.Instant

/**
 * A durable, multi-topic write-ahead log.
 *
 * A `Wal` stores records in named *topics*. Each topic is an append-only sequence whose records are
 * numbered densely from 0: the first record appended to a topic gets sequence 0, the next 1, and so on,
 * with no gaps and no duplicates, across crashes and reopens.
 *
 * ### Durability
 * [append] and [appendBatch] suspend until the record is as durable as the [Durability] in force for
 * that call says (by default [WalOptions.durability], [Durability.Sync]: written and `fdatasync`ed).
 * Under [Durability.Sync] a record that has been acknowledged survives a process crash and a power
 * loss; a record whose call failed or was cancelled may or may not survive, but never partially.
 *
 * ### Visibility
 * A record becomes visible to [replay], [follow], [read] and [seek] only after it is acknowledged, and records of
 * one topic become visible in sequence order: a reader never sees sequence *n + 1* without *n*.
 *
 * ### Time
 * Every record carries the time its group was written ([Record.timestampMillis]). The log keeps these timestamps
 * non-decreasing in log order, across reopens, even if the wall clock steps back (a group is stamped with the later
 * of the clock and the previous group's time), so [seek] can find a time by binary search.
 *
 * ### Thread-safety
 * Every method is safe to call from any thread or coroutine concurrently. Calls that one caller (a thread or a
 * coroutine) makes one after another keep their order, whether or not it waited for the earlier ones (a coroutine
 * that starts appends undispatched, a Java thread using [AsyncWal]): a later append to a topic gets a later
 * sequence. Concurrent appends to one topic from different callers are ordered in some order the log chooses, and
 * each caller receives its own sequence number.
 *
 * A caller's thread is never made to run the log's work beyond its own call, and a caller's interrupt affects only
 * its own call: the log's files are shared, and no interrupt closes them.
 *
 * ### Memory
 * Appends waiting for the log's writer hold at most [WalOptions.maxQueuedBytes]; callers beyond that bound stay
 * suspended, in order, until there is room. No thread is blocked by the wait.
 *
 * ### Cancellation
 * Cancelling a coroutine suspended in [append] or [appendBatch] resumes it with a
 * [kotlinx.coroutines.CancellationException] at once. Its record (or batch) is then either committed in
 * full — readable and durable like any other — or not written at all; which one is not reported. A
 * record is never half-written.
 *
 * ### What it deliberately does not do
 * It deletes records only as [truncateBefore] and retention ([WalOptions.retention], [applyRetention]) say. It
 * does not index payloads or deduplicate retries: an append retried after an error or cancellation may store the
 * payload twice under two sequence numbers.
 *
 * Obtain an instance from the engine (`dev.kwal.engine.Kwal.open` in `wal-impl`). Java callers wrap it in
 * [AsyncWal] for a [java.util.concurrent.CompletableFuture]-based API.
 */
public interface Wal : AutoCloseable {

    /** The directory this log lives in. */
    public val directory: Path

    /** What recovery found and did when this log was opened. */
    public val recovery: RecoveryReport

    /**
     * Appends [payload] to [topic], creating the topic on first use, and returns the record's sequence
     * number once it is durable under [durability] (the log's default when `null`).
     *
     * The log keeps a reference to [payload] until this call returns: do not modify it meanwhile.
     *
     * @throws InvalidTopicException if [topic] is not a valid name (see [TopicNames]); nothing is written.
     * @throws RecordTooLargeException if [payload] is larger than [WalOptions.maxRecordSize]; nothing is written.
     * @throws WalClosedException if the log is closed or closes before the record is written.
     * @throws WalFailedException if the log has stopped after an unrecoverable I/O failure.
     * @throws WalException for an I/O failure of this record's write; the record is not stored.
     */
    public suspend fun append(topic: String, payload: ByteArray, durability: Durability? = null): Long

    /**
     * Appends [payloads] to [topic] as one unit and returns the range of their sequence numbers.
     *
     * The batch is all-or-nothing: after any failure or crash either every record of it is readable or
     * none is. Its sequence numbers are consecutive; no other record of the topic lands between them.
     * An empty batch writes nothing and returns an empty range starting at the topic's next sequence.
     *
     * @throws RecordTooLargeException if any payload exceeds [WalOptions.maxRecordSize] or the batch as a
     *   whole does not fit in one segment; nothing is written.
     * @throws InvalidTopicException, WalClosedException, WalFailedException, WalException as [append].
     */
    public suspend fun appendBatch(topic: String, payloads: List<ByteArray>, durability: Durability? = null): LongRange

    /**
     * A cold flow of the acknowledged records of [topic] whose sequence is at least [from], in sequence
     * order, ending with the last record acknowledged when collection started. Records below [firstSequence]
     * (truncated, see [truncateBefore]) are not returned: from below it, the flow starts at it.
     *
     * Each collection reads the log afresh. Every record's checksum is verified as it is read; a record
     * that fails its check ends the flow with [WalCorruptedException] and is never emitted. An unknown
     * topic, or [from] past the end, gives an empty flow. It is safe to collect concurrently with appends and
     * with other collectors.
     *
     * **Context.** The flow reads in the collector's context, with no hop to another thread, through a read-only
     * memory map of each segment (page faults), the active one included: it never reads past what was
     * acknowledged. That is fast when the data is in the page cache; for a large replay from a cold disk, collect
     * in `Dispatchers.IO` or apply `flowOn(Dispatchers.IO)`. An interrupt of the collecting thread does not disturb
     * the read (nor anything else the log shares).
     *
     * @throws InvalidTopicException (when collected) if [topic] is not a valid name.
     * @throws WalCorruptedException (when collected) if a record or block fails its check.
     * @throws WalClosedException (when collected) if the log is closed before collection starts. A collection
     *   under way when the log closes runs to its end, mapping the segments it has not reached yet from their
     *   files — if one cannot be mapped (deleted meanwhile, say), it ends with [WalClosedException] there.
     * @throws WalException (when collected) if a segment cannot be mapped while the log is open.
     */
    public fun replay(topic: String, from: Long = 0): Flow<Record>

    /**
     * Like [replay], but never completes on its own: after the last acknowledged record it waits for new ones and
     * emits them as they are acknowledged. Cancel the collector to stop. When the log closes, the flow
     * completes normally after the last record that was acknowledged. When the log stops after a failure, the
     * flow ends with the [WalFailedException] every other call gets, after the records acknowledged before it.
     * A follower waiting on one topic is woken only by that topic's acknowledgements (until the topic exists, by
     * any new topic's), and by the log's closing or failure.
     */
    public fun follow(topic: String, from: Long = 0): Flow<Record>

    /**
     * [follow] from where [consumer] left off: from its [committed] position in [topic], or from the start if it has
     * none. Together with [commit] after each record (or batch of records) is processed, this gives at-least-once
     * delivery across restarts: a record processed but not yet committed when the process stopped is delivered
     * again. The position is read when collection starts.
     *
     * @throws IllegalArgumentException (when collected) if [consumer] is not a valid name (the rules of
     *   [TopicNames]).
     */
    public fun follow(topic: String, consumer: String): Flow<Record>

    /**
     * Like [replay], from the first record whose [Record.timestampMillis] is at or after [from] (rounded up to the
     * millisecond): the same as `replay(topic, seek(topic, ms))`, except that, should records be acknowledged
     * between the seek and the read, none stamped before [from] is emitted either. Empty if there is none.
     * Throws (when collected) what [replay] and [seek] throw.
     */
    public fun replay(topic: String, from: Instant): Flow<Record>

    /**
     * Like [follow], from the first record whose [Record.timestampMillis] is at or after [from] (rounded up to the
     * millisecond), found by [seek] when collection starts; records acknowledged later that are stamped before [from]
     * (possible when [from] lies in the future) are skipped, so every record emitted is stamped at or after it.
     * Throws (when collected) what [follow] and [seek] throw.
     */
    public fun follow(topic: String, from: Instant): Flow<Record>

    /**
     * Calls [action] with a [RecordView] of each acknowledged record of [topic] whose sequence is at least [from], in
     * sequence order, up to the last record acknowledged when the call started, and returns after the last. The
     * records are those [replay] emits, with the same topic, sequence, timestamp and payload; the difference is that
     * nothing is allocated per record: each view reads its record in place, in the segment's mapping (or the reader's
     * buffer of a decompressed block), and one view object serves the whole read.
     *
     * **Validity.** A view is valid only while [action] runs on it: the next call gets the same object showing the
     * next record, and once this call has ended every member of it throws [IllegalStateException]. Copy what must
     * outlive the call ([RecordView.toRecord], [RecordView.copyPayloadTo]); never let a view escape [action]. See
     * [RecordView].
     *
     * **Checks.** Under [RecordChecks.ALL] (the default) every record's checksum is verified before [action] sees it,
     * as [replay] does: a record that fails ends the call with [WalCorruptedException], and [action] never sees it
     * (it has seen the records before it). [RecordChecks.SKIP_SEALED] skips the records' own checksums in sealed
     * segments (block headers and frame bounds are still checked); see there what that gives up.
     *
     * **Context.** [action] runs on the calling thread, one record after another; the read does not suspend (it
     * reads through memory maps: a page fault blocks the thread, so over a cold log call it in `Dispatchers.IO`).
     * [action] must not suspend either: to hand records to a coroutine, copy them. [action] may call the log again
     * (append, read, replay, even close it: the read then runs to its end, as [replay] does).
     *
     * **Cancellation.** Cancelling the calling coroutine stops the read at the next block or within 1,024 records,
     * with [kotlinx.coroutines.CancellationException].
     *
     * **Errors.** An exception thrown by [action] ends the read and is rethrown as is; the read releases everything it
     * held (mappings) first, as it does on every other end.
     *
     * @throws InvalidTopicException if [topic] is not a valid name.
     * @throws WalCorruptedException if a record or block fails its check.
     * @throws WalClosedException as [replay] (when collected).
     * @throws WalException if a segment cannot be mapped while the log is open.
     */
    public suspend fun replayViews(
        topic: String,
        from: Long = 0,
        checks: RecordChecks = RecordChecks.ALL,
        action: (RecordView) -> Unit,
    )

    /**
     * Like [replayViews], but never returns on its own: after the last acknowledged record it suspends until new ones
     * are acknowledged and calls [action] with each, as [follow] emits them. It returns when the log closes (after
     * the last record acknowledged), and throws the [WalFailedException] every other call gets if the log stops after
     * a failure. Cancel the calling coroutine to stop following. [action] runs on the calling coroutine's thread (the
     * thread it resumes on after each wait), never while the coroutine is suspended; the views' validity, checks and
     * errors are those of [replayViews].
     */
    public suspend fun followViews(
        topic: String,
        from: Long = 0,
        checks: RecordChecks = RecordChecks.ALL,
        action: (RecordView) -> Unit,
    )

    /**
     * The acknowledged record [sequence] of [topic], checked, or null if there is none: [sequence] is at or past
     * [nextSequence] (not acknowledged yet) or below [firstSequence] (truncated), or [topic] does not exist.
     *
     * Cost: one binary search of the topic's in-memory block index and the read of at most one block — the one
     * holding the record, whose frames before it are checked but not copied — however long the topic. The record's
     * checksum is verified; the record returned owns its payload.
     *
     * **Context.** Reads on the calling thread, through the segment's read-only memory map, as [replay] does: it
     * never suspends, but a page fault blocks the thread while the block is read from disk. From a coroutine over a
     * cold log, call it in `Dispatchers.IO`. An interrupt of the calling thread does not disturb it. Thread-safe:
     * any number of reads may run concurrently with each other and with appends. Cancellation: it does not suspend,
     * so it runs to its end once called.
     *
     * @throws IllegalArgumentException if [sequence] is negative (no record has one).
     * @throws InvalidTopicException if [topic] is not a valid name.
     * @throws WalCorruptedException if the block or the record fails its check.
     * @throws WalClosedException if the log is closed.
     * @throws WalException if the segment cannot be mapped.
     */
    public suspend fun read(topic: String, sequence: Long): Record?

    /**
     * A page of [topic]: its acknowledged records from [from], in sequence order, at most [maxRecords] of them and,
     * after the first, only while their payloads total at most [maxBytes]. The first record is returned even if its
     * payload alone exceeds [maxBytes], so that a reader paging through a topic (`from = last.sequence + 1`) always
     * makes progress. From below [firstSequence] (truncated records), the page starts at it. Empty if [from] is at or past [nextSequence] or [topic] does not exist. A shorter page than
     * [maxRecords] does not mean the end: that is reached when the page is empty, or when `from` meets
     * [nextSequence].
     *
     * Cost: one binary search of the topic's block index, then the blocks the page spans, read in order (the first
     * from the frame of [from] on); never the topic from its start. Every record returned is checked and owns its
     * payload. Context, thread-safety and cancellation as [read] (the whole page is read on the calling thread).
     *
     * @throws IllegalArgumentException if [from] is negative, or [maxRecords] or [maxBytes] is not positive.
     * @throws InvalidTopicException, WalCorruptedException, WalClosedException, WalException as [read].
     */
    public suspend fun read(topic: String, from: Long, maxRecords: Int, maxBytes: Int = Int.MAX_VALUE): List<Record>

    /**
     * The sequence of the first acknowledged record of [topic] whose [Record.timestampMillis] is at or after
     * [timestampMillis]; [nextSequence] if there is none (every record is older, the topic is empty or does not
     * exist). Any value is accepted: one before the first record gives its sequence ([firstSequence]: never a
     * truncated record), one after the last gives [nextSequence]. Timestamps are non-decreasing in log order (see "Time" above), so every record from the one
     * returned on is stamped at or after [timestampMillis], and every record before it before.
     *
     * Cost: a binary search over the topic's blocks, reading one block header per step (about log2 of the topic's
     * block count), never a scan; every header read is checked.
     *
     * Context, thread-safety and cancellation as [read].
     *
     * @throws InvalidTopicException, WalCorruptedException (a block header fails its check), WalClosedException,
     *   WalException as [read].
     */
    public suspend fun seek(topic: String, timestampMillis: Long): Long

    /** The names of all topics that have at least one acknowledged record, in no particular order. */
    public fun topics(): Set<String>

    /**
     * The number of acknowledged records of [topic], which is also the sequence the next acknowledged
     * append will get if no other append overtakes it; 0 for a topic that does not exist.
     */
    public fun nextSequence(topic: String): Long

    /**
     * The first readable sequence of [topic]: 0, or the highest sequence given to [truncateBefore]; 0 for a topic
     * that does not exist. [replay] and [follow] from below it start at it.
     */
    public fun firstSequence(topic: String): Long

    /**
     * Truncates [topic] before [sequence]: records below it are no longer readable. [firstSequence] reports the new
     * first sequence; [replay] and [follow] from below it start at it (a collection already under way may still
     * return records it had reached). Sequence numbers are not reused: the next append still gets [nextSequence].
     *
     * Durable and crash-safe like an append: it is written as a record of the log's own control topic through group
     * commit, with the log's default durability, and once this returns the truncation survives whatever that
     * durability promises. A [sequence] at or below the first sequence already in force changes nothing and writes
     * nothing. Truncating never makes [sequence] higher than [nextSequence].
     *
     * Space comes back later, in whole segment files, when retention next runs ([applyRetention]).
     *
     * @throws IllegalArgumentException if [sequence] is negative or above [nextSequence].
     * @throws InvalidTopicException if [topic] is not a valid name.
     * @throws WalClosedException if the log is closed.
     * @throws WalFailedException if the log has stopped after a failure.
     */
    public suspend fun truncateBefore(topic: String, sequence: Long)

    /**
     * Applies retention now, and returns what it did; it also runs in the background every
     * [WalOptions.retentionIntervalMillis]. One application at a time: a call waits for one under way.
     *
     * 1. Each topic is truncated ([truncateBefore]) as its [Retention] says ([WalOptions.retentionOf]) — but never
     *    past a registered consumer's committed position in it, unless [WalOptions.retentionOverridesConsumers].
     * 2. If the oldest segments hold little that is live (see [WalOptions.compactionThreshold]), the blocks of live
     *    records in them are copied forward, to the end of the log, with their sequences, timestamps and checksums.
     * 3. Everything so far is synced; the log's new start is written durably (a manifest file naming the first
     *    segment kept, the topic names, and the consumer positions so far); then every segment file before the
     *    first that holds a live record is deleted, oldest first, and the directory synced. The active segment is
     *    never deleted.
     *
     * Crash-safe at every step: a crash leaves the log as before the step or after it, and the next open finishes a
     * deletion under way. Reads under way go on: a replay or follow that reaches a deleted segment's records skips
     * to the topic's first sequence (those records were truncated) or reads their copies.
     *
     * @throws WalClosedException if the log is closed.
     * @throws WalFailedException if the log has stopped after a failure.
     * @throws WalException if a file could not be written or deleted; nothing acknowledged is lost, and the next
     *   application tries again.
     */
    public suspend fun applyRetention(): RetentionReport

    /**
     * Records [consumer]'s [position] in [topic]: the first sequence it has not processed yet (so, after processing
     * record `n`, commit `n + 1`). Durable and crash-safe like an append, with the log's default durability: one
     * record of the log's control topic in a group commit, no sync of its own. Positions survive reopening.
     * A position may move backwards (a consumer re-reading); the last commit wins, in the log's order.
     *
     * @throws IllegalArgumentException if [consumer] is not a valid name (the rules of [TopicNames]) or [position]
     *   is outside `0..nextSequence(topic)`.
     * @throws InvalidTopicException if [topic] is not a valid name.
     * @throws WalClosedException if the log is closed.
     * @throws WalFailedException if the log has stopped after a failure.
     */
    public suspend fun commit(consumer: String, topic: String, position: Long)

    /**
     * [consumer]'s last committed position in [topic] (see [commit]), or null if it has committed none there.
     *
     * @throws IllegalArgumentException if [consumer] is not a valid name.
     * @throws InvalidTopicException if [topic] is not a valid name.
     */
    public fun committed(consumer: String, topic: String): Long?

    /** The consumers that have committed at least one position (and were not deleted since). */
    public fun consumers(): Set<String>

    /**
     * Forgets every position of [consumer], durably (like [commit]). Nothing if it has none.
     *
     * @throws IllegalArgumentException if [consumer] is not a valid name.
     * @throws WalClosedException if the log is closed.
     * @throws WalFailedException if the log has stopped after a failure.
     */
    public suspend fun deleteConsumer(consumer: String)

    /**
     * Suspends until every record acknowledged before this call is durable on disk, whatever the
     * durability it was appended with.
     *
     * @throws WalClosedException if the log is closed.
     * @throws WalFailedException if the sync fails; the log then stops (see [WalFailedException]).
     */
    public suspend fun sync()

    /**
     * Closes the log: refuses new appends and [sync] calls, commits and syncs those made before (whatever their
     * durability), completes every waiting caller (with its result, or with [WalClosedException] if its call came
     * too late), ends [follow] flows after what was acknowledged, closes the log's files and releases the directory
     * lock. Collections under way run to their end (see [replay]); once they have, the log holds no file
     * and no memory mapping.
     *
     * Blocks the calling thread until that is done, collections under way excepted; an interrupt does not cut it
     * short (the thread's interrupt status is kept). Called from one of the log's own threads (user code resumed
     * there, say by `Dispatchers.Unconfined`), it returns at once and the close completes on another thread.
     * Idempotent: a second call waits for the first to complete.
     */
    override fun close()
}
