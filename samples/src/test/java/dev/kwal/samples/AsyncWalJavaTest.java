package dev.kwal.samples;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kwal.AsyncWal;
import dev.kwal.BatchPositions;
import dev.kwal.Durability;
import dev.kwal.Record;
import dev.kwal.RecordChecks;
import dev.kwal.RecordView;
import dev.kwal.RecoveryReport;
import dev.kwal.Retention;
import dev.kwal.RetentionReport;
import dev.kwal.Wal;
import dev.kwal.WalClosedException;
import dev.kwal.WalOptions;
import dev.kwal.WalOverloadedException;
import dev.kwal.engine.Kwal;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every public call of {@link AsyncWal}, from Java, against a real log; each checks the values it gets back. */
class AsyncWalJavaTest {
    @TempDir
    Path dir;

    static WalOptions small(Path dir) {
        return WalOptions.builder(dir).segmentSize(1 << 20).blockSize(64 << 10).maxRecordSize(16 << 10)
            .maxGroupBytes(256 << 10).build();
    }

    static byte[] bytes(String s) {
        return s.getBytes(UTF_8);
    }

    static String text(Record r) {
        return new String(r.getPayload(), UTF_8);
    }

    static <T> T await(CompletableFuture<T> f) throws Exception {
        return f.get(30, TimeUnit.SECONDS);
    }

    /** The current thread's name, without the " @coroutine#n" kotlinx.coroutines' debug mode (-ea) appends. */
    static String thread() {
        return Thread.currentThread().getName().replaceAll(" @coroutine#\\d+$", "");
    }

    static List<Long> sequences(List<Record> records) {
        return records.stream().map(Record::getSequence).collect(Collectors.toList());
    }

    @Test
    void appendsAndBatchesCompleteWithTheirPositions() throws Exception {
        try (AsyncWal wal = AsyncWal.of(Kwal.open(small(dir)))) {
            assertEquals(0L, await(wal.append("j", bytes("a"))));
            assertEquals(1L, await(wal.append("j", bytes("b"), Durability.none())));
            BatchPositions two = await(wal.appendBatch("j", List.of(bytes("c"), bytes("d"))));
            assertEquals(new BatchPositions(2, 2), two);
            assertEquals(2L, two.first());
            assertEquals(2, two.count());
            assertEquals(3L, two.last());
            assertEquals(4L, two.end());
            BatchPositions one = await(wal.appendBatch("j", List.of(bytes("e")), Durability.interval(10)));
            assertEquals(new BatchPositions(4, 1), one);
            BatchPositions none = await(wal.appendBatch("j", List.of()));
            assertTrue(none.isEmpty());
            assertEquals(5L, none.first());
            assertEquals(4L, none.last());
            assertEquals(5L, await(wal.append("j", bytes("f"), Durability.sync())));
            assertNull(await(wal.sync()));
            assertEquals(Set.of("j"), wal.topics());
            assertEquals(6L, wal.nextSequence("j"));
            assertEquals(0L, wal.nextSequence("nothing-here"));

            List<String> seen = new ArrayList<>();
            wal.forEach("j", 1, r -> seen.add(r.getSequence() + ":" + text(r)));
            assertEquals(List.of("1:b", "2:c", "3:d", "4:e", "5:f"), seen);
        }
    }

    @Test
    void readsPagesSeeksAndTimeReplays() throws Exception {
        try (AsyncWal wal = AsyncWal.of(Kwal.open(small(dir)))) {
            for (int i = 0; i < 5; i++) await(wal.append("r", bytes("r" + i)));
            Instant between = Instant.now();
            Thread.sleep(5);
            for (int i = 5; i < 8; i++) await(wal.append("r", bytes("r" + i)));

            Record three = await(wal.read("r", 3));
            assertEquals("r3", text(three));
            assertEquals(3L, three.getSequence());
            assertEquals("r", three.getTopic());
            assertNull(await(wal.read("r", 8)));
            assertNull(await(wal.read("unknown", 0)));
            ExecutionException negative = assertThrows(ExecutionException.class, () -> await(wal.read("r", -1)));
            assertInstanceOf(IllegalArgumentException.class, negative.getCause());

            assertEquals(List.of(2L, 3L, 4L), sequences(await(wal.read("r", 2, 3))));
            // maxBytes: after the first, records only while the payloads total at most 4 bytes (each is 2 bytes).
            assertEquals(List.of(0L, 1L), sequences(await(wal.read("r", 0, 100, 4))));

            // #4 was stamped at or before `between`, #5 at least 5 ms after it.
            assertEquals(5L, await(wal.seek("r", between.toEpochMilli() + 1)));
            assertEquals(0L, await(wal.seek("r", 0)));
            assertEquals(8L, await(wal.seek("r", Long.MAX_VALUE)));

            List<Long> fromTime = new ArrayList<>();
            wal.forEach("r", Instant.ofEpochMilli(three.getTimestampMillis()), r -> fromTime.add(r.getSequence()));
            assertFalse(fromTime.isEmpty());
            assertTrue(fromTime.get(0) <= 3L, "from the time of #3: " + fromTime);
            assertEquals(7L, fromTime.get(fromTime.size() - 1));
            List<Long> fromFuture = new ArrayList<>();
            wal.forEach("r", Instant.now().plusSeconds(3600), r -> fromFuture.add(r.getSequence()));
            assertEquals(List.of(), fromFuture);
        }
    }

    @Test
    void truncationAndConsumerPositions() throws Exception {
        try (AsyncWal wal = AsyncWal.of(Kwal.open(small(dir)))) {
            await(wal.appendBatch("t", List.of(bytes("0"), bytes("1"), bytes("2"), bytes("3"))));
            assertEquals(0L, wal.firstSequence("t"));
            assertNull(await(wal.truncateBefore("t", 2)));
            assertEquals(2L, wal.firstSequence("t"));
            assertNull(await(wal.read("t", 1)));
            // Nothing of the log is reclaimable yet (one segment, the active one): retention reports no work.
            RetentionReport retention = await(wal.applyRetention());
            assertEquals(0, retention.getSegmentsDeleted());
            assertEquals(Map.of(), retention.getTruncated());
            WalOptions kept = WalOptions.builder(dir).topicRetention("t", Retention.records(5))
                .retention(Retention.age(java.time.Duration.ofDays(7))).compactionThreshold(0.25).build();
            assertEquals(Retention.records(5), kept.retentionOf("t"));
            assertEquals(Retention.age(java.time.Duration.ofDays(7)), kept.retentionOf("u"));

            assertNull(wal.committed("c1", "t"));
            assertEquals(Set.of(), wal.consumers());
            assertNull(await(wal.commit("c1", "t", 3)));
            assertEquals(3L, wal.committed("c1", "t"));
            assertEquals(Set.of("c1"), wal.consumers());

            // follow from the consumer's position (callback form), then delete the consumer.
            CountDownLatch one = new CountDownLatch(1);
            List<Long> got = new CopyOnWriteArrayList<>();
            CompletableFuture<Void> follower = wal.follow("t", "c1", r -> {
                got.add(r.getSequence());
                one.countDown();
            });
            assertTrue(one.await(30, TimeUnit.SECONDS));
            assertTrue(follower.cancel(true));
            assertEquals(List.of(3L), got);

            assertNull(await(wal.deleteConsumer("c1")));
            assertNull(wal.committed("c1", "t"));
            assertEquals(Set.of(), wal.consumers());
        }
        // Truncation survives reopening; recovery and directory are reported.
        try (AsyncWal wal = AsyncWal.of(Kwal.open(small(dir)))) {
            assertEquals(2L, wal.firstSequence("t"));
            assertEquals(dir.toRealPath(), wal.directory().toRealPath());
            RecoveryReport report = wal.recovery();
            assertSame(wal.getWal().getRecovery(), report);
            assertEquals(0L, report.getTruncatedBytes());
            assertTrue(report.getRecords() >= 4, report.toString());
        }
    }

    @Test
    void followCallbacksFromASequenceAndFromAnInstantRunOnTheCallbackExecutor() throws Exception {
        ExecutorService pool = Executors.newSingleThreadExecutor(r -> new Thread(r, "java-callbacks"));
        try (AsyncWal wal = AsyncWal.of(Kwal.open(small(dir)), AsyncWal.DEFAULT_MAX_PENDING_BYTES,
            AsyncWal.WhenFull.WAIT, pool)) {
            await(wal.append("f", bytes("old")));
            CountDownLatch fromSeq = new CountDownLatch(3);
            CountDownLatch fromTime = new CountDownLatch(2);
            List<String> threads = new CopyOnWriteArrayList<>();
            List<Long> bySequence = new CopyOnWriteArrayList<>();
            List<Long> byTime = new CopyOnWriteArrayList<>();
            CompletableFuture<Void> a = wal.follow("f", 0, r -> {
                threads.add(thread());
                bySequence.add(r.getSequence());
                fromSeq.countDown();
            });
            Instant now = Instant.now();
            Thread.sleep(5);
            CompletableFuture<Void> b = wal.follow("f", now, r -> {
                threads.add(thread());
                byTime.add(r.getSequence());
                fromTime.countDown();
            });
            await(wal.append("f", bytes("new 1")));
            await(wal.append("f", bytes("new 2")));
            assertTrue(fromSeq.await(30, TimeUnit.SECONDS));
            assertTrue(fromTime.await(30, TimeUnit.SECONDS));
            assertEquals(List.of(0L, 1L, 2L), bySequence);
            assertEquals(List.of(1L, 2L), byTime);
            assertEquals(Set.of("java-callbacks"), Set.copyOf(threads));
            a.cancel(true);
            // b ends normally when the log closes
            wal.close();
            assertNull(b.get(30, TimeUnit.SECONDS));
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void recordViewsReplayAndFollowOnTheCallbackExecutor() throws Exception {
        ExecutorService pool = Executors.newSingleThreadExecutor(r -> new Thread(r, "java-callbacks"));
        try (AsyncWal wal = AsyncWal.of(Kwal.open(small(dir)), AsyncWal.DEFAULT_MAX_PENDING_BYTES,
            AsyncWal.WhenFull.WAIT, pool)) {
            for (int i = 0; i < 5; i++) await(wal.append("v", bytes("view " + i)));
            byte[] buf = new byte[64];
            List<String> seen = new CopyOnWriteArrayList<>();
            List<String> threads = new CopyOnWriteArrayList<>();
            AtomicReference<RecordView> kept = new AtomicReference<>();
            assertNull(await(wal.replayViews("v", 2, v -> {
                v.copyPayloadTo(buf, 0);
                seen.add(v.getSequence() + ":" + new String(buf, 0, v.getPayloadSize(), UTF_8));
                threads.add(thread());
                kept.set(v);
            })));
            assertEquals(List.of("2:view 2", "3:view 3", "4:view 4"), seen);
            assertEquals(Set.of("java-callbacks"), Set.copyOf(threads));
            assertThrows(IllegalStateException.class, () -> kept.get().getSequence());
            // An exception from the action fails the future with it.
            CompletableFuture<Void> failing = wal.replayViews("v", 0, RecordChecks.ALL, v -> {
                throw new IllegalArgumentException("no");
            });
            ExecutionException e = assertThrows(ExecutionException.class, () -> failing.get(30, TimeUnit.SECONDS));
            assertInstanceOf(IllegalArgumentException.class, e.getCause());
            // followViews: live, then ends normally when the log closes.
            CountDownLatch six = new CountDownLatch(2);
            List<Record> followed = new CopyOnWriteArrayList<>();
            CompletableFuture<Void> f = wal.followViews("v", 4, RecordChecks.SKIP_SEALED, v -> {
                followed.add(v.toRecord());
                six.countDown();
            });
            await(wal.append("v", bytes("view 5")));
            assertTrue(six.await(30, TimeUnit.SECONDS));
            assertEquals(List.of("view 4", "view 5"), followed.stream().map(AsyncWalJavaTest::text)
                .collect(Collectors.toList()));
            wal.close();
            assertNull(f.get(30, TimeUnit.SECONDS));
        } finally {
            pool.shutdownNow();
        }
    }

    /**
     * A future that cannot complete before this test lets it does complete on the callback executor: its executor is
     * held shut until a dependent action has been added, so the dependent cannot run on the test's thread.
     */
    @Test
    void futuresCompleteOnTheCallbackExecutorNeverOnTheLogsThreads() throws Exception {
        CountDownLatch open = new CountDownLatch(1);
        ExecutorService pool = Executors.newSingleThreadExecutor(r -> new Thread(r, "gated-callbacks"));
        pool.execute(() -> {
            try {
                open.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        try (AsyncWal wal = AsyncWal.of(Kwal.open(small(dir)), AsyncWal.DEFAULT_MAX_PENDING_BYTES,
            AsyncWal.WhenFull.WAIT, pool)) {
            List<CompletableFuture<String>> threads = new ArrayList<>();
            CompletableFuture<Long> append = wal.append("g", bytes("x"), Durability.sync());
            CompletableFuture<BatchPositions> batch = wal.appendBatch("g", List.of(bytes("y")), Durability.sync());
            CompletableFuture<Void> sync = wal.sync();
            CompletableFuture<Void> commit = wal.commit("cg", "g", 0);
            for (CompletableFuture<?> f : List.of(append, batch, sync, commit)) {
                assertFalse(f.isDone(), "cannot complete while its executor is held");
                threads.add(f.thenApply(x -> thread()));
            }
            open.countDown();
            for (CompletableFuture<String> t : threads) assertEquals("gated-callbacks", await(t));
            assertEquals(0L, append.join());
            assertEquals(new BatchPositions(1, 1), batch.join());
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void boundedFacadeRefusesPastItsBoundAndClosedLogFails() throws Exception {
        Wal inner = Kwal.open(small(dir));
        AsyncWal wal = AsyncWal.of(inner, 1_000, AsyncWal.WhenFull.FAIL);
        assertSame(inner, wal.getWal());
        // Hold the bound: a pending durable append of ~1,000 bytes; a second one is refused at once, unless the
        // first already completed (then it is accepted). Either way the answer is a value or a typed error.
        CompletableFuture<Long> first = wal.append("o", new byte[900]);
        CompletableFuture<Long> second = wal.append("o", new byte[900]);
        assertEquals(0L, first.get(30, TimeUnit.SECONDS));
        try {
            assertEquals(1L, second.get(30, TimeUnit.SECONDS));
        } catch (ExecutionException e) {
            assertInstanceOf(WalOverloadedException.class, e.getCause());
        }
        wal.close();
        CompletionException closed = assertThrows(CompletionException.class, () -> wal.append("o", bytes("z")).join());
        assertInstanceOf(WalClosedException.class, closed.getCause());
        // AsyncWal.of(wal, maxPendingBytes): the two-argument overload
        try (AsyncWal again = AsyncWal.of(Kwal.open(small(dir)), 1L << 20)) {
            assertNotEquals(0L, again.nextSequence("o"));
        }
    }

    @Test
    void batchPositionsIsAPlainValue() {
        BatchPositions a = new BatchPositions(7, 3);
        assertEquals(new BatchPositions(7, 3), a);
        assertEquals(new BatchPositions(7, 3).hashCode(), a.hashCode());
        assertNotEquals(new BatchPositions(7, 2), a);
        assertNotEquals(new BatchPositions(8, 3), a);
        assertEquals("BatchPositions(first=7, count=3)", a.toString());
        assertEquals(9L, a.last());
        assertEquals(10L, a.end());
        assertTrue(a.contains(7) && a.contains(9));
        assertFalse(a.contains(6) || a.contains(10));
        assertFalse(a.isEmpty());
        assertThrows(IllegalArgumentException.class, () -> new BatchPositions(-1, 0));
        assertThrows(IllegalArgumentException.class, () -> new BatchPositions(0, -1));
        assertThrows(IllegalArgumentException.class, () -> new BatchPositions(Long.MAX_VALUE, 1));
        AtomicReference<BatchPositions> empty = new AtomicReference<>(new BatchPositions(4, 0));
        assertTrue(empty.get().isEmpty());
        assertFalse(empty.get().contains(4));
    }
}
