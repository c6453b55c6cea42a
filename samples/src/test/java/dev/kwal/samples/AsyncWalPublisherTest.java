package dev.kwal.samples;

import static dev.kwal.samples.AsyncWalJavaTest.bytes;
import static dev.kwal.samples.AsyncWalJavaTest.small;
import static dev.kwal.samples.AsyncWalJavaTest.text;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kwal.AsyncWal;
import dev.kwal.InvalidTopicException;
import dev.kwal.Record;
import dev.kwal.engine.Kwal;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link AsyncWal}'s replay and follow as {@link Flow.Publisher}s, through hand-written subscribers: demand is
 * honoured (nothing without a request, at most n after request(n)), cancel stops a follow, and every signal but
 * onSubscribe runs on the callback executor.
 */
class AsyncWalPublisherTest {
    private static final String CALLBACKS = "publisher-callbacks";
    private static final long QUIET_MS = 300;

    @TempDir
    Path dir;

    private ExecutorService pool;
    private AsyncWal wal;

    @BeforeEach
    void open() throws Exception {
        pool = Executors.newFixedThreadPool(2, r -> new Thread(r, CALLBACKS));
        wal = AsyncWal.of(Kwal.open(small(dir)), AsyncWal.DEFAULT_MAX_PENDING_BYTES, AsyncWal.WhenFull.WAIT, pool);
    }

    @AfterEach
    void close() {
        wal.close();
        pool.shutdownNow();
    }

    /** Requests one record at a time, and the next only once it has the previous. */
    static final class OneAtATime implements Flow.Subscriber<Record> {
        final List<Record> records = new CopyOnWriteArrayList<>();
        final Set<String> threads = java.util.concurrent.ConcurrentHashMap.newKeySet();
        final CompletableFuture<List<Record>> done = new CompletableFuture<>();
        /** Records requested and not delivered yet; below 0 would be a record delivered beyond demand. */
        final AtomicInteger outstanding = new AtomicInteger();
        final AtomicInteger beyondDemand = new AtomicInteger();
        private Flow.Subscription subscription;

        @Override
        public void onSubscribe(Flow.Subscription s) {
            subscription = s;
            outstanding.incrementAndGet();
            s.request(1);
        }

        @Override
        public void onNext(Record item) {
            threads.add(AsyncWalJavaTest.thread());
            if (outstanding.getAndDecrement() < 1) beyondDemand.incrementAndGet();
            records.add(item);
            outstanding.incrementAndGet();
            subscription.request(1);
        }

        @Override
        public void onError(Throwable t) {
            threads.add(AsyncWalJavaTest.thread());
            done.completeExceptionally(t);
        }

        @Override
        public void onComplete() {
            threads.add(AsyncWalJavaTest.thread());
            done.complete(records);
        }
    }

    /** Requests only what the test asks for; cancels when told to, or after [cancelAfter] records. */
    static final class Manual implements Flow.Subscriber<Record> {
        final List<Long> sequences = new CopyOnWriteArrayList<>();
        final CompletableFuture<Void> done = new CompletableFuture<>();
        final CompletableFuture<List<Long>> cancelled = new CompletableFuture<>();
        final int cancelAfter;
        volatile Flow.Subscription subscription;

        Manual(int cancelAfter) {
            this.cancelAfter = cancelAfter;
        }

        @Override
        public void onSubscribe(Flow.Subscription s) {
            subscription = s;
        }

        @Override
        public void onNext(Record item) {
            sequences.add(item.getSequence());
            if (sequences.size() == cancelAfter) {
                subscription.cancel();
                cancelled.complete(List.copyOf(sequences));
            }
        }

        @Override
        public void onError(Throwable t) {
            done.completeExceptionally(t);
        }

        @Override
        public void onComplete() {
            done.complete(null);
        }

        /** Waits until [n] records have arrived, then a little longer to see that no more come. */
        void expectExactly(int n) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (sequences.size() < n && System.nanoTime() < deadline) Thread.sleep(5);
            Thread.sleep(QUIET_MS);
            assertEquals(n, sequences.size(), "records delivered: " + sequences);
        }
    }

    private void appendAll(String topic, int from, int until) {
        for (int i = from; i < until; i++) wal.append(topic, bytes(topic + " " + i)).join();
    }

    @Test
    void replayFromASequenceOneAtATimeDeliversEveryRecordInOrderOnTheCallbackExecutor() throws Exception {
        appendAll("p", 0, 50);
        OneAtATime s = new OneAtATime();
        wal.replay("p", 10).subscribe(s);
        List<Record> got = s.done.get(30, TimeUnit.SECONDS);
        List<Long> expected = new ArrayList<>();
        for (long i = 10; i < 50; i++) expected.add(i);
        assertEquals(expected, got.stream().map(Record::getSequence).collect(Collectors.toList()));
        assertEquals("p 10", text(got.get(0)));
        assertEquals(0, s.beyondDemand.get(), "records delivered beyond the one requested");
        assertEquals(Set.of(CALLBACKS), s.threads);
    }

    @Test
    void aSubscriberThatRequestsNothingGetsNothingAndRequestNDeliversAtMostN() throws Exception {
        appendAll("d", 0, 10);
        Manual s = new Manual(-1);
        wal.replay("d", 0).subscribe(s);
        s.expectExactly(0);
        assertFalse(s.done.isDone(), "no completion without demand");
        s.subscription.request(3);
        s.expectExactly(3);
        s.subscription.request(2);
        s.expectExactly(5);
        assertEquals(List.of(0L, 1L, 2L, 3L, 4L), s.sequences);
        assertFalse(s.done.isDone());
        s.subscription.request(Long.MAX_VALUE);
        assertNull(s.done.get(30, TimeUnit.SECONDS));
        assertEquals(10, s.sequences.size());
    }

    @Test
    void followFromASequenceHonoursDemandThenCancelStopsIt() throws Exception {
        appendAll("f", 0, 3);
        Manual s = new Manual(5);
        wal.follow("f", 1).subscribe(s);
        s.subscription.request(2);
        s.expectExactly(2); // #1 and #2, though #3 and #4 are appended below before more is requested
        appendAll("f", 3, 5);
        s.expectExactly(2);
        s.subscription.request(100); // #3, #4, then waits live
        s.expectExactly(4);
        appendAll("f", 5, 8); // #5 makes five: the subscriber cancels; #6 and #7 never arrive
        assertEquals(List.of(1L, 2L, 3L, 4L, 5L), s.cancelled.get(30, TimeUnit.SECONDS));
        s.expectExactly(5);
        assertFalse(s.done.isDone(), "a cancelled subscription is not signalled again");
        // Cancelled, the follow holds nothing up: the log closes at once.
        long start = System.nanoTime();
        wal.close();
        assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(10), "close was held up");
        Thread.sleep(QUIET_MS);
        assertFalse(s.done.isDone());
    }

    @Test
    void followFromAConsumersCommittedPosition() throws Exception {
        appendAll("c", 0, 6);
        wal.commit("reader", "c", 4).join();
        Manual s = new Manual(3);
        wal.follow("c", "reader").subscribe(s);
        s.subscription.request(Long.MAX_VALUE);
        s.expectExactly(2);
        appendAll("c", 6, 7);
        assertEquals(List.of(4L, 5L, 6L), s.cancelled.get(30, TimeUnit.SECONDS));
    }

    @Test
    void replayAndFollowFromAnInstant() throws Exception {
        appendAll("i", 0, 3);
        Thread.sleep(5);
        Instant after = Instant.now();
        Thread.sleep(5);
        appendAll("i", 3, 5);

        OneAtATime replay = new OneAtATime();
        wal.replay("i", after).subscribe(replay);
        assertEquals(List.of("i 3", "i 4"), replay.done.get(30, TimeUnit.SECONDS).stream()
            .map(AsyncWalJavaTest::text).collect(Collectors.toList()));

        Manual follow = new Manual(3);
        wal.follow("i", after).subscribe(follow);
        follow.subscription.request(10);
        follow.expectExactly(2);
        appendAll("i", 5, 6);
        assertEquals(List.of(3L, 4L, 5L), follow.cancelled.get(30, TimeUnit.SECONDS));
    }

    @Test
    void aFollowCompletesWhenTheLogClosesAndErrorsReachOnError() throws Exception {
        appendAll("e", 0, 2);
        OneAtATime follow = new OneAtATime();
        wal.follow("e", 0).subscribe(follow);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (follow.records.size() < 2 && System.nanoTime() < deadline) Thread.sleep(5);
        wal.close();
        assertEquals(2, follow.done.get(30, TimeUnit.SECONDS).size());
        assertEquals(Set.of(CALLBACKS), follow.threads);

        try (AsyncWal other = AsyncWal.of(Kwal.open(small(dir.resolve("other"))))) {
            OneAtATime bad = new OneAtATime();
            other.replay("no/slashes", 0).subscribe(bad);
            Throwable error = org.junit.jupiter.api.Assertions.assertThrows(java.util.concurrent.ExecutionException.class,
                () -> bad.done.get(30, TimeUnit.SECONDS)).getCause();
            assertInstanceOf(InvalidTopicException.class, error);
        }
    }
}
