package dev.kwal

import io.kotest.core.spec.style.FunSpec
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.withTimeout
import java.nio.file.Path
import java.util.concurrent.ConcurrentLinkedQueue
import kotlin.time.Duration.Companion.seconds

/**
 * Helpers for the contract specs: temp directories deleted after the spec, and replay with a timeout.
 */
object Contract {
    /** Long enough for anything these specs do on a busy 2-core machine; only hit when something hangs. */
    val HANG = 30.seconds

    /** Returns a function creating fresh directories that are deleted after the spec. */
    fun dirs(spec: FunSpec): () -> Path {
        val created = ConcurrentLinkedQueue<Path>()
        spec.afterSpec { created.forEach { it.toFile().deleteRecursively() } }
        return { TestLogs.tempDir("kwal-contract").also(created::add) }
    }

    /** Every record of [topic] from [from], read with [Wal.replay]. */
    suspend fun Wal.readAll(topic: String, from: Long = 0): List<Record> =
        withTimeout(HANG) { replay(topic, from).toList() }

    /** The payloads of [records] as strings, for readable failure messages. */
    fun List<Record>.seqs(): List<Long> = map { it.sequence }

    /** A payload that names its writer; decodes back with [String]. */
    fun tag(s: String): ByteArray = s.encodeToByteArray()
}
