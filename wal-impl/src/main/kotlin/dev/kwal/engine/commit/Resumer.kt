package dev.kwal.engine.commit

import kotlinx.coroutines.CancellableContinuation
import kotlinx.coroutines.CoroutineDispatcher
import kotlin.coroutines.ContinuationInterceptor
import kotlin.coroutines.resume

/**
 * Resumes a group's appenders in bulk: the kwal thread finishing a group hands its callers, in chunks of at most
 * [CHUNK], to a task on the callers' own dispatcher, which resumes them there.
 *
 * Resuming a suspended caller (`cont.resume`) is not cheap: it detaches the continuation from its caller's job and
 * dispatches a task, and from a thread that is not the dispatcher's own, that task goes through the dispatcher's
 * shared queue. With a thousand callers a group, all of that was paid on the thread the next sync waits for (a profile
 * at 1,024 durable appenders put two thirds of the sync thread's samples in it) and contended on that queue. A chunk
 * costs the finishing thread one dispatch; on the dispatcher's thread each resume dispatches its caller as before, but
 * into that thread's own queue, from which the dispatcher's other threads steal. So each caller still runs as a task
 * of its own, on its own dispatcher, in its own context; none of them runs on a kwal thread or waits for another.
 *
 * A continuation whose interceptor is not a [CoroutineDispatcher], or whose dispatcher needs no dispatch
 * (`Dispatchers.Unconfined`), is resumed at once on the finishing thread, as before. A cancelled one is skipped (its
 * resume would do nothing).
 *
 * Not thread-safe: one instance per [Completer], used by whichever thread finishes groups (one at a time); every
 * [Completer.finish] ends with [flush] (or [discard]), so no chunk is left for another thread.
 */
internal class Resumer {
    private var chunk: Chunk? = null

    /** Resumes [cont] with [value], or adds it to the chunk being gathered; [flush] dispatches that chunk. */
    fun resume(cont: CancellableContinuation<Long>, value: Long) {
        if (!cont.isActive) return
        val context = cont.context
        val dispatcher = context[ContinuationInterceptor] as? CoroutineDispatcher
        if (dispatcher == null || !dispatcher.isDispatchNeeded(context)) {
            cont.resume(value)
            return
        }
        var c = chunk
        if (c != null && (c.dispatcher !== dispatcher || c.size == CHUNK)) {
            c.dispatch()
            c = null
        }
        if (c == null) {
            c = Chunk(dispatcher)
            chunk = c
        }
        c.add(cont, value)
    }

    /** Dispatches the chunk being gathered, if any. */
    fun flush() {
        chunk?.dispatch()
        chunk = null
    }

    /** Drops the chunk being gathered without resuming its callers: they are to be failed instead. */
    fun discard() {
        chunk = null
    }

    /** Callers of one dispatcher, resumed by one task there. */
    private class Chunk(val dispatcher: CoroutineDispatcher) : Runnable {
        private val conts = arrayOfNulls<CancellableContinuation<Long>>(CHUNK)
        private val values = LongArray(CHUNK)
        var size = 0
            private set

        fun add(cont: CancellableContinuation<Long>, value: Long) {
            conts[size] = cont
            values[size] = value
            size++
        }

        fun dispatch() {
            dispatcher.dispatch(conts[0]!!.context, this)
        }

        override fun run() {
            for (i in 0 until size) conts[i]!!.resume(values[i])
        }
    }

    internal companion object {
        /** Most callers one task resumes. */
        const val CHUNK = 32
    }
}
