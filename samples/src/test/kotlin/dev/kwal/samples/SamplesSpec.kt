package dev.kwal.samples

import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import io.kotest.matchers.string.shouldContain
import io.kotest.matchers.string.shouldMatch
import java.io.ByteArrayOutputStream
import java.io.PrintStream
import java.nio.file.Files
import java.nio.file.Path
import kotlin.io.path.ExperimentalPathApi
import kotlin.io.path.deleteRecursively
import kotlin.io.path.exists

/** Runs the samples' `main`s as a user would, so they cannot rot. */
class SamplesSpec :
    FunSpec({

        test("Kotlin quickstart runs and prints its story") {
            // By class: every sample in this package has a top-level main, so the bare name is ambiguous.
            val quickstart = Class.forName("dev.kwal.samples.QuickstartKt").getMethod("main", Array<String>::class.java)
            val out = runMain("kwal-sample-kt") { quickstart.invoke(null, arrayOf(it.toString())) }
            out shouldMatch Regex(
                """(?s).*Appended and synced 16000 records from 64 coroutines in [\d.]+ s \([\d,]+ records/s\).*""",
            )
            out shouldContain "Batch of 5 refunds got sequences"
            out shouldContain "Topics: audit (5333 records), orders (5334 records), payments (5338 records)"
            // records also counts the topic registry's records (one per topic name), hence no exact number here.
            out shouldMatch Regex(
                """(?s).*Reopened: RecoveryReport\(segments=1, records=\d+, truncatedBytes=0, droppedRecords=0, """ +
                    """corruption=null.*""",
            )
            out shouldContain "First records of \"orders\":\n  #0 orders #"
            out shouldContain "  follower got #5333 live event 0\n"
            out shouldContain "  follower got #5335 live event 2\n"
            out shouldContain "seg-0000000001.kwal  67108864 bytes"
            out shouldContain "kwal.lock"
        }

        test("Java quickstart runs and prints its story") {
            val out = runMain("kwal-sample-java") { JavaQuickstart.main(arrayOf(it.toString())) }
            out shouldMatch Regex("""(?s).*Appended and synced 10000 records in [\d.]+ s \([\d,]+ records/s\).*""")
            out shouldContain "Batch of 3 refunds got sequences 3333..3335"
            out shouldMatch Regex("""(?s).*Reopened: \d+ records in 1 segment\(s\), truncated 0 bytes.*""")
            out shouldContain "First records of \"orders\":\n  #0 orders #0\n  #1 orders #3\n  #2 orders #6\n"
            out shouldContain "\"orders\" holds 3334 records"
            val followerLines = "  follower got #3333 live event 0\n  follower got #3334 live event 1\n" +
                "  follower got #3335 live event 2\n"
            out shouldContain followerLines
            out shouldContain "seg-0000000001.kwal  67108864 bytes"
        }

        test("Throughput probe runs every case and prints kwal beside the FileChannel ceiling") {
            val throughput = Class.forName("dev.kwal.samples.ThroughputKt").getMethod("main", Array<String>::class.java)
            val out = runMain("kwal-sample-tp") { throughput.invoke(null, arrayOf(it.toString(), "0.05")) }
            out shouldContain "record size 100 B, 0.05s per case"
            val rows = out.lines().filter { it.contains(" kwal ") && it.contains("ratio") }
            (rows.size >= 4) shouldBe true
            for (row in rows) row shouldMatch Regex(""".* kwal +[\d,]+ rec/s .* +[\d,]+ rec/s +ratio \d+\.\d\d""")
        }

        test("ManyTopics probe appends to 10,000 topics and reports space and files") {
            val many = Class.forName("dev.kwal.samples.ManyTopicsKt").getMethod("main", Array<String>::class.java)
            val out = runMain("kwal-sample-topics") { many.invoke(null, arrayOf(it.resolve("log").toString())) }
            out shouldMatch Regex("""(?s).*10,000 topics x \d+ records of 100 B: [\d.]+ s, [\d,]+ records/s.*""")
            out shouldMatch Regex("""(?s).*log data: [\d,]+ bytes \(\d+ bytes per record, payload 100\); files: .*""")
        }

        test("Java typed topics: a codec pair, a serializer in JSON, and a typed error at a bad record") {
            val out = runMain("kwal-sample-java-typed") { JavaTypedTopics.main(arrayOf(it.toString())) }
            out shouldContain "Appended reading #0, then a batch at #1..2\n"
            out shouldContain "  #0 boiler 71.5\n  #1 attic 18.25\n  #2 cellar 12.0\n"
            out shouldContain "Job #0 stored as {\"id\":\"job-1\",\"work\":\"send invoice 17\"}\n"
            out shouldContain "Job #0 read back: Job(id=job-1, work=send invoice 17)\n"
            out shouldContain "  job job-1\nStopped at record 1 of \"jobs\": "
        }

        test("Java order service: typed events, a Flow.Subscriber committing in batches, resumed at its cursor") {
            var cursor: Long? = null
            var events = 0L
            val out = runMain("kwal-sample-orders") {
                OrderService.main(arrayOf(it.toString()))
                // Its effects on disk: the events and the consumer's cursor, as another process would find them.
                dev.kwal.engine.Kwal.open(dev.kwal.WalOptions(it, segmentSize = 4 shl 20)).use { wal ->
                    cursor = wal.committed("fulfilment", "orders")
                    events = wal.nextSequence("orders")
                    val paid = kotlinx.coroutines.runBlocking { wal.read("orders", 4) }!!
                    paid.payload[0] shouldBe 2.toByte() // OrderPaid's tag
                }
            }
            cursor shouldBe 11
            events shouldBe 11
            out shouldContain "Shop: #0 order 1001 placed by alice, 25.00\n"
            out shouldContain "Shop: #4..#6 orders 1001, 1002, 1004 paid (one batch)\nShop: #7 order 1001 shipped\n"
            out shouldContain "Fulfilment run 1: cursor null, 3 events at a time\n" +
                "  #0 placed 1001: reserve 2 items for alice\n  #1 placed 1002: reserve 1 items for bob\n" +
                "  #2 placed 1003: reserve 5 items for carol\n  committed position 3\n"
            out shouldContain "  #5 paid 1002 (19.99): pack it\n  committed position 6\n" +
                "Fulfilment run 1: stopped at position 6\n"
            out shouldContain "Fulfilment run 2: resumes at cursor 6\n  #6 paid 1004 (42.50): pack it\n" +
                "  #7 shipped 1001 by DHL: email the customer\n  #8 shipped 1002 by UPS: email the customer\n" +
                "  committed position 9\n  #9 paid 1003 (120.00): pack it\n  committed position 10 (caught up)\n" +
                "Shop: shipping order 1004 while fulfilment follows\n" +
                "  #10 shipped 1004 by DHL: email the customer\n  committed position 11 (caught up)\n" +
                "Fulfilment run 2: stopped at position 11\n"
            out shouldContain "Orders: 1001 shipped, 1002 shipped, 1003 paid, 1004 shipped\n"
            out shouldContain "Topic \"orders\": 11 events; cursor of \"fulfilment\": 11\n"
            // Each event was handled exactly once across the two runs (none was committed and not handled, or
            // handled twice: run 2 resumed exactly at run 1's cursor).
            (0..10).forEach { seq -> out.lines().count { it.startsWith("  #$seq ") } shouldBe 1 }
        }

        test("event-sourced key-value store: the second run loads the snapshot and replays only the 3 later commands") {
            val kv = Class.forName("dev.kwal.samples.KeyValueStoreKt").getMethod("main", Array<String>::class.java)
            val out = runMain("kwal-sample-kv") { kv.invoke(null, arrayOf(it.toString())) }
            out shouldContain "Run 1: opened an empty store (snapshot: null, replayed 0)\n"
            out shouldContain "Run 1: 51 commands, snapshot at position 51 (9 keys)\n"
            out shouldContain "Run 2: loaded snapshot at position 51, replayed 3 commands, position 54\n"
            out shouldContain "Run 2: user:1=changed after the snapshot user:2=null user:42=new\n"
            out shouldContain "Run 2: 9 keys: user:1 user:3 user:4 user:42 user:5 user:6 user:7 user:8 user:9\n"
            out shouldContain "Snapshots: snapshot-51.json\n"
        }

        test("durable job queue: a second worker resumes at the first one's cursor; every job runs once") {
            val jobs = Class.forName("dev.kwal.samples.JobQueueKt").getMethod("main", Array<String>::class.java)
            val out = runMain("kwal-sample-jobs") { jobs.invoke(null, arrayOf(it.toString())) }
            out shouldContain "Producer: submitted 10 jobs, sequences 0..9\n"
            out shouldContain "Worker 1: ran #3 job-3 (resize image-3.png)\nWorker 1: stopped; committed position 4\n"
            out shouldContain "Worker 2: ran #4 job-4\n"
            out shouldContain "Worker 2: ran #14 job-14\n"
            out.lines().count { it.startsWith("Worker ") && it.contains(" ran #") } shouldBe 15
            out shouldContain "committed position now 15\n"
            out shouldContain "Effects: 15 lines for jobs 0..14, run twice: []\n"
        }
    })

/** Runs [body] on a fresh directory with System.out captured (and still echoed); returns the output. */
@OptIn(ExperimentalPathApi::class)
private fun runMain(prefix: String, body: (Path) -> Unit): String {
    val dir = Files.createTempDirectory(prefix)
    val captured = ByteArrayOutputStream()
    val original = System.out
    val tee = PrintStream(
        object : java.io.OutputStream() {
            override fun write(b: Int) {
                captured.write(b)
                original.write(b)
            }
            override fun write(b: ByteArray, off: Int, len: Int) {
                captured.write(b, off, len)
                original.write(b, off, len)
            }
        },
        true,
        Charsets.UTF_8,
    )
    System.setOut(tee)
    try {
        body(dir)
    } finally {
        System.out.flush()
        System.setOut(original)
    }
    val out = captured.toString(Charsets.UTF_8).replace(System.lineSeparator(), "\n")
    val exists = dir.exists()
    dir.deleteRecursively()
    exists shouldBe true
    return out
}
