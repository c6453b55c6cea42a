package dev.kwal.samples

import dev.kwal.WalOptions
import dev.kwal.engine.Kwal
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.nulls.shouldBeNull
import io.kotest.matchers.shouldBe
import java.nio.file.Files
import java.nio.file.Path
import kotlin.io.path.ExperimentalPathApi
import kotlin.io.path.deleteRecursively
import kotlin.io.path.listDirectoryEntries
import kotlin.io.path.name
import kotlin.io.path.writeText
import kotlin.random.Random

/** The event-sourced key-value store: state rebuilt by replay, and snapshots that bound the replay to the tail. */
@OptIn(ExperimentalPathApi::class)
class KeyValueStoreSpec :
    FunSpec({
        fun options(dir: Path) = WalOptions(dir.resolve("wal"), segmentSize = 4 shl 20)

        /** Opens the store in [dir], runs [body], closes the log. */
        suspend fun <R> withStore(dir: Path, body: suspend (KeyValueStore) -> R): R =
            Kwal.open(options(dir)).use { wal -> body(KeyValueStore.open(wal, dir.resolve("snapshots"))) }

        /** Random puts and deletes over a few keys, applied to the store and to [model]. */
        suspend fun KeyValueStore.churn(n: Int, random: Random, model: MutableMap<String, String>) {
            repeat(n) {
                val key = "k${random.nextInt(20)}"
                if (random.nextInt(4) == 0) {
                    delete(key)
                    model.remove(key)
                } else {
                    val value = "v${random.nextLong()}"
                    put(key, value)
                    model[key] = value
                }
            }
        }

        test("without a snapshot, open replays every command and rebuilds the state") {
            val dir = Files.createTempDirectory("kwal-kv")
            val model = HashMap<String, String>()
            withStore(dir) { store ->
                store.loadedSnapshot.shouldBeNull()
                store.replayedOnOpen shouldBe 0
                store.churn(120, Random(1), model)
                store.entries() shouldBe model.toSortedMap()
            }
            withStore(dir) { store ->
                store.loadedSnapshot.shouldBeNull()
                store.replayedOnOpen shouldBe 120
                store.position() shouldBe 120
                store.entries() shouldBe model.toSortedMap()
            }
            dir.deleteRecursively()
        }

        test("after a snapshot, a restart loads it and replays only the commands after it") {
            val dir = Files.createTempDirectory("kwal-kv")
            val model = HashMap<String, String>()
            val random = Random(2)
            withStore(dir) { store ->
                store.churn(100, random, model)
                store.snapshot() shouldBe 100
                store.churn(7, random, model)
            }
            withStore(dir) { store ->
                store.loadedSnapshot shouldBe 100
                store.replayedOnOpen shouldBe 7 // the tail only, not 107
                store.position() shouldBe 107
                store.entries() shouldBe model.toSortedMap()
                // A second snapshot replaces the first; the next restart replays nothing.
                store.churn(30, random, model)
                store.snapshot() shouldBe 137
            }
            dir.resolve("snapshots").listDirectoryEntries().map { it.name } shouldBe listOf("snapshot-137.json")
            withStore(dir) { store ->
                store.loadedSnapshot shouldBe 137
                store.replayedOnOpen shouldBe 0
                store.entries() shouldBe model.toSortedMap()
            }
            dir.deleteRecursively()
        }

        test("a snapshot written but never committed (a crash in between) is ignored and deleted") {
            val dir = Files.createTempDirectory("kwal-kv")
            val model = HashMap<String, String>()
            withStore(dir) { store ->
                store.churn(40, Random(3), model)
                store.snapshot() shouldBe 40
                store.churn(5, Random(4), model)
            }
            // What a crash between writing snapshot-45.json and committing position 45 leaves behind (and garbage).
            dir.resolve("snapshots/snapshot-45.json").writeText("""{"position":45,"entries":{"bogus":"x"}}""")
            withStore(dir) { store ->
                store.loadedSnapshot shouldBe 40
                store.replayedOnOpen shouldBe 5
                store.get("bogus").shouldBeNull()
                store.entries() shouldBe model.toSortedMap()
            }
            dir.resolve("snapshots").listDirectoryEntries().map { it.name } shouldBe listOf("snapshot-40.json")
            dir.deleteRecursively()
        }
    })
