package dev.kwal.engine.commit

import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.types.shouldBeSameInstanceAs
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.suspendCancellableCoroutine
import java.io.IOException

/** [RequestQueue]: the byte bound, parking in order, idleness, and what close and fail do with parked requests. */
class RequestQueueSpec :
    FunSpec({
        fun request(bytes: Int) = AppendRequest("t", null, ByteArray(bytes), null, sync = true)

        test("requests past the bound are parked in order and moved in as the writer takes room") {
            val q = RequestQueue(maxBytes = 1_000)
            val rs = List(5) { request(400) } // each counts 400 + frame header + overhead: one fits with room to spare
            rs.forEach { q.offer(it) shouldBe true }
            q.isIdle shouldBe false
            for (r in rs) {
                q.tryReceive() shouldBeSameInstanceAs r
                q.tryReceive() shouldBe null // the next is parked: this one still counts until taken
                q.isIdle shouldBe false
                q.taken(1, r.queuedBytes)
            }
            q.isIdle shouldBe true
        }

        test("a request larger than the bound goes in alone, and nothing overtakes it") {
            val q = RequestQueue(maxBytes = 100)
            val small = request(1)
            val big = request(10_000)
            val after = request(1)
            q.offer(small) shouldBe true
            q.offer(big) shouldBe true
            q.offer(after) shouldBe true
            q.tryReceive() shouldBeSameInstanceAs small
            q.tryReceive() shouldBe null
            q.taken(1, small.queuedBytes)
            q.tryReceive() shouldBeSameInstanceAs big
            q.tryReceive() shouldBe null
            q.taken(1, big.queuedBytes)
            q.tryReceive() shouldBeSameInstanceAs after
        }

        test("close lets parked requests through first; fail fails them; neither accepts new ones") {
            val q = RequestQueue(maxBytes = 1)
            val a = request(10)
            val b = request(10)
            q.offer(a)
            q.offer(b)
            q.close()
            q.offer(request(1)) shouldBe false
            q.tryReceive() shouldBeSameInstanceAs a
            q.taken(1, a.queuedBytes)
            q.tryReceive() shouldBeSameInstanceAs b
            q.taken(1, b.queuedBytes)
            q.receive() shouldBe null

            val f = RequestQueue(maxBytes = 1)
            val c = request(10)
            val d = request(10)
            runBlocking {
                // d is parked with its caller suspended: fail resumes that caller with the error
                val caller = CoroutineScope(Dispatchers.Unconfined).async(start = CoroutineStart.UNDISPATCHED) {
                    suspendCancellableCoroutine<Long> { cont -> d.cont = cont }
                }
                f.offer(c)
                f.offer(d)
                f.fail(IOException("stop"))
                val thrown = runCatching { caller.await() }.exceptionOrNull()
                (thrown is IOException && thrown.message == "stop") shouldBe true
            }
            f.offer(request(1)) shouldBe false
            f.tryReceive() shouldBeSameInstanceAs c // the writer fails what the channel still holds
        }
    })
