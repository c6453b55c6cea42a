package dev.kwal.engine.storage

/**
 * One topic's state.
 *
 * [reserved] is the writer's: the next sequence it will assign, including records written but not yet
 * acknowledged. [acked] is published by the acknowledging thread after the records below it are durable
 * under their durability; readers never look past it.
 */
internal class Topic(val id: Int, val name: String) {
    /** Writer thread only. */
    var reserved: Long = 0

    /** Writer thread only: this topic's requests in the group being built. */
    var groupHead: Any? = null
    var groupTail: Any? = null

    @Volatile var acked: Long = 0

    /**
     * False once a rolled-back registration removed this topic from its table: a caller that looked it up
     * before then must look the name up again, or it would write under an id that another topic may take.
     */
    @Volatile var registered: Boolean = true

    val index = BlockIndex()

    override fun toString(): String = "topic $id '$name'"
}
