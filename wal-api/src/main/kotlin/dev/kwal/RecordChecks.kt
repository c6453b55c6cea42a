package dev.kwal

/**
 * Which records [Wal.replayViews] and [Wal.followViews] verify before handing them out.
 *
 * Whichever is chosen, every block header is verified (its CRC32C, bound to its place in the file), a compressed
 * block's CRC32C over its bytes on disk too, and every record frame's bounds: a view never reads outside its block.
 */
public enum class RecordChecks {
    /** Every record's CRC32C (bound to its topic and sequence) is verified before it is handed out. The default. */
    ALL,

    /**
     * Records in sealed segments — those before the segment the log is writing, which were verified when the log was
     * opened or written by it since — are handed out without their own CRC32C being computed. Records in the active
     * segment are verified as under [ALL].
     *
     * What is given up: a record of a sealed segment damaged on disk *after* it was verified (bit rot, a stray write
     * to the file) is handed out as it now reads, instead of failing with [WalCorruptedException]; damage that breaks
     * a block header or a frame's length or magic is still caught. What is gained: the CRC32C of each record, most of
     * the cost of viewing a small one (measured, page cache hot: about 30 of 43 ns a record at 100 B, 17 of 61 ns at
     * 1 KiB; see the README's Guarantees).
     */
    SKIP_SEALED,
}
