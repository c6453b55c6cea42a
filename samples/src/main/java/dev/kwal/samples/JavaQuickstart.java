package dev.kwal.samples;

import dev.kwal.AsyncWal;
import dev.kwal.engine.Kwal;
import dev.kwal.RecoveryReport;
import dev.kwal.WalOptions;
import dev.kwal.BatchPositions;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * kwal from Java: concurrent durable appends with CompletableFutures, a batch, recovery, replay and a live follower.
 *
 * <p>Run it with {@code mvn -B -ntp -q -pl samples -am -DskipTests package exec:java
 * -Dexec.mainClass=dev.kwal.samples.JavaQuickstart} from the repository root. It writes to a fresh
 * temporary directory, or to the directory given as the first argument.
 */
public final class JavaQuickstart {
    private static final List<String> TOPICS = List.of("orders", "payments", "audit");

    public static void main(String[] args) throws Exception {
        Path dir = args.length > 0 ? Path.of(args[0]) : Files.createTempDirectory("kwal-java-quickstart");
        WalOptions options = WalOptions.builder(dir).build(); // defaults: 64 MiB segments, Durability.SYNC

        // 1. Open the log and wrap it for Java. Closing the AsyncWal closes the log.
        try (AsyncWal wal = AsyncWal.of(Kwal.open(options))) {
            // 2. Start many appends at once: each future completes when its record is on disk. Appends in
            //    flight together share one group commit and one fsync.
            int count = 10_000;
            List<CompletableFuture<Long>> acks = new ArrayList<>(count);
            long started = System.nanoTime();
            for (int i = 0; i < count; i++) {
                String topic = TOPICS.get(i % TOPICS.size());
                acks.add(wal.append(topic, bytes(topic + " #" + i)));
            }
            CompletableFuture.allOf(acks.toArray(new CompletableFuture[0])).join();
            double seconds = (System.nanoTime() - started) / 1e9;
            System.out.printf("Appended and synced %d records in %.2f s (%,.0f records/s)%n",
                count, seconds, count / seconds);

            // 3. A batch is written all-or-nothing, with consecutive sequence numbers.
            List<byte[]> refunds = List.of(bytes("refund 0"), bytes("refund 1"), bytes("refund 2"));
            BatchPositions batch = wal.appendBatch("payments", refunds).join();
            System.out.printf("Batch of %d refunds got sequences %d..%d%n", batch.count(), batch.first(), batch.last());
        }

        // 4. Reopen: recovery checks every record and reports what it found.
        try (AsyncWal wal = AsyncWal.of(Kwal.open(options))) {
            RecoveryReport report = wal.getWal().getRecovery();
            System.out.println("Reopened: " + report.getRecords() + " records in " + report.getSegments()
                + " segment(s), truncated " + report.getTruncatedBytes() + " bytes");

            // 5. Replay a topic on this thread, from sequence 0, in order.
            System.out.println("First records of \"orders\":");
            wal.forEach("orders", 0, record -> {
                if (record.getSequence() < 3) {
                    System.out.println("  #" + record.getSequence() + " " + new String(record.getPayload(), StandardCharsets.UTF_8));
                }
            });
            System.out.println("\"orders\" holds " + wal.nextSequence("orders") + " records");

            // 6. Follow a topic live: the callback runs for each new record as it is acknowledged, on a
            //    background thread, until the future is cancelled or the log closes.
            long from = wal.nextSequence("audit");
            CountDownLatch seen = new CountDownLatch(3);
            CompletableFuture<Void> follower = wal.follow("audit", from, record -> {
                System.out.println("  follower got #" + record.getSequence() + " "
                    + new String(record.getPayload(), StandardCharsets.UTF_8));
                seen.countDown();
            });
            for (int i = 0; i < 3; i++) wal.append("audit", bytes("live event " + i)).join();
            seen.await(10, TimeUnit.SECONDS);
            follower.cancel(true);
        }

        // 7. The files: fixed-size segments and the lock file.
        System.out.println("Log files in " + dir + ":");
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : (Iterable<Path>) files.sorted()::iterator) {
                System.out.println("  " + f.getFileName() + "  " + Files.size(f) + " bytes");
            }
        }
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
