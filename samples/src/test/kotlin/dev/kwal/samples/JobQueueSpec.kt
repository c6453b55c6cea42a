package dev.kwal.samples

import dev.kwal.WalOptions
import dev.kwal.engine.Kwal
import io.kotest.assertions.withClue
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.collections.shouldBeEmpty
import io.kotest.matchers.shouldBe
import java.io.File
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.TimeUnit
import kotlin.io.path.ExperimentalPathApi
import kotlin.io.path.deleteRecursively
import kotlin.random.Random

/**
 * The job queue's worker as a separate JVM, SIGKILLed mid-run and restarted, until every job is done.
 *
 * What is checked, exactly (the worker runs jobs one at a time: record the effect and sync it, then commit):
 * - at each kill, every job below the committed position has an effect (a commit follows its effect), and no job
 *   above it has one (at most the job at the position itself, whose commit the kill prevented);
 * - no committed job runs twice: a job below the position committed at a kill gets no effect after that kill;
 * - no job is lost: at the end the cursor is at the last job + 1 and every job has an effect;
 * - a job has two effects only if it was the one at the committed position at some kill (ran, but not committed).
 */
@OptIn(ExperimentalPathApi::class)
class JobQueueSpec :
    FunSpec({
        test("a worker JVM SIGKILLed mid-run and restarted: no committed job runs twice, no job is lost") {
            val dir = Files.createTempDirectory("kwal-jobs")
            val walDir = dir.resolve("wal")
            val effects = dir.resolve("effects.txt")
            val jobs = 1000L
            fun options() = WalOptions(walDir, segmentSize = 4 shl 20)
            Kwal.open(options()).use { wal ->
                val queue = JobQueue(wal)
                queue.jobs.appendBatch((0 until jobs).map { Job("job-$it", "work $it") }) shouldBe (0L until jobs)
            }

            val random = Random(System.nanoTime())
            val inFlightAtKills = mutableListOf<Long>()
            val frozen = mutableListOf<Pair<Long, Map<Long, Int>>>() // (committed at a kill, effect counts then)
            repeat(5) { round ->
                val worker = WorkerJvm.start(walDir, effects, until = jobs, msPerJob = 0)
                try {
                    val wanted = worker.done.size + random.nextInt(20, 150)
                    withClue(worker.describe()) { worker.awaitDone(wanted, 60_000) shouldBe true }
                    Thread.sleep(0, random.nextInt(0, 999_999)) // anywhere in a job: its effect, sync or commit
                    worker.kill()
                } finally {
                    worker.close()
                }
                val committed = Kwal.open(options()).use { it.committed("worker", JobQueue.TOPIC) ?: 0 }
                val counts = EffectLog.read(effects).groupingBy { it }.eachCount()
                println("JobQueueSpec: kill ${round + 1} at committed=$committed, effect lines=${counts.values.sum()}")
                withClue("kill ${round + 1}: committed $committed, effects $counts") {
                    (0 until committed).filter { (counts[it] ?: 0) < 1 }.shouldBeEmpty()
                    counts.keys.filter { it > committed }.shouldBeEmpty()
                }
                if ((counts[committed] ?: 0) > 0) inFlightAtKills += committed
                frozen += committed to counts
            }

            // The last run, to the end.
            val last = WorkerJvm.start(walDir, effects, until = jobs, msPerJob = 0)
            try {
                withClue(last.describe()) { last.process.waitFor(120, TimeUnit.SECONDS) shouldBe true }
                last.process.exitValue() shouldBe 0
            } finally {
                last.close()
            }

            val counts = EffectLog.read(effects).groupingBy { it }.eachCount()
            Kwal.open(options()).use { it.committed("worker", JobQueue.TOPIC) } shouldBe jobs
            withClue("no job lost") { (0 until jobs).filter { (counts[it] ?: 0) == 0 }.shouldBeEmpty() }
            for ((committed, then) in frozen) {
                withClue("no job committed at a kill (below $committed) ran again after it") {
                    (0 until committed).filter { counts[it] != then[it] }.shouldBeEmpty()
                }
            }
            val twice = counts.filterValues { it > 1 }
            withClue("only a job in flight at a kill ran twice, and only twice: $twice, in flight $inFlightAtKills") {
                twice.keys.filter { it !in inFlightAtKills }.shouldBeEmpty()
                twice.values.filter { it > 2 }.shouldBeEmpty()
            }
            println("JobQueueSpec: $jobs jobs, ${counts.values.sum()} effects, rerun after a kill: ${twice.keys}")
            dir.deleteRecursively()
        }
    })

/** The job queue's worker main in a child JVM (`JobQueueKt worker ...`), its `DONE` lines collected. */
private class WorkerJvm(val process: Process, private val stderr: Path) : AutoCloseable {
    val done: MutableList<String> = CopyOnWriteArrayList()

    @Volatile var ready: String? = null

    private val reader = Thread({
        runCatching {
            process.inputStream.bufferedReader().forEachLine { line ->
                if (line.startsWith("DONE ")) done += line
                if (line.startsWith("READY ")) ready = line
            }
        }
    }, "worker-stdout").apply {
        isDaemon = true
        start()
    }

    /** Waits at most [millis] until [count] jobs are done; false if the worker exited or time ran out first. */
    fun awaitDone(count: Int, millis: Long): Boolean {
        val deadline = System.nanoTime() + millis * 1_000_000
        while (done.size < count && process.isAlive && System.nanoTime() < deadline) Thread.sleep(2)
        return done.size >= count
    }

    /** SIGKILL (on Linux `destroyForcibly` sends SIGKILL), and wait for the process and its output to end. */
    fun kill() {
        process.destroyForcibly()
        process.waitFor(30, TimeUnit.SECONDS) shouldBe true
        reader.join(10_000)
    }

    fun describe(): String = "worker pid=${process.pid()} alive=${process.isAlive} ready=$ready done=${done.size} " +
        "stderr: ${runCatching { Files.readString(stderr).takeLast(3000) }.getOrDefault("")}"

    override fun close() {
        if (process.isAlive) kill()
        Files.deleteIfExists(stderr)
    }

    companion object {
        fun start(walDir: Path, effects: Path, until: Long, msPerJob: Long): WorkerJvm {
            val classpath = System.getProperty("surefire.test.class.path")?.takeIf { it.isNotBlank() }
                ?: System.getProperty("java.class.path")
            val java = File(System.getProperty("java.home"), "bin/java").path
            val stderr = Files.createTempFile("kwal-worker", ".err")
            val process = ProcessBuilder(
                java, "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", classpath,
                "dev.kwal.samples.JobQueueKt", "worker", walDir.toString(), effects.toString(), "$until", "$msPerJob",
            ).redirectError(ProcessBuilder.Redirect.to(stderr.toFile())).start()
            return WorkerJvm(process, stderr)
        }
    }
}
