package dev.kwal.samples

import dev.kwal.Wal
import dev.kwal.WalOptions
import dev.kwal.engine.Kwal
import dev.kwal.typed.TopicFormats
import dev.kwal.typed.TypedTopic
import dev.kwal.typed.topic
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import kotlinx.coroutines.withContext
import kotlinx.serialization.Serializable
import java.nio.channels.FileChannel
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.StandardCopyOption
import java.nio.file.StandardOpenOption
import kotlin.io.path.createDirectories
import kotlin.io.path.deleteIfExists
import kotlin.io.path.listDirectoryEntries
import kotlin.io.path.name
import kotlin.io.path.readText

/** A command of the key-value store: what is appended to its topic, one per change. */
@Serializable
data class KvCommand(val op: Op, val key: String, val value: String = "") {
    @Serializable
    enum class Op { PUT, DELETE }
}

/** The store's state at [position]: every command below it applied. */
@Serializable
data class KvSnapshot(val position: Long, val entries: Map<String, String>)

/**
 * An event-sourced key-value store: every change is a [KvCommand] appended to the typed topic [TOPIC], and the state
 * is what replaying those commands gives.
 *
 * Snapshots bound the replay. [snapshot] writes the state and the position it covers to `snapshot-<position>.json`
 * (written to a temporary file, synced, renamed, directory synced), and only then commits the position as consumer
 * [CONSUMER]'s cursor in the topic. The cursor is the commit point: [open] loads the snapshot of the committed
 * position and replays only the commands from it on. A crash after the file is written but before the commit leaves
 * a snapshot that no cursor names, which [open] deletes; a crash before either leaves the previous pair intact.
 *
 * Writes are serialised (a mutex around append and apply), so the state applies commands in sequence order.
 */
class KeyValueStore private constructor(
    private val commands: TypedTopic<KvCommand>,
    private val snapshotDir: Path,
    private val state: MutableMap<String, String>,
    private var applied: Long,
    /** The position of the snapshot [open] loaded, or null if it started from an empty state. */
    val loadedSnapshot: Long?,
    /** How many commands [open] replayed on top of the snapshot. */
    val replayedOnOpen: Long,
) {
    private val lock = Mutex()

    /** The value of [key], or null. */
    suspend fun get(key: String): String? = lock.withLock { state[key] }

    /** A copy of every entry, sorted by key. */
    suspend fun entries(): Map<String, String> = lock.withLock { state.toSortedMap() }

    /** The first command sequence the state does not include yet. */
    suspend fun position(): Long = lock.withLock { applied }

    /** Sets [key] to [value] durably; returns the command's sequence. */
    suspend fun put(key: String, value: String): Long = execute(KvCommand(KvCommand.Op.PUT, key, value))

    /** Removes [key] durably; returns the command's sequence. */
    suspend fun delete(key: String): Long = execute(KvCommand(KvCommand.Op.DELETE, key))

    private suspend fun execute(command: KvCommand): Long = lock.withLock {
        val seq = commands.append(command)
        check(seq == applied) { "command $seq appended while the store is at $applied: another writer?" }
        apply(state, command)
        applied = seq + 1
        seq
    }

    /** Writes a snapshot of the current state and commits its position; returns the position. */
    suspend fun snapshot(): Long = lock.withLock {
        val snapshot = KvSnapshot(applied, state.toSortedMap())
        withContext(Dispatchers.IO) { writeSnapshot(snapshotDir, snapshot) }
        commands.commit(CONSUMER, snapshot.position) // the commit point: from now on open() starts here
        withContext(Dispatchers.IO) { deleteSnapshotsExcept(snapshotDir, snapshot.position) }
        snapshot.position
    }

    companion object {
        const val TOPIC = "kv-commands"
        const val CONSUMER = "kv-snapshot"

        /** Opens the store kept in [wal] with its snapshots in [snapshotDir]: loads the snapshot, replays the rest. */
        suspend fun open(wal: Wal, snapshotDir: Path): KeyValueStore {
            val commands = wal.topic<KvCommand>(TOPIC)
            withContext(Dispatchers.IO) { snapshotDir.createDirectories() }
            val committed = commands.committed(CONSUMER)
            val state = HashMap<String, String>()
            if (committed != null) {
                val snapshot = withContext(Dispatchers.IO) { readSnapshot(snapshotDir, committed) }
                check(snapshot.position == committed) { "snapshot file for $committed holds ${snapshot.position}" }
                state.putAll(snapshot.entries)
            }
            // Anything else is a snapshot written but never committed (a crash in between), or an old one.
            withContext(Dispatchers.IO) { deleteSnapshotsExcept(snapshotDir, committed ?: -1) }
            var applied = committed ?: 0L
            var replayed = 0L
            commands.replay(from = applied).collect { command ->
                check(command.sequence == applied) { "expected command $applied, read ${command.sequence}" }
                apply(state, command.value)
                applied++
                replayed++
            }
            return KeyValueStore(commands, snapshotDir, state, applied, committed, replayed)
        }

        private fun apply(state: MutableMap<String, String>, command: KvCommand) {
            when (command.op) {
                KvCommand.Op.PUT -> state[command.key] = command.value
                KvCommand.Op.DELETE -> state.remove(command.key)
            }
        }

        private fun fileOf(dir: Path, position: Long): Path = dir.resolve("snapshot-$position.json")

        private fun readSnapshot(dir: Path, position: Long): KvSnapshot =
            TopicFormats.json.decodeFromString(KvSnapshot.serializer(), fileOf(dir, position).readText())

        private fun writeSnapshot(dir: Path, snapshot: KvSnapshot) {
            val bytes = TopicFormats.json.encodeToString(KvSnapshot.serializer(), snapshot).encodeToByteArray()
            val tmp = dir.resolve("snapshot-${snapshot.position}.json.tmp")
            FileChannel.open(
                tmp,
                StandardOpenOption.CREATE,
                StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING,
            ).use { ch ->
                val buf = java.nio.ByteBuffer.wrap(bytes)
                while (buf.hasRemaining()) ch.write(buf)
                ch.force(true)
            }
            Files.move(tmp, fileOf(dir, snapshot.position), StandardCopyOption.ATOMIC_MOVE)
            FileChannel.open(dir, StandardOpenOption.READ).use { it.force(true) } // the rename, durable
        }

        private fun deleteSnapshotsExcept(dir: Path, keep: Long) {
            for (f in dir.listDirectoryEntries("snapshot-*")) {
                if (f.name != fileOf(dir, keep).name) f.deleteIfExists()
            }
        }
    }
}

/**
 * The key-value store, run twice over one directory: the second run loads the snapshot the first took and replays
 * only the commands written after it.
 *
 * `mvn -B -ntp -q -pl samples -am -DskipTests package exec:java -Dexec.mainClass=dev.kwal.samples.KeyValueStoreKt`
 * (a fresh temporary directory, or the one given as the first argument).
 */
fun main(args: Array<String>): Unit = runBlocking {
    val dir: Path = args.firstOrNull()?.let(Path::of) ?: Files.createTempDirectory("kwal-kv")
    val walDir = dir.resolve("wal")
    val snapshots = dir.resolve("snapshots")

    openLog(walDir).use { wal ->
        val store = KeyValueStore.open(wal, snapshots)
        println("Run 1: opened an empty store (snapshot: ${store.loadedSnapshot}, replayed ${store.replayedOnOpen})")
        for (i in 1..50) store.put("user:${i % 10}", "v$i")
        store.delete("user:0")
        val at = store.snapshot()
        println("Run 1: 51 commands, snapshot at position $at (${store.entries().size} keys)")
        store.put("user:1", "changed after the snapshot")
        store.delete("user:2")
        store.put("user:42", "new")
        println("Run 1: 3 more commands; position ${store.position()}")
    }

    openLog(walDir).use { wal ->
        val store = KeyValueStore.open(wal, snapshots)
        println(
            "Run 2: loaded snapshot at position ${store.loadedSnapshot}, replayed ${store.replayedOnOpen} commands, " +
                "position ${store.position()}",
        )
        println("Run 2: user:1=${store.get("user:1")} user:2=${store.get("user:2")} user:42=${store.get("user:42")}")
        println("Run 2: ${store.entries().size} keys: ${store.entries().keys.joinToString(" ")}")
    }
    println("Snapshots: ${snapshots.listDirectoryEntries().map { it.name }.sorted().joinToString(" ")}")
}

private suspend fun openLog(dir: Path): Wal =
    withContext(Dispatchers.IO) { Kwal.open(WalOptions(dir, segmentSize = 4 shl 20)) }
