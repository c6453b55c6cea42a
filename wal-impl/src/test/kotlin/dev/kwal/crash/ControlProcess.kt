package dev.kwal.crash

import dev.kwal.engine.Kwal
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import java.nio.file.Path
import kotlin.random.Random
import kotlin.system.exitProcess

/**
 * Child-process main for [dev.kwal.TruncationAndCursorsSpec]'s SIGKILL test: appends to topic `t` from several
 * coroutines and, as it goes, truncates `t` and commits consumer `c`'s position in it, printing each as soon as it is
 * acknowledged: `ACK t <seq> <crc32 hex>` for a record, `ACK TRUNC <first> 0` for a truncation, `ACK COMMIT
 * <position> 0` for a commit (one coroutine commits, so its positions only grow). Runs until killed.
 *
 * With a third argument `retention`, it also appends now and then to ten cold topics `k0`..`k9` (`ACK k3 <seq>
 * <crc>`), never truncated, and applies retention in a loop (`ACK RET <segments deleted> <blocks copied>`), so that
 * kills land inside truncations, copies forward, manifest writes and segment deletions.
 */
object ControlProcess {
    @JvmStatic
    fun main(args: Array<String>) {
        val dir = Path.of(args[0])
        val seed = args[1].toLong()
        val retention = args.getOrNull(2) == "retention"
        val out = CrashOptions.out()
        CrashOptions.exitWhenParentGoes()
        try {
            val wal = Kwal.open(CrashOptions.of(dir))
            out.println("READY ${wal.recovery}")
            runBlocking(Dispatchers.Default) {
                repeat(4) { w ->
                    launch {
                        val r = Random(seed * 31 + w)
                        var n = 0L
                        while (true) {
                            val p = CrashPayloads.make("t", seed, w, n++, r.nextInt(16, 600))
                            val seq = wal.append("t", p)
                            out.println("ACK t $seq %08x".format(CrashPayloads.crc(p)))
                        }
                    }
                }
                launch {
                    val r = Random(seed)
                    while (true) {
                        val next = wal.nextSequence("t")
                        if (next > 0) {
                            val cut = maxOf(wal.firstSequence("t"), next - r.nextLong(1, 200).coerceAtMost(next))
                            wal.truncateBefore("t", cut)
                            out.println("ACK TRUNC $cut 0")
                        }
                        kotlinx.coroutines.delay(r.nextLong(1, 5))
                    }
                }
                if (retention) {
                    launch {
                        val r = Random(seed + 7)
                        var n = 0L
                        while (true) {
                            val topic = "k${r.nextInt(10)}"
                            val p = CrashPayloads.make(topic, seed, 9, n++, r.nextInt(16, 300))
                            val seq = wal.append(topic, p)
                            out.println("ACK $topic $seq %08x".format(CrashPayloads.crc(p)))
                            kotlinx.coroutines.delay(r.nextLong(1, 10))
                        }
                    }
                    launch {
                        while (true) {
                            val report = wal.applyRetention()
                            out.println("ACK RET ${report.segmentsDeleted} ${report.blocksCopied}")
                            kotlinx.coroutines.delay(1)
                        }
                    }
                }
                launch {
                    var position = 0L
                    while (true) {
                        position = maxOf(position, wal.nextSequence("t") / 2)
                        wal.commit("c", "t", position)
                        out.println("ACK COMMIT $position 0")
                        kotlinx.coroutines.delay(2)
                    }
                }
            }
        } catch (e: Throwable) {
            out.println("ERROR $e")
            e.printStackTrace()
            System.err.flush()
            exitProcess(2)
        }
    }
}
