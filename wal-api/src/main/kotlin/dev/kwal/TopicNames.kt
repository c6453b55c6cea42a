package dev.kwal

/**
 * The rules for topic names.
 *
 * A valid name is 1 to [MAX_BYTES] bytes of UTF-8, has no control characters (U+0000–U+001F,
 * U+007F–U+009F), no `/` or `\`, does not contain `..`, and is not `.`. Names are stored inside the log
 * and never become file names; the rules keep them printable and safe to use as paths elsewhere.
 */
public object TopicNames {
    /** The longest name, in UTF-8 bytes. */
    public const val MAX_BYTES: Int = 255

    /** Returns the reason [name] is invalid, or `null` if it is valid. */
    @JvmStatic
    public fun problem(name: String): String? {
        if (name.isEmpty()) return "empty"
        if (name == ".") return "'.' is reserved"
        if (name.contains("..")) return "contains '..'"
        for (c in name) {
            if (c.code < 0x20 || c.code in 0x7F..0x9F) return "contains control character U+%04X".format(c.code)
            if (c == '/' || c == '\\') return "contains '$c'"
        }
        var bytes = 0
        var i = 0
        while (i < name.length) {
            val c = name[i]
            bytes += when {
                c.code < 0x80 -> 1

                c.code < 0x800 -> 2

                Character.isHighSurrogate(c) && i + 1 < name.length && Character.isLowSurrogate(name[i + 1]) -> {
                    i++
                    4
                }

                Character.isSurrogate(c) -> return "contains an unpaired surrogate"

                else -> 3
            }
            i++
        }
        if (bytes > MAX_BYTES) return "$bytes UTF-8 bytes, more than $MAX_BYTES"
        return null
    }

    /** Whether [name] is a valid topic name. */
    @JvmStatic
    public fun isValid(name: String): Boolean = problem(name) == null

    /** Returns [name] if valid, or throws [InvalidTopicException] saying why not. */
    @JvmStatic
    public fun validate(name: String): String {
        problem(name)?.let { throw InvalidTopicException(name, it) }
        return name
    }

    internal fun quote(name: String): String {
        val shown = if (name.length > 64) name.take(64) + "…" else name
        return "\"" +
            shown.map {
                if (it.code < 0x20 ||
                    it.code in 0x7F..0x9F
                ) {
                    "\\u%04x".format(it.code)
                } else {
                    it.toString()
                }
            }.joinToString("") +
            "\""
    }
}
