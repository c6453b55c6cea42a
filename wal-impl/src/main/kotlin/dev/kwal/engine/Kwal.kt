package dev.kwal.engine

import dev.kwal.CorruptionPolicy
import dev.kwal.RecoveryReport
import dev.kwal.Wal
import dev.kwal.WalCorruptedException
import dev.kwal.WalException
import dev.kwal.WalLockedException
import dev.kwal.WalOptions
import dev.kwal.engine.io.RealFileIo
import java.nio.file.Path

/**
 * Opens kwal logs: the entry point of the engine.
 *
 * ```kotlin
 * Kwal.open(WalOptions(Path.of("/var/lib/app/wal"))).use { wal ->
 *     val seq = wal.append("orders", bytes)
 * }
 * ```
 */
public object Kwal {
    /**
     * Opens (creating if needed) the log in [WalOptions.directory], runs recovery (see [RecoveryReport]) and
     * returns it ready for appends.
     *
     * Blocks while it reads and checks the log: from a coroutine, call it in `Dispatchers.IO`.
     *
     * @throws WalLockedException if another [Wal] has the directory open.
     * @throws WalCorruptedException if synced data fails its checks and [CorruptionPolicy.FAIL] is in force.
     * @throws WalException for I/O failures.
     */
    @JvmStatic
    @Throws(WalException::class)
    public fun open(options: WalOptions): Wal = KwalEngine.open(options, RealFileIo)

    /** Opens the log in [directory] with default options. See [open]. */
    @JvmStatic
    @Throws(WalException::class)
    public fun open(directory: Path): Wal = open(WalOptions(directory))
}
