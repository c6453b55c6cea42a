package dev.kwal

import java.time.Duration

/**
 * How long a topic keeps its records: at most [maxRecords] records, none older than [maxAge], at most [maxBytes] bytes
 * on disk — each limit applied if set, all of them if several are. Records beyond a limit are truncated from the
 * oldest on, as by [Wal.truncateBefore]; their space comes back when whole segment files can be deleted (see
 * [Wal.applyRetention]).
 *
 * Limits apply at block granularity where the log cannot do better: [maxBytes] counts whole blocks (a block is the run
 * of a topic's records written together, headers included) and keeps the newest blocks that fit; [maxAge] uses each
 * record's [Record.timestampMillis]. A record a registered consumer has not committed past is kept, whatever the
 * limits say, unless [WalOptions.retentionOverridesConsumers].
 *
 * Set log-wide in [WalOptions.retention] (every topic) and per topic in [WalOptions.topicRetention]. Immutable.
 *
 * @property maxRecords the most records kept, or null for no limit; at least 0.
 * @property maxAge the oldest record kept, by its timestamp, or null for no limit; not negative.
 * @property maxBytes the most bytes of blocks kept, or null for no limit; at least 0.
 */
public data class Retention @JvmOverloads constructor(
    public val maxRecords: Long? = null,
    public val maxAge: Duration? = null,
    public val maxBytes: Long? = null,
) {
    init {
        require(maxRecords == null || maxRecords >= 0) { "maxRecords must not be negative, was $maxRecords" }
        require(maxAge == null || !maxAge.isNegative) { "maxAge must not be negative, was $maxAge" }
        require(maxBytes == null || maxBytes >= 0) { "maxBytes must not be negative, was $maxBytes" }
    }

    /** Whether this keeps every record (no limit set). */
    public val keepsAll: Boolean get() = maxRecords == null && maxAge == null && maxBytes == null

    public companion object {
        /** No limit: every record is kept until [Wal.truncateBefore] says otherwise. The default. */
        @JvmField public val FOREVER: Retention = Retention()

        /** At most [count] records. */
        @JvmStatic public fun records(count: Long): Retention = Retention(maxRecords = count)

        /** No record older than [age]. */
        @JvmStatic public fun age(age: Duration): Retention = Retention(maxAge = age)

        /** At most [bytes] bytes of blocks. */
        @JvmStatic public fun bytes(bytes: Long): Retention = Retention(maxBytes = bytes)
    }
}
