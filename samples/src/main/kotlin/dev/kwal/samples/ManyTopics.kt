package dev.kwal.samples

import dev.kwal.WalOptions
import dev.kwal.engine.Kwal
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import java.nio.channels.FileChannel
import java.nio.file.Files
import java.nio.file.Path
import kotlin.io.path.listDirectoryEntries

/**
 * What 10,000 topics cost: [TOPICS] topics of [PER_TOPIC] records of 100 bytes each, appended durably from 256
 * coroutines. Prints the bytes of log data written (the end of the data in the segments), the files in the
 * directory, and the throughput. Run it under `strace -f -c -e trace=pwrite64,write,fdatasync,fsync` to count
 * the system calls per group commit.
 *
 * Usage: `ManyTopics [directory]`.
 */
fun main(args: Array<String>) = runBlocking {
    val dir = args.getOrNull(0)?.let(Path::of) ?: Files.createTempDirectory("kwal-topics")
    val payload = ByteArray(100) { it.toByte() }
    val wal = withContext(Dispatchers.IO) { Kwal.open(WalOptions(dir)) }
    val start = System.nanoTime()
    withContext(Dispatchers.Default) {
        coroutineScope {
            repeat(256) { c ->
                launch { for (t in c until TOPICS step 256) repeat(PER_TOPIC) { wal.append("topic-$t", payload) } }
            }
        }
    }
    val seconds = (System.nanoTime() - start) / 1e9
    val records = TOPICS * PER_TOPIC
    println(
        "%,d topics x %d records of 100 B: %.2f s, %,.0f records/s".format(
            TOPICS,
            PER_TOPIC,
            seconds,
            records / seconds,
        ),
    )
    withContext(Dispatchers.IO) { wal.close() }
    var data = 0L
    for (f in dir.listDirectoryEntries("seg-*.kwal")) data += dataBytes(f)
    println(
        "log data: %,d bytes (%.0f bytes per record, payload 100); files: %s".format(
            data,
            data.toDouble() / records,
            dir.listDirectoryEntries().map {
                "${it.fileName} (${Files.size(it) shr 20} MiB)"
            },
        ),
    )
}

private const val TOPICS = 10_000
private const val PER_TOPIC = 3

/** Where a segment's data ends: the last non-zero byte past the header, plus one. */
private fun dataBytes(file: Path): Long = FileChannel.open(file).use { ch ->
    val map = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size())
    var i = map.limit()
    while (i >= 8 && map.getLong(i - 8) == 0L) i -= 8
    while (i > 64 && map.get(i - 1).toInt() == 0) i--
    maxOf(0, i - 64).toLong()
}
