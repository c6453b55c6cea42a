package dev.kwal.engine.storage

import java.util.concurrent.ConcurrentHashMap

/**
 * The topic registry in memory: names to topics, ids to topics. Topic 0 is the registry itself — its
 * records are the names of topics 1, 2, 3, ... in order, so a topic's id is its registry sequence + 1.
 *
 * The writer thread adds and removes (on rollback) topics; lookups by name and by id are safe from any thread (a
 * lookup racing a rollback may find the topic or not).
 */
internal class TopicTable {
    val registry = Topic(0, "")
    private val byName = ConcurrentHashMap<String, Topic>()

    /** Topics by id, [registry] first; grown by copying, entries written before [size] is raised. */
    @Volatile private var byId = arrayOfNulls<Topic>(16).also { it[0] = registry }

    @Volatile private var size = 1

    operator fun get(name: String): Topic? = byName[name]

    fun byId(id: Int): Topic? = if (id in 1 until size) byId[id] else null

    /** The user topics (not the engine's [Topic.internal] ones) that have an acknowledged record. */
    fun visibleNames(): Set<String> = byName.values.filter { it.acked > 0 && !it.internal }.mapTo(HashSet()) { it.name }

    val count: Int get() = size - 1

    /** Wakes the followers of every topic, and those waiting for a topic to appear (see [Topic.wake]). */
    fun wakeAll() {
        registry.wake()
        for (t in byName.values) t.wake()
    }

    /** Registers [name] under the next id. Writer thread (or recovery) only. */
    fun add(name: String): Topic {
        val n = size
        val t = Topic(n, name)
        if (n == byId.size) byId = byId.copyOf(n * 2)
        byId[n] = t
        size = n + 1
        byName[name] = t
        return t
    }

    /** Unregisters the newest topic, which must be [t]: a rolled-back registration. */
    fun removeLast(t: Topic) {
        val n = size
        check(byId[n - 1] === t)
        size = n - 1
        byId[n - 1] = null
        byName.remove(t.name)
        t.registered = false
    }
}
