package dev.kwal

/**
 * How the log compresses the blocks it writes ([WalOptions.compression]).
 *
 * Compression applies to a block — a run of one topic's records written together, at most [WalOptions.blockSize]
 * bytes — when the block is closed: if its records take at least [WalOptions.compressionThreshold] bytes, they are
 * compressed, and the compressed form is kept only if it is smaller (its 8-byte prefix included); otherwise the block
 * is stored plain. Each block records the codec it was written with, so the option may change between opens: a log
 * holds a mix of plain and compressed blocks, and every block reads back whatever today's option is. Readers
 * decompress transparently; records, sequences and timestamps are the same either way.
 *
 * A compressed block is covered by a CRC32C of the bytes on disk, checked before anything is decompressed, and each
 * record inside keeps its own CRC32C, checked after. A damaged compressed block is reported like any other damaged
 * block ([WalCorruptedException] on replay; a torn tail or corruption on open), never as wrong records.
 */
public sealed class Compression {
    /** Blocks are stored plain. The default. */
    public data object None : Compression()

    /** LZ4 (block format): fast, a modest ratio. */
    public data object Lz4 : Compression()

    /**
     * Zstandard (one zstd frame per block) at [level]: a better ratio than [Lz4], at more CPU per byte written.
     * [level] is 1 (fastest) to 22 (smallest); default 3.
     */
    public data class Zstd(public val level: Int = DEFAULT_ZSTD_LEVEL) : Compression() {
        init {
            require(level in MIN_ZSTD_LEVEL..MAX_ZSTD_LEVEL) {
                "zstd level must be in $MIN_ZSTD_LEVEL..$MAX_ZSTD_LEVEL, was $level"
            }
        }
    }

    public companion object {
        /** The lowest [Zstd.level]. */
        public const val MIN_ZSTD_LEVEL: Int = 1

        /** The highest [Zstd.level]. */
        public const val MAX_ZSTD_LEVEL: Int = 22

        /** The default [Zstd.level]. */
        public const val DEFAULT_ZSTD_LEVEL: Int = 3

        // Functions, not @JvmField constants, as in Durability: a constant initialised here could read an object
        // before its own initialisation finished.

        /** [None], for Java. */
        @JvmStatic public fun none(): Compression = None

        /** [Lz4], for Java. */
        @JvmStatic public fun lz4(): Compression = Lz4

        /** [Zstd] at [level], for Java. */
        @JvmStatic public fun zstd(level: Int): Compression = Zstd(level)

        /** [Zstd] at the default level, for Java. */
        @JvmStatic public fun zstd(): Compression = Zstd()
    }
}
