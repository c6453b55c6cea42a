package dev.kwal

import java.io.IOException
import java.nio.file.Path

/** The base of every error kwal reports. An [IOException], so Java callers can handle them together. */
public open class WalException(message: String, cause: Throwable? = null) : IOException(message, cause)

/** Another [Wal], in this process or another, has the directory open. Nothing was changed. */
public class WalLockedException(public val directory: Path, cause: Throwable? = null) :
    WalException("$directory is already open by another Wal (lock file held)", cause)

/** A topic name was rejected by [TopicNames.validate]. Nothing was written. */
public class InvalidTopicException(public val topic: String, reason: String) :
    WalException("Invalid topic name ${TopicNames.quote(topic)}: $reason")

/** A record or batch is larger than the log accepts. Nothing was written. */
public class RecordTooLargeException(public val size: Long, public val limit: Long, what: String = "record") :
    WalException("$what of $size bytes exceeds the limit of $limit bytes")

/** The log is closed, or closed before this call's record was written. */
public class WalClosedException(message: String = "Wal is closed") : WalException(message)

/**
 * The log has stopped after a failure it cannot safely continue from — a failed `fsync` above all: the
 * operating system may already have dropped the unsynced data, so retrying could report as durable
 * bytes that are not on disk. Every later call fails with this error; reopen the directory to run
 * recovery. [cause] is the original failure.
 */
public class WalFailedException(message: String, cause: Throwable?) : WalException(message, cause)

/**
 * The log's files hold bytes that fail their checks in a part that had been synced, or are not a kwal
 * log at all. [file] and [offset] locate the first bad byte range when known.
 */
public class WalCorruptedException(message: String, public val file: Path? = null, public val offset: Long = -1) :
    WalException(if (file != null) "$message ($file at offset $offset)" else message)

/**
 * The call was refused because too many bytes of earlier calls are still pending, and the caller asked to be told
 * rather than to wait (see [AsyncWal.WhenFull.FAIL]). Nothing was written; retry later.
 */
public class WalOverloadedException(message: String) : WalException(message)
