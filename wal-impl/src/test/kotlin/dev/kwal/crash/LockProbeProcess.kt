package dev.kwal.crash

import dev.kwal.WalLockedException
import dev.kwal.engine.Kwal
import java.nio.file.Path
import kotlin.system.exitProcess

/**
 * Child-process main for [dev.kwal.CrossProcessLockSpec]: `LockProbeProcess <dir>`. Tries once to open the log
 * in `dir` and prints the outcome as one line: `READY LOCKED` if the open threw [WalLockedException],
 * `READY OPENED` if it succeeded (it then closes the log at once), or `ERROR <exception>` for anything else.
 * Then it exits.
 */
object LockProbeProcess {
    const val LOCKED = "READY LOCKED"
    const val OPENED = "READY OPENED"

    @JvmStatic
    fun main(args: Array<String>) {
        val out = CrashOptions.out()
        CrashOptions.exitWhenParentGoes()
        val line = try {
            Kwal.open(CrashOptions.of(Path.of(args[0]))).close()
            OPENED
        } catch (e: WalLockedException) {
            LOCKED
        } catch (e: Throwable) {
            e.printStackTrace()
            System.err.flush()
            "ERROR $e"
        }
        out.println(line)
        out.flush()
        exitProcess(0)
    }
}
