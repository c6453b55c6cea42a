package dev.kwal

/**
 * What recovery does on finding a record that fails its checks in a part of the log that had been
 * synced (a torn tail — bytes that were being written when the process or machine stopped — is always
 * truncated, whatever this says).
 */
public enum class CorruptionPolicy {
    /** Refuse to open: throw [WalCorruptedException] naming the file and offset. The default. */
    FAIL,

    /**
     * Truncate the log at the first bad record: it and everything after it, in every topic, is
     * dropped, and [RecoveryReport] says how much. Use it to salvage a damaged log.
     */
    TRUNCATE,
}
