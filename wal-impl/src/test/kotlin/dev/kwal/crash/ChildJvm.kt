package dev.kwal.crash

import java.io.File
import java.io.InputStreamReader
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import kotlin.reflect.KClass

/** One acknowledgement a child printed: `ACK <topic> <seq> <crc>`. */
data class Ack(val topic: String, val seq: Long, val crc: Long)

/**
 * A child JVM running the `main` of a test-source object, with the test JVM's classpath.
 *
 * Its stdout is read on a daemon thread: only complete lines (ended by `\n`) count, so a line cut short by
 * SIGKILL is ignored rather than misread. `ACK` lines go to [acks]; `READY` and `ERROR` lines are noted.
 * Stderr goes to a file, shown by [describe]. The child exits by itself when its stdin closes (see
 * [CrashOptions.exitWhenParentGoes]), so even a test JVM that dies leaves no orphan.
 */
class ChildJvm private constructor(val process: Process, private val stderr: Path, val name: String) : AutoCloseable {
    val acks: MutableList<Ack> = CopyOnWriteArrayList()
    private val ready = CountDownLatch(1)

    @Volatile var error: String? = null
        private set

    @Volatile var readyLine: String? = null
        private set

    @Volatile var malformed: String? = null
        private set
    private val eof = CountDownLatch(1)

    private val reader = Thread({
        try {
            InputStreamReader(process.inputStream, Charsets.UTF_8).use { input ->
                val line = StringBuilder()
                val buf = CharArray(8192)
                while (true) {
                    val n = input.read(buf)
                    if (n < 0) break
                    for (i in 0 until n) {
                        val c = buf[i]
                        if (c == '\n') {
                            onLine(line.toString())
                            line.setLength(0)
                        } else {
                            line.append(c)
                        }
                    }
                }
            }
        } catch (_: Throwable) {
        } finally {
            ready.countDown()
            eof.countDown()
        }
    }, "child-stdout-$name").apply {
        isDaemon = true
        start()
    }

    private fun onLine(line: String) {
        when {
            line.startsWith("ACK ") -> {
                val parts = line.split(' ')
                val ack = if (parts.size == 4) {
                    runCatching { Ack(parts[1], parts[2].toLong(), parts[3].toLong(16)) }.getOrNull()
                } else {
                    null
                }
                if (ack != null) {
                    acks.add(ack)
                } else if (malformed == null) {
                    malformed = line
                }
            }

            line.startsWith("READY") -> {
                readyLine = line
                ready.countDown()
            }

            line.startsWith("ERROR") -> {
                error = line
                ready.countDown()
            }
        }
    }

    /** Waits at most [millis] for `READY`; true if it came. */
    fun awaitReady(millis: Long): Boolean = ready.await(millis, TimeUnit.MILLISECONDS) && readyLine != null

    /**
     * Waits at most [millis] until [acks] holds [count] entries or the child is gone — or, with [stallMillis], until no
     * new acknowledgement came for that long (a stalled child); returns how many it holds.
     */
    fun awaitAcks(count: Int, millis: Long, stallMillis: Long = Long.MAX_VALUE): Int {
        val deadline = System.nanoTime() + millis * 1_000_000
        var seen = acks.size
        var progress = System.nanoTime()
        while (acks.size < count && process.isAlive && System.nanoTime() < deadline) {
            Thread.sleep(5)
            val now = acks.size
            if (now != seen) {
                seen = now
                progress = System.nanoTime()
            } else if ((System.nanoTime() - progress) / 1_000_000 >= stallMillis) {
                break
            }
        }
        return acks.size
    }

    /** SIGKILL (on Linux `destroyForcibly` sends SIGKILL), wait for exit, then for the rest of its stdout. */
    fun kill(millis: Long = 10_000): Boolean {
        process.destroyForcibly()
        val exited = process.waitFor(millis, TimeUnit.MILLISECONDS)
        eof.await(millis, TimeUnit.MILLISECONDS)
        return exited
    }

    /**
     * The usual crash cycle: waits for READY, then for [acks] acknowledgements (failing on a stall of [stallMillis]),
     * SIGKILLs the child and checks it printed no error and no malformed line; returns what it acknowledged.
     */
    fun killAfter(acks: Int, millis: Long, stallMillis: Long = 10_000): List<Ack> {
        check(awaitReady(30_000)) { "not ready: ${describe()}" }
        awaitAcks(acks, millis, stallMillis)
        check(kill()) { "did not exit: ${describe()}" }
        check(error == null && malformed == null) { describe() }
        return acks()
    }

    private fun acks(): List<Ack> = acks.toList()

    /** Pid, exit status, counts and the tail of stderr, for failure messages. */
    fun describe(): String {
        val exit = if (process.isAlive) "alive" else "exit=${process.exitValue()}"
        val err = runCatching { Files.readAllLines(stderr).takeLast(30).joinToString("\n") }.getOrDefault("")
        return "child $name pid=${process.pid()} $exit acks=${acks.size} " +
            "ready=$readyLine error=$error malformed=$malformed" +
            (if (err.isNotBlank()) "\n--- child stderr (tail) ---\n$err" else "")
    }

    override fun close() {
        if (closed.compareAndSet(false, true)) {
            if (process.isAlive) kill()
            runCatching { process.outputStream.close() }
            runCatching { Files.deleteIfExists(stderr) }
        }
    }

    private val closed = AtomicBoolean(false)

    companion object {
        /**
         * The child's classpath. Surefire (3.6, default `useManifestOnlyJar`) starts the test JVM as
         * `java -jar target/surefire/surefirebooter-*.jar` (checked: `sun.java.command` in the report
         * XML), a manifest-only jar whose `Class-Path` names the real entries. Its booter then sets both
         * `surefire.test.class.path` and `java.class.path` to the real test classpath (test-classes,
         * classes, wal-api, every dependency jar), so either works; we prefer the Surefire property and
         * fall back to `java.class.path` outside Surefire (an IDE, a plain `java -cp`).
         */
        fun classpath(): String = System.getProperty("surefire.test.class.path")?.takeIf { it.isNotBlank() }
            ?: System.getProperty("java.class.path")

        /** Where [classpath] came from, for the log. */
        fun classpathSource(): String {
            val surefire = System.getProperty("surefire.test.class.path")
            val jcp = System.getProperty("java.class.path")
            return if (!surefire.isNullOrBlank()) {
                "surefire.test.class.path (${surefire.split(File.pathSeparator).size} entries; java.class.path=$jcp)"
            } else {
                "java.class.path (${jcp.split(File.pathSeparator).size} entries)"
            }
        }

        /** The `java` launcher of the running JVM. */
        fun javaBin(): String {
            val home = File(System.getProperty("java.home"), "bin/java")
            if (home.canExecute()) return home.path
            return ProcessHandle.current().info().command().orElse("java")
        }

        fun start(main: KClass<*>, vararg args: String): ChildJvm {
            val name = main.simpleName ?: "child"
            val stderr = Files.createTempFile("kwal-child-$name", ".err")
            val cmd = listOf(
                javaBin(), "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k",
                "-cp", classpath(), main.java.name, *args,
            )
            val process = ProcessBuilder(cmd)
                .redirectError(ProcessBuilder.Redirect.to(stderr.toFile()))
                .start()
            return ChildJvm(process, stderr, "$name-${process.pid()}")
        }
    }
}
