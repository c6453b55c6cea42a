package dev.kwal

import dev.kwal.engine.Kwal
import io.kotest.core.spec.style.FunSpec
import io.kotest.matchers.shouldBe
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext

class SmokeSpec :
    FunSpec({
        test("append, close, reopen, replay") {
            val dir = TestLogs.tempDir()
            val wal = Kwal.open(TestLogs.small(dir))
            withContext(Dispatchers.Default) {
                coroutineScope {
                    repeat(8) { c ->
                        launch { repeat(200) { i -> wal.append("t${(c + i) % 5}", TestLogs.payload("x", i.toLong())) } }
                    }
                }
            }
            wal.close()
            val again = Kwal.open(TestLogs.small(dir))
            again.recovery.truncatedBytes shouldBe 0
            val total = (0 until 5).sumOf { again.replay("t$it").toList().size }
            total shouldBe 1600
            again.close()
        }
    })
