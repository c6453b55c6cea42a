package dev.kwal.samples

import dev.kwal.Wal
import dev.kwal.WalOptions
import dev.kwal.engine.Kwal
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.atomic.AtomicLong
import kotlin.io.path.fileSize
import kotlin.io.path.listDirectoryEntries
import kotlin.io.path.name

/**
 * kwal in five minutes: concurrent durable appends, a batch, recovery, replay and follow.
 *
 * Run it with `mvn -B -ntp -q -pl samples -am -DskipTests package exec:java` from the repository root.
 * It writes to a fresh temporary directory, or to the directory given as the first argument.
 */
fun main(args: Array<String>) = runBlocking {
    val dir: Path = args.firstOrNull()?.let(Path::of) ?: Files.createTempDirectory("kwal-quickstart")
    val topics = listOf("orders", "payments", "audit")

    // 1. Open a log with default options: 64 MiB segments, every append acknowledged after fsync
    //    (Durability.Sync). Kwal.open blocks while it recovers the directory, so call it on Dispatchers.IO.
    openWal(dir).use { wal ->
        // 2. 64 coroutines append concurrently. Each append suspends until its record is on disk; the log
        //    gathers whatever is queued into one group and syncs once for all of it (group commit).
        val writers = 64
        val perWriter = 250
        val acknowledged = AtomicLong()
        val started = System.nanoTime()
        withContext(Dispatchers.Default) {
            coroutineScope {
                repeat(writers) { w ->
                    launch {
                        repeat(perWriter) { i ->
                            val topic = topics[(w + i) % topics.size]
                            wal.append(topic, "$topic #$i from writer $w".encodeToByteArray())
                            acknowledged.incrementAndGet()
                        }
                    }
                }
            }
        }
        val seconds = (System.nanoTime() - started) / 1e9
        println(
            "Appended and synced ${acknowledged.get()} records from $writers coroutines " +
                "in %.2f s (%,.0f records/s)".format(seconds, acknowledged.get() / seconds),
        )

        // 3. A batch is written all-or-nothing, with consecutive sequence numbers.
        val refunds = List(5) { "refund $it".encodeToByteArray() }
        val range = wal.appendBatch("payments", refunds)
        println("Batch of ${refunds.size} refunds got sequences $range")
        println("Topics: ${wal.topics().sorted().joinToString { "$it (${wal.nextSequence(it)} records)" }}")
    } // close(): commits and syncs what was accepted, then releases the directory lock.

    // 4. Reopen: recovery checks every block and record checksum and reports what it found.
    openWal(dir).use { wal ->
        println("Reopened: ${wal.recovery}")

        // 5. Replay a topic from any sequence; every record's checksum is verified as it is read.
        println("First records of \"orders\":")
        wal.replay("orders", from = 0).take(3).collect { r ->
            println("  #${r.sequence} ${r.payload.decodeToString()}")
        }

        // 6. Follow a topic: replay, then wait for new records as they are acknowledged.
        val from = wal.nextSequence("audit")
        val follower = launch(Dispatchers.Default) {
            wal.follow("audit", from).take(3).collect { r ->
                println("  follower got #${r.sequence} ${r.payload.decodeToString()}")
            }
        }
        println("Appending 3 records to \"audit\" while a follower listens from #$from:")
        repeat(3) { wal.append("audit", "live event $it".encodeToByteArray()) }
        follower.join() // take(3) ends the follow flow after the three new records
    }

    // 7. The files: fixed-size segments (pre-written with zeros) and the lock file.
    println("Log files in $dir:")
    for (f in dir.listDirectoryEntries().sortedBy { it.name }) println("  ${f.name}  ${f.fileSize()} bytes")
}

/** Opens (creating or recovering) the log in [dir], off the caller's thread. */
private suspend fun openWal(dir: Path): Wal = withContext(Dispatchers.IO) { Kwal.open(WalOptions(dir)) }
