package dev.kwal

import dev.kwal.Contract.seqs
import dev.kwal.engine.Kwal
import io.kotest.assertions.throwables.shouldThrow
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.collect
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.yield
import java.util.Collections

/** [Wal.follow]: existing records, then new ones as they are acknowledged; completes on close. */
class FollowSpec :
    FunSpec({
        val newDir = Contract.dirs(this)

        test("follow emits the existing records, then new ones as they are appended") {
            Kwal.open(TestLogs.small(newDir(), Durability.None)).use { wal ->
                repeat(10) { wal.append("f", TestLogs.payload("f", it.toLong())) }
                withTimeout(Contract.HANG) {
                    withContext(Dispatchers.Default) {
                        val followed = async { wal.follow("f").take(500).toList() }
                        val fromMiddle = async { wal.follow("f", 5).take(495).toList() }
                        for (i in 10L until 500) {
                            if (i % 50 == 0L) {
                                wal.appendBatch("f", (i until i + 10).map { TestLogs.payload("f", it) })
                            } else if (i % 50 in 1L..9L) {
                                continue
                            } else {
                                wal.append("f", TestLogs.payload("f", i))
                            }
                            if (i % 3 == 0L) yield()
                        }
                        val all = followed.await()
                        all.seqs() shouldBe (0L until 500).toList()
                        all.forEach { it.payload shouldBe TestLogs.payload("f", it.sequence) }
                        fromMiddle.await().seqs() shouldBe (5L until 500).toList()
                    }
                }
            }
        }

        test("follow of a topic that does not exist yet waits for its first record") {
            Kwal.open(TestLogs.small(newDir())).use { wal ->
                withTimeout(Contract.HANG) {
                    withContext(Dispatchers.Default) {
                        val started = CompletableDeferred<Unit>()
                        val followed = async {
                            started.complete(Unit)
                            wal.follow("later").take(3).toList()
                        }
                        started.await()
                        wal.append("other", byteArrayOf(0))
                        wal.appendBatch("later", listOf(byteArrayOf(1), byteArrayOf(2), byteArrayOf(3)))
                        followed.await().map { it.payload[0].toInt() } shouldBe listOf(1, 2, 3)
                    }
                }
            }
        }

        test("follow completes normally when the log is closed, after every acknowledged record") {
            val wal = Kwal.open(TestLogs.small(newDir()))
            try {
                withTimeout(Contract.HANG) {
                    withContext(Dispatchers.Default) {
                        val seen = Collections.synchronizedList(ArrayList<Record>())
                        // close only once every follower has caught up (a follower still reading at close: see the
                        // disabled test below)
                        val caughtUp = (0 until 3).map { CompletableDeferred<Unit>() }
                        val followers = (0 until 3).map { f ->
                            launch {
                                val mine = ArrayList<Record>()
                                wal.follow("c").collect {
                                    mine += it
                                    if (it.sequence == 9L) caughtUp[f].complete(Unit)
                                }
                                seen.addAll(mine)
                            }
                        }
                        // a follower waiting on a topic that never appears
                        val idle = async { wal.follow("never").toList() }
                        repeat(10) { wal.append("c", TestLogs.payload("c", it.toLong())) }
                        caughtUp.forEach { it.await() }
                        wal.close()
                        followers.forEach { it.join() }
                        idle.await() shouldBe emptyList()
                        seen.groupBy { it.sequence }.mapValues { it.value.size } shouldBe
                            (0L until 10).associateWith { 3 }
                    }
                }
            } finally {
                wal.close()
            }
        }

        test("a follower that is behind when the log closes still completes normally with every record") {
            val wal = Kwal.open(TestLogs.small(newDir()))
            try {
                val n = 50L
                // one group, hence one block, per append: the follower reads the active segment block by block
                for (i in 0L until n) wal.append("slow", TestLogs.payload("slow", i))
                withTimeout(Contract.HANG) {
                    withContext(Dispatchers.Default) {
                        val gate = CompletableDeferred<Unit>()
                        val firstSeen = CompletableDeferred<Unit>()
                        val followed = async {
                            val got = ArrayList<Record>()
                            wal.follow("slow").collect {
                                got += it
                                if (it.sequence == 0L) {
                                    firstSeen.complete(Unit)
                                    gate.await()
                                }
                            }
                            got
                        }
                        firstSeen.await()
                        wal.close() // while the follower is at record 0 of 50
                        gate.complete(Unit)
                        val got = followed.await()
                        got.seqs() shouldBe (0L until n).toList()
                        got.forEach { it.payload shouldBe TestLogs.payload("slow", it.sequence) }
                    }
                }
            } finally {
                wal.close()
            }
        }

        test("follow of an invalid topic name fails with InvalidTopicException when collected") {
            Kwal.open(TestLogs.small(newDir())).use { wal ->
                shouldThrow<InvalidTopicException> { withTimeout(Contract.HANG) { wal.follow("../x").toList() } }
            }
        }
    })
