package dev.kwal.typed

import dev.kwal.Durability
import dev.kwal.Wal
import dev.kwal.WalOptions
import dev.kwal.engine.Kwal
import kotlinx.serialization.Serializable
import java.nio.file.Files
import java.nio.file.Path
import kotlin.io.path.ExperimentalPathApi
import kotlin.io.path.deleteRecursively

/** Fresh logs in temporary directories, with 1 MiB segments so that opening one is cheap. */
object TypedLogs {
    fun options(dir: Path, durability: Durability = Durability.Sync): WalOptions =
        WalOptions(dir, segmentSize = 1 shl 20, maxRecordSize = 64 shl 10, durability = durability)

    fun open(dir: Path, durability: Durability = Durability.Sync): Wal = Kwal.open(options(dir, durability))

    /** Runs [body] on a log in a fresh directory, closed and deleted afterwards. */
    @OptIn(ExperimentalPathApi::class)
    suspend fun <R> withLog(durability: Durability = Durability.Sync, body: suspend (Wal, Path) -> R): R {
        val dir = Files.createTempDirectory("kwal-typed")
        try {
            return open(dir, durability).use { body(it, dir) }
        } finally {
            dir.deleteRecursively()
        }
    }
}

@Serializable
enum class Side { BUY, SELL }

@Serializable
data class Order(val id: Long, val symbol: String, val side: Side, val quantity: Int, val note: String = "")
