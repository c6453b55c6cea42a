package dev.kwal.crash

import dev.kwal.Compression
import dev.kwal.CorruptionPolicy
import dev.kwal.Durability
import dev.kwal.Retention
import dev.kwal.WalOptions
import java.nio.file.Path
import kotlin.random.Random

/**
 * The options of one torture run, all but the directory, drawn at random within their documented ranges (see
 * [WalOptions]) by [random], so that the torture does not test one shape of log only. A run's options are derived
 * from its seed, so `-Dtorture.seed` replays them. [encode] and [decode] pass them to a child JVM as one argument;
 * [toString] is the short form printed with every failure, e.g.
 * `seg=64K block=4K rec=3968 group=64K queue=1K dur=Sync policy=FAIL` (and ` comp=Lz4/1K` when compression is on,
 * ` ret=alpha:r100,beta:b8192 every=5ms compact=0.25 overrides` when retention is: count and bytes limits per topic,
 * the background job's interval, the compaction threshold, whether retention overrides consumers).
 *
 * Record sizes are chosen relative to the block ([recordSize]): tiny, about half a block (just below, at, and just
 * over the size at which two frames fill a block), a third of a block, near [maxRecordSize]; batches are checked
 * against the segment with the exact layout the format describes ([unitBytes]).
 */
data class TortureOptions(
    val segmentSize: Int,
    val blockSize: Int,
    val maxRecordSize: Int,
    val maxGroupBytes: Int,
    val maxQueuedBytes: Long,
    val durability: Durability,
    val policy: CorruptionPolicy,
    val compression: Compression = Compression.None,
    val compressionThreshold: Int = WalOptions.DEFAULT_COMPRESSION_THRESHOLD,
    val compactionThreshold: Double = WalOptions.DEFAULT_COMPACTION_THRESHOLD,
    val topicRetention: Map<String, Retention> = emptyMap(),
    val retentionIntervalMillis: Long = 0,
    val retentionOverridesConsumers: Boolean = false,
) {
    init {
        // Fails fast, in the parent, on a draw that the options would refuse.
        of(Path.of("."))
    }

    /** These options for [dir]. */
    fun of(dir: Path, durability: Durability = this.durability, policy: CorruptionPolicy = this.policy) = WalOptions(
        directory = dir,
        segmentSize = segmentSize,
        blockSize = blockSize,
        maxRecordSize = maxRecordSize,
        maxGroupBytes = maxGroupBytes,
        durability = durability,
        corruptionPolicy = policy,
        maxQueuedBytes = maxQueuedBytes,
        compression = compression,
        compressionThreshold = compressionThreshold,
        topicRetention = topicRetention,
        retentionIntervalMillis = retentionIntervalMillis,
        retentionOverridesConsumers = retentionOverridesConsumers,
        compactionThreshold = compactionThreshold,
    )

    /**
     * The highest first sequence retention may give [topic] under these options when it held [next] records: what
     * its count limit allows (a bytes limit keeps whole blocks the torture does not model: up to [next]; no limit:
     * 0), held back to [pin] (a consumer's position) unless [retentionOverridesConsumers].
     */
    fun retentionBound(topic: String, next: Long, pin: Long?): Long {
        val r = topicRetention[topic] ?: return 0
        var bound = next
        r.maxRecords?.let { bound = maxOf(0, next - it) }
        if (pin != null && !retentionOverridesConsumers) bound = minOf(bound, pin)
        return bound
    }

    /** The payload size of two frames that fill a block exactly: a record one byte larger is alone in its block. */
    val halfBlock: Int get() = (blockSize - BLOCK_HEADER) / 2 - FRAME_HEADER

    /**
     * A payload size of at least [min] (and at most [max], by default [maxRecordSize]): tiny, about half a block
     * (either side of [halfBlock]), about a third of a block, near the maximum, or anywhere.
     */
    fun recordSize(r: Random, min: Int, max: Int = maxRecordSize): Int {
        val hi = minOf(max, maxRecordSize).coerceAtLeast(min)
        val third = (blockSize - BLOCK_HEADER) / 3 - FRAME_HEADER
        val s = when (r.nextInt(20)) {
            in 0..7 -> min + r.nextInt(200)

            in 8..10 -> halfBlock + r.nextInt(-48, 49)

            11, 12 -> halfBlock + 1 + r.nextInt(16)

            // just over half a block: one frame per block
            13 -> third + r.nextInt(-8, 9)

            14, 15 -> hi - r.nextInt(64)

            else -> r.nextInt(min, hi + 1)
        }
        return s.coerceIn(min, hi)
    }

    /**
     * The bytes a unit (an append, a batch) of payloads of [sizes] takes when it starts a block: its frames and one
     * header per block, a block closed when the next frame would make it larger than [blockSize]. Computed here
     * from the format description, independently of the engine.
     */
    fun unitBytes(sizes: List<Int>): Long {
        var total = 0L
        var inBlock = -1L
        for (s in sizes) {
            val frame = FRAME_HEADER.toLong() + s
            if (inBlock < 0 || inBlock + frame > blockSize) {
                total += BLOCK_HEADER
                inBlock = BLOCK_HEADER.toLong()
            }
            inBlock += frame
            total += frame
        }
        return total
    }

    /** Whether a batch of [sizes] fits in one segment, which the log promises to accept (and refuses otherwise). */
    fun batchFits(sizes: List<Int>): Boolean = unitBytes(sizes) <= segmentSize - SEGMENT_HEADER

    /**
     * The longest prefix of [sizes] (at least one) that fits one segment as a batch, holds at most [maxBytes] of
     * payload and at most [CrashPayloads.MAX_BATCH] records.
     */
    fun fitBatch(sizes: List<Int>, maxBytes: Long = Long.MAX_VALUE): List<Int> {
        var total = 0L
        var inBlock = -1L
        var payload = 0L
        var n = 0
        for (s in sizes) {
            val frame = FRAME_HEADER.toLong() + s
            var t = total
            var b = inBlock
            if (b < 0 || b + frame > blockSize) {
                t += BLOCK_HEADER
                b = BLOCK_HEADER.toLong()
            }
            t += frame
            b += frame
            if (n >= 1 &&
                (t > segmentSize - SEGMENT_HEADER || payload + s > maxBytes || n >= CrashPayloads.MAX_BATCH)
            ) {
                break
            }
            total = t
            inBlock = b
            payload += s
            n++
        }
        return sizes.subList(0, n)
    }

    /**
     * Payload sizes of a batch that takes exactly `segmentSize - 64 + delta` bytes ([unitBytes]), or null if none of
     * at most [CrashPayloads.MAX_BATCH] records and [maxBytes] is found. With `delta` 0 it fills an empty segment to
     * its last byte and must be accepted; with `delta` > 0 it cannot fit and must be refused, however close. Records
     * mostly just over half a block (so hundreds of block headers are at stake), or of some other size.
     */
    fun exactBatch(r: Random, min: Int, delta: Int, maxBytes: Long): List<Int>? {
        val target = segmentSize.toLong() - SEGMENT_HEADER + delta
        if (target > maxBytes) return null
        val floor = maxOf(min.toLong(), target / (CrashPayloads.MAX_BATCH - 2)).toInt()
        if (floor > maxRecordSize) return null
        val s = (
            if (r.nextInt(3) >
                0
            ) {
                halfBlock + 1 + r.nextInt(8)
            } else {
                recordSize(r, min)
            }
            ).coerceIn(floor, maxRecordSize)
        val sizes = ArrayList<Int>()
        var total = 0L
        var inBlock = -1L
        while (sizes.size < CrashPayloads.MAX_BATCH - 2) {
            val frame = FRAME_HEADER.toLong() + s
            val newBlock = inBlock < 0 || inBlock + frame > blockSize
            val t = total + frame + (if (newBlock) BLOCK_HEADER else 0)
            if (t > target) break
            total = t
            inBlock = (if (newBlock) BLOCK_HEADER.toLong() else inBlock) + frame
            sizes.add(s)
        }
        val gap = (target - total).toInt()
        if (gap == 0) return sizes
        val candidates = listOfNotNull(
            sizes.lastOrNull()?.let { sizes.dropLast(1) + (it + gap) },
            sizes + (gap - FRAME_HEADER),
            sizes + (gap - FRAME_HEADER - BLOCK_HEADER),
        )
        return candidates.firstOrNull { c ->
            c.all { it in min..maxRecordSize } && unitBytes(c) == target &&
                c.sumOf { it.toLong() } <= maxBytes
        }
    }

    /**
     * A long batch: records all just over half a block (each alone in its block: the case that once made the
     * engine's bound fall short of the headers, with hundreds of records) or all tiny, as many as fit one segment,
     * [maxBytes] and [CrashPayloads.MAX_BATCH].
     */
    fun longBatch(r: Random, min: Int, maxBytes: Long): List<Int> {
        val overHalf = r.nextBoolean() && halfBlock + 1 <= maxRecordSize
        val sizes = List(CrashPayloads.MAX_BATCH) {
            if (overHalf) minOf(halfBlock + 1 + r.nextInt(8), maxRecordSize).coerceAtLeast(min) else min + r.nextInt(64)
        }
        return fitBatch(sizes, maxBytes)
    }

    fun encode(): String = listOf(
        segmentSize,
        blockSize,
        maxRecordSize,
        maxGroupBytes,
        maxQueuedBytes,
        when (durability) {
            Durability.Sync -> "sync"
            Durability.None -> "none"
            is Durability.Interval -> "interval${durability.millis}"
        },
        policy.name,
        when (compression) {
            Compression.None -> "none"
            Compression.Lz4 -> "lz4"
            is Compression.Zstd -> "zstd${compression.level}"
        },
        compressionThreshold,
        compactionThreshold,
        retentionIntervalMillis,
        retentionOverridesConsumers,
        topicRetention.entries.joinToString(";") { (t, r) -> "$t=${retentionName(r)}" }.ifEmpty { "-" },
    ).joinToString(",")

    override fun toString(): String {
        val sizes = "seg=${size(segmentSize.toLong())} block=${size(blockSize.toLong())} " +
            "rec=${size(maxRecordSize.toLong())} group=${size(maxGroupBytes.toLong())} queue=${size(maxQueuedBytes)}"
        val comp = if (compression == Compression.None) {
            ""
        } else {
            " comp=${compressionName(compression)}/${size(compressionThreshold.toLong())}"
        }
        val ret = if (topicRetention.isEmpty() && retentionIntervalMillis == 0L && !retentionOverridesConsumers &&
            compactionThreshold == WalOptions.DEFAULT_COMPACTION_THRESHOLD
        ) {
            ""
        } else {
            " ret=${topicRetention.entries.joinToString(",") { (t, r) -> "$t:${retentionName(r)}" }} " +
                "every=${retentionIntervalMillis}ms compact=$compactionThreshold" +
                if (retentionOverridesConsumers) " overrides" else ""
        }
        return "$sizes dur=${durabilityName(durability)} policy=$policy$comp$ret"
    }

    companion object {
        const val BLOCK_HEADER = 48
        const val FRAME_HEADER = 12
        const val SEGMENT_HEADER = 64

        /** The options the torture used before it drew them at random ([CrashOptions.of]). */
        val CLASSIC =
            TortureOptions(
                64 shl 10,
                8 shl 10,
                4 shl 10,
                16 shl 10,
                WalOptions.DEFAULT_MAX_QUEUED_BYTES,
                Durability.Sync,
                CorruptionPolicy.FAIL,
            )

        fun decode(s: String): TortureOptions {
            val p = s.split(',')
            require(p.size == 7 || p.size == 9 || p.size == 13) { "bad options '$s'" }
            val durability = when {
                p[5] == "sync" -> Durability.Sync
                p[5] == "none" -> Durability.None
                p[5].startsWith("interval") -> Durability.Interval(p[5].removePrefix("interval").toLong())
                else -> error("bad durability '${p[5]}'")
            }
            return TortureOptions(
                p[0].toInt(),
                p[1].toInt(),
                p[2].toInt(),
                p[3].toInt(),
                p[4].toLong(),
                durability,
                CorruptionPolicy.valueOf(p[6]),
                when {
                    p.size == 7 || p[7] == "none" -> Compression.None
                    p[7] == "lz4" -> Compression.Lz4
                    p[7].startsWith("zstd") -> Compression.Zstd(p[7].removePrefix("zstd").toInt())
                    else -> error("bad compression '${p[7]}'")
                },
                if (p.size == 7) WalOptions.DEFAULT_COMPRESSION_THRESHOLD else p[8].toInt(),
                if (p.size < 13) WalOptions.DEFAULT_COMPACTION_THRESHOLD else p[9].toDouble(),
                if (p.size < 13 || p[12] == "-") {
                    emptyMap()
                } else {
                    p[12].split(';').associate { e -> e.substringBefore('=') to parseRetention(e.substringAfter('=')) }
                },
                if (p.size < 13) 0 else p[10].toLong(),
                p.size == 13 && p[11].toBooleanStrict(),
            )
        }

        /** `r100` (records), `b4096` (bytes): the retentions the torture draws. */
        fun retentionName(r: Retention): String = when {
            r.maxRecords != null && r.maxAge == null && r.maxBytes == null -> "r${r.maxRecords}"
            r.maxBytes != null && r.maxAge == null && r.maxRecords == null -> "b${r.maxBytes}"
            else -> error("the torture draws no retention like $r")
        }

        fun parseRetention(s: String): Retention = when (s[0]) {
            'r' -> Retention.records(s.substring(1).toLong())
            'b' -> Retention.bytes(s.substring(1).toLong())
            else -> error("bad retention '$s'")
        }

        /** The topics the torture workloads write (PowerCutTorture uses the first four), some with retention. */
        val RETENTION_TOPICS = listOf("alpha", "beta", "gamma", "delta", "epsilon")

        fun compressionName(c: Compression): String = when (c) {
            Compression.None -> "None"
            Compression.Lz4 -> "Lz4"
            is Compression.Zstd -> "Zstd(${c.level})"
        }

        fun durabilityName(d: Durability?): String = when (d) {
            null -> "default"
            Durability.Sync -> "Sync"
            Durability.None -> "None"
            is Durability.Interval -> "Interval(${d.millis}ms)"
        }

        /** 65536 as `64K`, 4194304 as `4M`, anything not a whole KiB as its number of bytes. */
        fun size(n: Long): String = when {
            n >= (1 shl 20) && n % (1 shl 20) == 0L -> "${n shr 20}M"
            n >= 1024 && n % 1024 == 0L -> "${n shr 10}K"
            else -> "$n"
        }

        /**
         * Options drawn from [r]: segments of 64 KiB (often), unaligned sizes up to 256 KiB, up to [maxSegment],
         * and with [hugeChance] the default 64 MiB; blocks of 4 KiB (the minimum), 8 or 12 KiB, odd sizes, up to the
         * largest the segment allows; the largest record a block holds (often), or less, at most [maxRecord]; groups
         * from one record (the minimum) to several segments; a queue bound from 1 byte to the default; Sync mostly,
         * None and Interval too; FAIL or TRUNCATE; compression off half the time, else LZ4 or zstd (levels 1 to 6)
         * from a threshold of 0, 64 bytes, 1 KiB or anywhere up to the block (drawn last, so that the sizes drawn from
         * a seed are those drawn before compression was an option). Then retention, from a generator seeded by the
         * draws above (so [r] gives every later draw as before retention was an option): a compaction threshold of
         * 0, ¼, ½ or 0.9; for each of [RETENTION_TOPICS], a quarter of the time a count limit (0 to 999 records),
         * an eighth of the time a bytes limit (up to a dozen blocks); the background job off (mostly: the workload
         * applies retention) or every 5 to 50 ms; consumers overridden a quarter of the time.
         */
        fun random(
            r: Random,
            maxSegment: Int = 4 shl 20,
            hugeChance: Double = 0.0,
            maxRecord: Int = 256 shl 10,
        ): TortureOptions {
            val min = WalOptions.MIN_SEGMENT_SIZE
            val segment = if (r.nextDouble() < hugeChance) {
                WalOptions.DEFAULT_SEGMENT_SIZE
            } else {
                when (r.nextInt(10)) {
                    in 0..3 -> min
                    4, 5 -> r.nextInt(min, 256 shl 10)
                    6, 7 -> r.nextInt(256, 1025) shl 10
                    else -> r.nextInt(1 shl 20, maxOf(1 shl 20, maxSegment) + 1)
                }.coerceIn(min, maxOf(min, maxSegment))
            }
            val blockCap = segment - WalOptions.SEGMENT_RESERVE
            val block = when (r.nextInt(12)) {
                in 0..2 -> WalOptions.MIN_BLOCK_SIZE
                3 -> 8 shl 10
                4, 5 -> 12 shl 10
                6, 7 -> r.nextInt(WalOptions.MIN_BLOCK_SIZE, minOf(blockCap, 64 shl 10) + 1)
                8 -> blockCap
                else -> r.nextInt(WalOptions.MIN_BLOCK_SIZE, minOf(blockCap, 1 shl 20) + 1)
            }.coerceIn(WalOptions.MIN_BLOCK_SIZE, blockCap)
            val recordCap = minOf(block - WalOptions.RECORD_OVERHEAD, maxRecord)
            val record = when (r.nextInt(10)) {
                in 0..4 -> recordCap
                5, 6 -> r.nextInt(minOf(recordCap, maxOf(256, block / 2 - 256)), recordCap + 1)
                else -> r.nextInt(minOf(recordCap, 256), recordCap + 1)
            }
            val groupCap = 16 shl 20
            val group = when (r.nextInt(10)) {
                0, 1 -> record

                2, 3, 4 -> r.nextInt(record, record * 4 + 1)

                5, 6 -> (segment.toLong() * r.nextInt(1, 4) + r.nextInt(4096)).coerceAtMost(groupCap.toLong()).toInt()

                // spans segments
                7 -> WalOptions.DEFAULT_MAX_GROUP_BYTES

                else -> r.nextInt(record, maxOf(record, segment) + 1)
            }.coerceIn(record, maxOf(record, groupCap))
            val queue = when (r.nextInt(10)) {
                0 -> 1L

                1, 2 -> 1024L

                3 -> r.nextLong(1, record.toLong() + 1)

                // less than one record: each waits until nothing else is queued
                4, 5, 6 -> r.nextLong(64 shl 10, (4 shl 20) + 1)

                else -> WalOptions.DEFAULT_MAX_QUEUED_BYTES
            }
            val durability = when (r.nextInt(10)) {
                in 0..5 -> Durability.Sync
                6, 7 -> Durability.None
                else -> Durability.Interval(r.nextLong(1, 51))
            }
            val policy = if (r.nextInt(5) < 2) CorruptionPolicy.TRUNCATE else CorruptionPolicy.FAIL
            val compression = when (r.nextInt(4)) {
                0, 1 -> Compression.None
                2 -> Compression.Lz4
                else -> Compression.Zstd(r.nextInt(1, 7))
            }
            val threshold = when (r.nextInt(4)) {
                0 -> 0
                1 -> 64
                2 -> WalOptions.DEFAULT_COMPRESSION_THRESHOLD
                else -> r.nextInt(0, block + 1)
            }
            // Retention, drawn from a generator seeded by the draws above, so that r is not drawn from at all: the
            // draws of a seed (here and by the callers after) are those made before retention was an option.
            val rr = Random(
                (
                    "$segment,$block,$record,$group,$queue,${durabilityName(durability)},${policy.name}," +
                        "${compressionName(compression)},$threshold"
                    ).hashCode().toLong() * -7046029254386353131L + 0x632BE59BD9B4E019L,
            )
            val compaction = listOf(0.0, 0.25, 0.5, 0.9)[rr.nextInt(4)].let { drawn ->
                System.getProperty("torture.compaction")?.takeIf { it.isNotBlank() }?.toDouble() ?: drawn
            }
            val topicRetention = LinkedHashMap<String, Retention>()
            for (t in RETENTION_TOPICS) {
                when (rr.nextInt(8)) {
                    0, 1 -> topicRetention[t] = Retention.records(if (rr.nextInt(8) == 0) 0 else rr.nextLong(1, 1000))
                    2 -> topicRetention[t] = Retention.bytes(block.toLong() * rr.nextInt(0, 12) + rr.nextInt(block))
                    else -> {}
                }
            }
            val interval = if (rr.nextInt(10) < 7) 0L else rr.nextLong(5, 51)
            val overrides = rr.nextInt(4) == 0
            return TortureOptions(
                segment, block, record, group, queue, durability, policy, compression, threshold,
                compaction, topicRetention, interval, overrides,
            )
        }

        /** Options whose sizes differ from [prev]'s, or (sometimes) the same sizes again: reopens change the shape. */
        fun next(
            r: Random,
            prev: TortureOptions?,
            maxSegment: Int = 4 shl 20,
            hugeChance: Double = 0.0,
            maxRecord: Int = 256 shl
                10,
        ): TortureOptions {
            val fresh = random(r, maxSegment, hugeChance, maxRecord)
            return if (prev != null &&
                r.nextInt(4) == 0
            ) {
                prev.copy(
                    durability = fresh.durability,
                    policy = fresh.policy,
                    compression = fresh.compression,
                    compressionThreshold = fresh.compressionThreshold,
                    compactionThreshold = fresh.compactionThreshold,
                    topicRetention = fresh.topicRetention,
                    retentionIntervalMillis = fresh.retentionIntervalMillis,
                    retentionOverridesConsumers = fresh.retentionOverridesConsumers,
                )
            } else {
                fresh
            }
        }
    }
}
