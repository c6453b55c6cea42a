package dev.kwal

/**
 * What one application of retention did ([Wal.applyRetention]).
 *
 * @property truncated each topic whose first sequence retention raised, and its new first sequence.
 * @property recordsTruncated how many records those truncations made unreadable.
 * @property segmentsDeleted how many segment files were deleted.
 * @property bytesReclaimed the bytes of the segment files deleted.
 * @property blocksCopied how many blocks of live records were copied forward, out of old segments, so that those
 *   could be deleted.
 * @property bytesCopied the bytes of those blocks: the extra writing retention did.
 */
public data class RetentionReport(
    public val truncated: Map<String, Long>,
    public val recordsTruncated: Long,
    public val segmentsDeleted: Int,
    public val bytesReclaimed: Long,
    public val blocksCopied: Int,
    public val bytesCopied: Long,
)
