package dev.kwal

/**
 * What recovery found when a log was opened.
 *
 * @property segments how many segment files hold data after recovery.
 * @property records how many records (in all topics) were recovered intact.
 * @property truncatedBytes how many bytes after the last intact record were discarded: a torn tail,
 *   or, under [CorruptionPolicy.TRUNCATE], everything after the first corrupt record.
 * @property droppedRecords how many records that had passed their own checks were discarded with
 *   them (records of a torn group, or after a corruption).
 * @property corruption a description of the corruption that was truncated under
 *   [CorruptionPolicy.TRUNCATE], or `null` if there was none.
 * @property durationMillis how long recovery took.
 * @property segmentsScanned how many segments recovery read block by block: those after the last segment summary
 *   (see [WalOptions.verifyOnOpen]), all of them without summaries. The others were known from their summaries.
 */
public data class RecoveryReport(
    public val segments: Int,
    public val records: Long,
    public val truncatedBytes: Long,
    public val droppedRecords: Long,
    public val corruption: String?,
    public val durationMillis: Long,
    public val segmentsScanned: Int = segments,
) {
    /** Whether recovery discarded anything. */
    public val truncated: Boolean get() = truncatedBytes > 0
}
