package dev.kwal

import java.nio.file.Path
import java.nio.file.attribute.PosixFilePermission
import java.nio.file.attribute.PosixFilePermission.GROUP_EXECUTE
import java.nio.file.attribute.PosixFilePermission.GROUP_READ
import java.nio.file.attribute.PosixFilePermission.OTHERS_EXECUTE
import java.nio.file.attribute.PosixFilePermission.OTHERS_READ
import java.nio.file.attribute.PosixFilePermission.OWNER_EXECUTE
import java.nio.file.attribute.PosixFilePermission.OWNER_READ
import java.nio.file.attribute.PosixFilePermission.OWNER_WRITE
import java.nio.file.attribute.PosixFilePermissions
import java.util.Collections
import java.util.EnumSet

/**
 * How to open a [Wal]. Immutable; every size is in bytes.
 *
 * From Kotlin, use named arguments: `WalOptions(dir, durability = Durability.None)`. From Java, use
 * [builder]: `WalOptions.builder(dir).segmentSize(128 << 20).build()`. Only [directory] is required;
 * the defaults suit a service appending small records from many coroutines.
 *
 * @property directory where the log's files live. Created if missing. One [Wal] at a time per directory.
 * @property segmentSize the size of each segment file, pre-written with zeros when created; the log
 *   grows one segment at a time. 64 KiB to 1 GiB; default 64 MiB. May change between opens.
 * @property blockSize the largest block: the run of one topic's records written together, which is
 *   also the unit that replay reads and recovery verifies at once. 4 KiB up to [segmentSize] less 4 KiB;
 *   at least [maxRecordSize] + [RECORD_OVERHEAD]. Default 4 MiB (clamped to the segment).
 * @property maxRecordSize the largest payload [Wal.append] accepts. Default 1 MiB.
 * @property maxGroupBytes how many payload bytes one group commit gathers at most before it writes;
 *   larger groups mean fewer syncs under load. At least [maxRecordSize]. Default 4 MiB.
 * @property durability when appends are acknowledged unless a call says otherwise. Default [Durability.Sync].
 * @property corruptionPolicy what recovery does with corruption in synced data. Default [CorruptionPolicy.FAIL].
 * @property maxQueuedBytes how many bytes of appends may wait for the log's writer: their payloads plus about
 *   256 bytes per call. Past it, callers of [Wal.append] and [Wal.appendBatch] stay suspended (no thread is
 *   blocked) until the writer makes room, and then go on in the order they called; a call larger than the bound
 *   waits until nothing else is queued. This bounds the memory a burst of appends makes the log hold. Default
 *   64 MiB; at least 1. (The Java facade bounds its own callers too: see [AsyncWal].)
 * @property filePermissions the POSIX permissions of every file kwal creates (segments, their temporary files,
 *   the lock file). Must include owner read and write, and no execute bit. Default owner read and write only
 *   (`rw-------`, 0600); from Java, `PosixFilePermissions.fromString("rw-r-----")` for example. Directories kwal
 *   creates get [directoryPermissions], derived from this. Files and directories that already exist are never
 *   changed. The process's umask can still remove bits (never add them). Ignored on file systems without POSIX
 *   permissions. May change between opens (it applies to files created from then on).
 * @property compression how blocks are compressed: [Compression.None] (the default), [Compression.Lz4] or
 *   [Compression.Zstd]. A block is compressed when it is closed, if its records take at least [compressionThreshold]
 *   bytes, and kept compressed only if that makes it smaller; the topic registry's blocks are never compressed. May
 *   change between opens: every block records its codec and reads back whatever this option is later.
 * @property compressionThreshold the smallest block body (the bytes of its record frames: payloads plus 12 bytes
 *   each) that is compressed; smaller blocks are stored plain. At least 0; default 1 KiB. Ignored under
 *   [Compression.None].
 * @property retention how long every topic keeps its records, unless [topicRetention] names it: [Retention.FOREVER]
 *   (the default) keeps them all. See [Wal.applyRetention].
 * @property topicRetention the retention of particular topics, by name, instead of [retention]. Default none.
 * @property retentionIntervalMillis how often retention is applied in the background, in milliseconds; 0 for never
 *   (then only [Wal.applyRetention] applies it). Default one minute.
 * @property retentionOverridesConsumers whether retention may truncate records a consumer has not committed past
 *   ([Wal.commit]). Default false: a consumer with a position in a topic keeps every record from that position on.
 * @property compactionThreshold segments hold many topics, so one topic's live records can keep an old segment from
 *   being deleted. When the oldest segments, taken together, hold live records in at most this fraction of their
 *   bytes, those records' blocks are copied forward to the end of the log and the segments deleted: the disk then
 *   holds at most about 1 / [compactionThreshold] times the live data, for extra writing of at most
 *   [compactionThreshold] / (1 - [compactionThreshold]) bytes per byte reclaimed. 0 never copies; below 1. Default
 *   0.5.
 * @property verifyOnOpen whether an open reads and checks every segment. By default (false) an open reads each sealed
 *   segment's summary — written beside it once the segment was sealed and durable, and for the last segment at a clean
 *   close — and checks only the blocks after the last summary (the groups a crash may have cut off): an open then
 *   costs what that tail and the summaries do, not what the log does. The records of summarized segments are checked
 *   when they are read (every header and record checksum, as always). True reads and checks every block of every
 *   segment, as an open without summaries does, and writes the summaries again in the background. Default false.
 * @throws IllegalArgumentException if a value is out of range.
 */
public class WalOptions(
    public val directory: Path,
    public val segmentSize: Int = DEFAULT_SEGMENT_SIZE,
    blockSize: Int = DEFAULT_BLOCK_SIZE,
    public val maxRecordSize: Int = DEFAULT_MAX_RECORD_SIZE,
    public val maxGroupBytes: Int = DEFAULT_MAX_GROUP_BYTES,
    public val durability: Durability = Durability.Sync,
    public val corruptionPolicy: CorruptionPolicy = CorruptionPolicy.FAIL,
    public val maxQueuedBytes: Long = DEFAULT_MAX_QUEUED_BYTES,
    filePermissions: Set<PosixFilePermission> = DEFAULT_FILE_PERMISSIONS,
    public val compression: Compression = Compression.None,
    public val compressionThreshold: Int = DEFAULT_COMPRESSION_THRESHOLD,
    public val retention: Retention = Retention.FOREVER,
    topicRetention: Map<String, Retention> = emptyMap(),
    public val retentionIntervalMillis: Long = DEFAULT_RETENTION_INTERVAL_MILLIS,
    public val retentionOverridesConsumers: Boolean = false,
    public val compactionThreshold: Double = DEFAULT_COMPACTION_THRESHOLD,
    public val verifyOnOpen: Boolean = false,
) {
    /** See the class description. An unmodifiable copy of the map given. */
    public val topicRetention: Map<String, Retention> = Collections.unmodifiableMap(LinkedHashMap(topicRetention))

    /** The retention of [topic]: its own ([topicRetention]) or the log's ([retention]). */
    public fun retentionOf(topic: String): Retention = topicRetention[topic] ?: retention

    /** See the class description. */
    public val blockSize: Int = minOf(blockSize, segmentSize - SEGMENT_RESERVE)

    /** See the class description. An unmodifiable copy of the set given. */
    public val filePermissions: Set<PosixFilePermission> = Collections.unmodifiableSet(
        EnumSet.noneOf(PosixFilePermission::class.java).apply { addAll(filePermissions) },
    )

    /**
     * The POSIX permissions of each directory kwal creates: [directory] if it is missing, and any missing parents.
     * Derived from [filePermissions]: the owner gets read, write and search (`rwx`); the group and others get
     * read and search (`r-x`) if the files grant them read, nothing otherwise; never write. So the default is
     * `rwx------` (0700), and files `rw-r-----` (0640) give `rwxr-x---` (0750). For anything else, create the
     * directory beforehand: kwal does not change a directory that exists.
     */
    public val directoryPermissions: Set<PosixFilePermission> = Collections.unmodifiableSet(
        EnumSet.of(OWNER_READ, OWNER_WRITE, OWNER_EXECUTE).apply {
            if (GROUP_READ in this@WalOptions.filePermissions) {
                add(GROUP_READ)
                add(GROUP_EXECUTE)
            }
            if (OTHERS_READ in this@WalOptions.filePermissions) {
                add(OTHERS_READ)
                add(OTHERS_EXECUTE)
            }
        },
    )

    init {
        require(segmentSize in MIN_SEGMENT_SIZE..MAX_SEGMENT_SIZE) {
            "segmentSize must be in $MIN_SEGMENT_SIZE..$MAX_SEGMENT_SIZE, was $segmentSize"
        }
        require(maxRecordSize >= 1) { "maxRecordSize must be positive, was $maxRecordSize" }
        require(this.blockSize >= MIN_BLOCK_SIZE) {
            "blockSize must be at least $MIN_BLOCK_SIZE, was ${this.blockSize}"
        }
        require(maxRecordSize.toLong() + RECORD_OVERHEAD <= this.blockSize) {
            "maxRecordSize ($maxRecordSize) + $RECORD_OVERHEAD must fit in blockSize (${this.blockSize})"
        }
        require(maxGroupBytes >= maxRecordSize) {
            "maxGroupBytes ($maxGroupBytes) must be at least maxRecordSize ($maxRecordSize)"
        }
        require(maxQueuedBytes >= 1) { "maxQueuedBytes must be positive, was $maxQueuedBytes" }
        require(compressionThreshold >= 0) { "compressionThreshold must not be negative, was $compressionThreshold" }
        require(retentionIntervalMillis >= 0) {
            "retentionIntervalMillis must not be negative, was $retentionIntervalMillis"
        }
        require(compactionThreshold >= 0.0 && compactionThreshold < 1.0) {
            "compactionThreshold must be in [0, 1), was $compactionThreshold"
        }
        for (name in this.topicRetention.keys) {
            TopicNames.problem(name)?.let { throw IllegalArgumentException("topicRetention names no topic: $it") }
        }
        require(OWNER_READ in this.filePermissions && OWNER_WRITE in this.filePermissions) {
            "filePermissions must include owner read and write, was ${PosixFilePermissions.toString(
                this.filePermissions,
            )}"
        }
        require(this.filePermissions.none { it == OWNER_EXECUTE || it == GROUP_EXECUTE || it == OTHERS_EXECUTE }) {
            "filePermissions must not include execute, was ${PosixFilePermissions.toString(this.filePermissions)}"
        }
    }

    /** A builder initialised from these options. */
    public fun toBuilder(): Builder = Builder(directory)
        .segmentSize(segmentSize).blockSize(blockSize).maxRecordSize(maxRecordSize)
        .maxGroupBytes(maxGroupBytes).durability(durability).corruptionPolicy(corruptionPolicy)
        .maxQueuedBytes(maxQueuedBytes)
        .filePermissions(filePermissions)
        .compression(compression).compressionThreshold(compressionThreshold)
        .retention(retention).topicRetention(topicRetention).retentionIntervalMillis(retentionIntervalMillis)
        .retentionOverridesConsumers(retentionOverridesConsumers).compactionThreshold(compactionThreshold)
        .verifyOnOpen(verifyOnOpen)

    override fun toString(): String =
        "WalOptions(directory=$directory, segmentSize=$segmentSize, blockSize=$blockSize, " +
            "maxRecordSize=$maxRecordSize, maxGroupBytes=$maxGroupBytes, durability=$durability, " +
            "corruptionPolicy=$corruptionPolicy, maxQueuedBytes=$maxQueuedBytes, " +
            "filePermissions=${PosixFilePermissions.toString(filePermissions)}, compression=$compression, " +
            "compressionThreshold=$compressionThreshold, retention=$retention, topicRetention=$topicRetention, " +
            "retentionIntervalMillis=$retentionIntervalMillis, " +
            "retentionOverridesConsumers=$retentionOverridesConsumers, compactionThreshold=$compactionThreshold, " +
            "verifyOnOpen=$verifyOnOpen)"

    /** A fluent builder for Java callers. Not thread-safe. */
    public class Builder(private val directory: Path) {
        private var segmentSize = DEFAULT_SEGMENT_SIZE
        private var blockSize = DEFAULT_BLOCK_SIZE
        private var maxRecordSize = DEFAULT_MAX_RECORD_SIZE
        private var maxGroupBytes = DEFAULT_MAX_GROUP_BYTES
        private var durability: Durability = Durability.Sync
        private var corruptionPolicy = CorruptionPolicy.FAIL
        private var maxQueuedBytes = DEFAULT_MAX_QUEUED_BYTES
        private var filePermissions = DEFAULT_FILE_PERMISSIONS
        private var compression: Compression = Compression.None
        private var compressionThreshold = DEFAULT_COMPRESSION_THRESHOLD
        private var retention = Retention.FOREVER
        private var topicRetention: Map<String, Retention> = emptyMap()
        private var retentionIntervalMillis = DEFAULT_RETENTION_INTERVAL_MILLIS
        private var retentionOverridesConsumers = false
        private var compactionThreshold = DEFAULT_COMPACTION_THRESHOLD
        private var verifyOnOpen = false

        /** See [WalOptions.segmentSize]. */
        public fun segmentSize(bytes: Int): Builder = apply { segmentSize = bytes }

        /** See [WalOptions.blockSize]. */
        public fun blockSize(bytes: Int): Builder = apply { blockSize = bytes }

        /** See [WalOptions.maxRecordSize]. */
        public fun maxRecordSize(bytes: Int): Builder = apply { maxRecordSize = bytes }

        /** See [WalOptions.maxGroupBytes]. */
        public fun maxGroupBytes(bytes: Int): Builder = apply { maxGroupBytes = bytes }

        /** See [WalOptions.durability]. */
        public fun durability(value: Durability): Builder = apply { durability = value }

        /** See [WalOptions.corruptionPolicy]. */
        public fun corruptionPolicy(value: CorruptionPolicy): Builder = apply { corruptionPolicy = value }

        /** See [WalOptions.maxQueuedBytes]. */
        public fun maxQueuedBytes(bytes: Long): Builder = apply { maxQueuedBytes = bytes }

        /** See [WalOptions.filePermissions]. */
        public fun filePermissions(value: Set<PosixFilePermission>): Builder = apply { filePermissions = value }

        /** See [WalOptions.compression]. */
        public fun compression(value: Compression): Builder = apply { compression = value }

        /** See [WalOptions.compressionThreshold]. */
        public fun compressionThreshold(bytes: Int): Builder = apply { compressionThreshold = bytes }

        /** See [WalOptions.retention]. */
        public fun retention(value: Retention): Builder = apply { retention = value }

        /** See [WalOptions.topicRetention]. */
        public fun topicRetention(value: Map<String, Retention>): Builder = apply { topicRetention = value }

        /** Sets [topic]'s retention, as in [WalOptions.topicRetention]. */
        public fun topicRetention(topic: String, value: Retention): Builder =
            apply { topicRetention = topicRetention + (topic to value) }

        /** See [WalOptions.retentionIntervalMillis]. */
        public fun retentionIntervalMillis(millis: Long): Builder = apply { retentionIntervalMillis = millis }

        /** See [WalOptions.retentionOverridesConsumers]. */
        public fun retentionOverridesConsumers(value: Boolean): Builder = apply { retentionOverridesConsumers = value }

        /** See [WalOptions.compactionThreshold]. */
        public fun compactionThreshold(fraction: Double): Builder = apply { compactionThreshold = fraction }

        /** See [WalOptions.verifyOnOpen]. */
        public fun verifyOnOpen(value: Boolean): Builder = apply { verifyOnOpen = value }

        /** @throws IllegalArgumentException if a value is out of range. */
        public fun build(): WalOptions = WalOptions(
            directory, segmentSize, blockSize, maxRecordSize, maxGroupBytes, durability, corruptionPolicy,
            maxQueuedBytes, filePermissions, compression, compressionThreshold, retention, topicRetention,
            retentionIntervalMillis, retentionOverridesConsumers, compactionThreshold, verifyOnOpen,
        )
    }

    public companion object {
        public const val DEFAULT_SEGMENT_SIZE: Int = 64 shl 20
        public const val DEFAULT_BLOCK_SIZE: Int = 4 shl 20
        public const val DEFAULT_MAX_RECORD_SIZE: Int = 1 shl 20
        public const val DEFAULT_MAX_GROUP_BYTES: Int = 4 shl 20
        public const val DEFAULT_MAX_QUEUED_BYTES: Long = 64L shl 20
        public const val DEFAULT_COMPRESSION_THRESHOLD: Int = 1 shl 10
        public const val DEFAULT_RETENTION_INTERVAL_MILLIS: Long = 60_000
        public const val DEFAULT_COMPACTION_THRESHOLD: Double = 0.5
        public const val MIN_SEGMENT_SIZE: Int = 64 shl 10
        public const val MAX_SEGMENT_SIZE: Int = 1 shl 30
        public const val MIN_BLOCK_SIZE: Int = 4 shl 10

        /** Room a block needs beyond one record's payload: its header and the record's frame header. */
        public const val RECORD_OVERHEAD: Int = 128

        /** Room a segment keeps beyond its largest block: its header, with margin. */
        public const val SEGMENT_RESERVE: Int = 4 shl 10

        /** The default [filePermissions]: owner read and write (`rw-------`, 0600). Unmodifiable. */
        @JvmField
        public val DEFAULT_FILE_PERMISSIONS: Set<PosixFilePermission> =
            Collections.unmodifiableSet(EnumSet.of(OWNER_READ, OWNER_WRITE))

        /** A builder for [directory] with every other option at its default. */
        @JvmStatic public fun builder(directory: Path): Builder = Builder(directory)
    }
}
