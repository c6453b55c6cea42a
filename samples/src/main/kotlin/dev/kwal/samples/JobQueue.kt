package dev.kwal.samples

import dev.kwal.Wal
import dev.kwal.WalOptions
import dev.kwal.engine.Kwal
import dev.kwal.typed.Typed
import dev.kwal.typed.TypedTopic
import dev.kwal.typed.topic
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import kotlinx.serialization.Serializable
import java.nio.ByteBuffer
import java.nio.channels.FileChannel
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.StandardOpenOption
import kotlin.io.path.exists
import kotlin.io.path.readLines
import kotlin.system.exitProcess

/** A job: what a producer appends to the queue's topic. */
@Serializable
data class Job(val id: String, val work: String)

/**
 * Where a worker records each job's effect: an append-only file of lines `<sequence> <job id>`, each synced before the
 * worker commits past the job. A line cut short by a crash is dropped when the file is opened again.
 */
class EffectLog(val path: Path) : AutoCloseable {
    private val channel: FileChannel

    init {
        channel = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE)
        val size = channel.size()
        if (size > 0) { // trim a torn last line, if any
            val bytes = ByteBuffer.allocate(size.toInt())
            while (bytes.hasRemaining() && channel.read(bytes, bytes.position().toLong()) >= 0) Unit
            val keep = bytes.array().indexOfLast { it == '\n'.code.toByte() } + 1L
            if (keep < size) {
                channel.truncate(keep)
                channel.force(true)
            }
        }
        channel.position(channel.size())
    }

    /** Records that job [sequence] ran, durably (one write, then fdatasync). */
    fun record(sequence: Long, job: Job) {
        val line = ByteBuffer.wrap("$sequence ${job.id}\n".encodeToByteArray())
        while (line.hasRemaining()) channel.write(line)
        channel.force(false)
    }

    override fun close(): Unit = channel.close()

    companion object {
        /** The sequences of the jobs recorded in [path], one entry per complete line (a job run twice: twice). */
        fun read(path: Path): List<Long> = if (!path.exists()) {
            emptyList()
        } else {
            val text = Files.readString(path)
            text.substring(0, text.lastIndexOf('\n') + 1).lines().filter { it.isNotEmpty() }
                .map { it.substringBefore(' ').toLong() }
        }
    }
}

/**
 * A durable job queue on one typed topic: producers [submit] jobs, a worker [work]s through them as consumer
 * [consumer], recording each job's effect and then committing its cursor past the job.
 *
 * At-least-once, and exactly what that means here: a job whose commit was acknowledged never runs again; a job whose
 * effect was recorded but whose commit was not (the worker died in between) runs again when the worker restarts;
 * no job is skipped. One worker per consumer name (the cursor is one position).
 */
class JobQueue(wal: Wal, val consumer: String = "worker") {
    val jobs: TypedTopic<Job> = wal.topic<Job>(TOPIC)

    /** Appends [job]; returns its sequence once durable. */
    suspend fun submit(job: Job): Long = jobs.append(job)

    /**
     * Runs jobs from the consumer's committed position: for each, [effects] records it (synced), then the cursor is
     * committed past it, then [onDone] is called. Returns once the cursor reaches [until]; never, without one.
     */
    suspend fun work(
        effects: EffectLog,
        until: Long = Long.MAX_VALUE,
        perJob: suspend (Typed<Job>) -> Unit = {},
        onDone: (Typed<Job>) -> Unit = {},
    ) {
        if ((jobs.committed(consumer) ?: 0) >= until) return
        jobs.follow(consumer).first { job ->
            perJob(job)
            withContext(Dispatchers.IO) { effects.record(job.sequence, job.value) }
            jobs.commit(consumer, job.sequence + 1)
            onDone(job)
            job.sequence + 1 >= until
        }
    }

    companion object {
        const val TOPIC = "jobs"
    }
}

/**
 * The job queue.
 *
 * Without arguments (or with a directory): a demo in one process — a producer submits jobs, a worker runs some and
 * stops, more jobs arrive, a new worker resumes at the committed cursor, and the effect file shows each job ran once.
 * `mvn -B -ntp -q -pl samples -am -DskipTests package exec:java -Dexec.mainClass=dev.kwal.samples.JobQueueKt`
 *
 * `worker <wal dir> <effects file> <until> <ms per job>`: one worker process, as `JobQueueSpec` runs (and kills) it;
 * prints `READY <committed>` once open and `DONE <sequence> <job id>` after each commit, exits once the cursor reaches
 * `until`.
 */
fun main(args: Array<String>) {
    if (args.firstOrNull() == "worker") {
        workerProcess(Path.of(args[1]), Path.of(args[2]), args[3].toLong(), args[4].toLong())
        exitProcess(0)
    }
    val dir: Path = args.firstOrNull()?.let(Path::of) ?: Files.createTempDirectory("kwal-jobs")
    runBlocking { demo(dir) }
}

private suspend fun demo(dir: Path) {
    val effectsFile = dir.resolve("effects.txt")
    openJobLog(dir.resolve("wal")).use { wal ->
        val queue = JobQueue(wal)
        val first = (0 until 10).map { queue.submit(Job("job-$it", "resize image-$it.png")) }
        println("Producer: submitted ${first.size} jobs, sequences ${first.first()}..${first.last()}")

        // Worker 1 runs four jobs, then stops (as a deploy would stop it).
        EffectLog(effectsFile).use { effects ->
            queue.work(effects, until = 4) {
                println("Worker 1: ran #${it.sequence} ${it.value.id} (${it.value.work})")
            }
        }
        println("Worker 1: stopped; committed position ${queue.jobs.committed(queue.consumer)}")

        // More jobs arrive while no worker runs; worker 2 resumes at the cursor and runs them all, live.
        resumeWithSecondWorker(queue, effectsFile)
    }
    val ran = EffectLog.read(effectsFile)
    val twice = ran.groupingBy { it }.eachCount().filterValues { it > 1 }.keys
    println("Effects: ${ran.size} lines for jobs ${ran.minOrNull()}..${ran.maxOrNull()}, run twice: $twice")
}

private suspend fun resumeWithSecondWorker(queue: JobQueue, effectsFile: Path) = kotlinx.coroutines.coroutineScope {
    val worker = launch(Dispatchers.Default) {
        EffectLog(effectsFile).use { effects ->
            queue.work(effects, until = 15) { println("Worker 2: ran #${it.sequence} ${it.value.id}") }
        }
    }
    val more = (10 until 15).map { queue.submit(Job("job-$it", "resize image-$it.png")) }
    worker.join()
    println(
        "Producer: submitted ${more.size} more jobs meanwhile; committed position now " +
            "${queue.jobs.committed(queue.consumer)}",
    )
}

private fun workerProcess(walDir: Path, effectsFile: Path, until: Long, msPerJob: Long) {
    Kwal.open(WalOptions(walDir, segmentSize = 4 shl 20)).use { wal ->
        val queue = JobQueue(wal)
        EffectLog(effectsFile).use { effects ->
            println("READY ${queue.jobs.committed(queue.consumer) ?: 0}")
            runBlocking {
                queue.work(effects, until, perJob = { delay(msPerJob) }) {
                    println("DONE ${it.sequence} ${it.value.id}")
                }
            }
        }
    }
}

private suspend fun openJobLog(dir: Path): Wal =
    withContext(Dispatchers.IO) { Kwal.open(WalOptions(dir, segmentSize = 4 shl 20)) }
