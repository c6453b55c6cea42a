package dev.kwal

/**
 * When an append is acknowledged, relative to the disk.
 *
 * Set a log-wide default with [WalOptions.durability] and override it per call. As a per-call override,
 * [Sync] waits for the sync of the record's group; [None] and [Interval] acknowledge once the write has
 * reached the operating system (the background sync of [Interval] is a log-wide setting).
 *
 * An append that needs no sync, made while the log has nothing else in progress, is copied into the page cache
 * by the calling thread itself (through a shared mapping of the segment, without a system call) instead of
 * being handed to the log's writer thread and back: a lone appender under [None] or [Interval] pays no thread
 * hand-off. Under contention such appends are group-committed like any other.
 */
public sealed class Durability {

    /**
     * Acknowledge after the record's group is written and `fdatasync`ed. Survives a process crash and
     * a power loss. One sync covers every record in the group, so concurrent appenders share its cost.
     * The default.
     */
    public data object Sync : Durability()

    /**
     * Acknowledge after the write reaches the operating system; sync in the background every [millis]
     * milliseconds. Survives a process crash; a power loss may lose up to about [millis] ms of records.
     */
    public data class Interval(public val millis: Long) : Durability() {
        init {
            require(millis > 0) { "Interval must be positive, was $millis ms" }
        }
    }

    /**
     * Acknowledge after the write reaches the operating system; never sync except on [Wal.sync] and
     * [Wal.close]. Survives a process crash, not a power loss.
     */
    public data object None : Durability()

    public companion object {
        // Functions, not @JvmField constants: a constant initialised here would read Sync or None before their own
        // initialisation finished whenever one of them is loaded first, and be null.

        /** [Sync], for Java. */
        @JvmStatic public fun sync(): Durability = Sync

        /** [None], for Java. */
        @JvmStatic public fun none(): Durability = None

        /** [Interval] of [millis] ms, for Java. */
        @JvmStatic public fun interval(millis: Long): Durability = Interval(millis)
    }
}
