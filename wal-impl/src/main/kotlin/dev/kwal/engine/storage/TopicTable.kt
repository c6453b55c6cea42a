package dev.kwal.engine.storage

import java.util.concurrent.ConcurrentHashMap

/**
 * The topic registry in memory: names to topics, ids to topics. Topic 0 is the registry itself — its
 * records are the names of topics 1, 2, 3, ... in order, so a topic's id is its registry sequence + 1.
 *
 * The writer thread adds and removes (on rollback) topics; lookups by name are safe from any thread.
 */
internal class TopicTable {
    val registry = Topic(0, "")
    private val byName = ConcurrentHashMap<String, Topic>()
    private val byId = ArrayList<Topic>().apply { add(registry) }

    operator fun get(name: String): Topic? = byName[name]

    fun byId(id: Int): Topic? = if (id in 1 until byId.size) byId[id] else null

    /** The user topics (not the engine's [Topic.internal] ones) that have an acknowledged record. */
    fun visibleNames(): Set<String> = byName.values.filter { it.acked > 0 && !it.internal }.mapTo(HashSet()) { it.name }

    val count: Int get() = byId.size - 1

    /** Wakes the followers of every topic, and those waiting for a topic to appear (see [Topic.wake]). */
    fun wakeAll() {
        registry.wake()
        for (t in byName.values) t.wake()
    }

    /** Registers [name] under the next id. Writer thread (or recovery) only. */
    fun add(name: String): Topic {
        val t = Topic(byId.size, name)
        byId.add(t)
        byName[name] = t
        return t
    }

    /** Unregisters the newest topic, which must be [t]: a rolled-back registration. */
    fun removeLast(t: Topic) {
        check(byId.last() === t)
        byId.removeAt(byId.size - 1)
        byName.remove(t.name)
        t.registered = false
    }
}
