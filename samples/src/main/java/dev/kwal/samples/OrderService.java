package dev.kwal.samples;

import dev.kwal.AsyncWal;
import dev.kwal.BatchPositions;
import dev.kwal.WalOptions;
import dev.kwal.engine.Kwal;
import dev.kwal.typed.AsyncTypedTopic;
import dev.kwal.typed.Typed;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * An order service in plain Java: a shop appends typed order events (placed, paid, shipped) to the topic "orders"
 * through an {@link AsyncTypedTopic}, and a fulfilment service consumes them with a hand-written
 * {@link Flow.Subscriber} that requests 3 events at a time and commits its consumer cursor after each batch. The
 * fulfilment service is stopped half-way and started again: the second run resumes at the committed cursor, catches
 * up, then gets an event live.
 *
 * <p>Run it with {@code mvn -B -ntp -q -pl samples -am -DskipTests package exec:java
 * -Dexec.mainClass=dev.kwal.samples.OrderService}. It writes to a fresh temporary directory, or to the one given.
 */
public final class OrderService {
    static final String TOPIC = "orders";
    static final String CONSUMER = "fulfilment";

    /** What happened to an order. Records, encoded by {@link #encode} and {@link #decode}: no library needed. */
    public sealed interface OrderEvent permits OrderPlaced, OrderPaid, OrderShipped {
        long orderId();
    }

    public record OrderPlaced(long orderId, String customer, int items, long totalCents) implements OrderEvent {}

    public record OrderPaid(long orderId, long amountCents) implements OrderEvent {}

    public record OrderShipped(long orderId, String carrier) implements OrderEvent {}

    private static final byte PLACED = 1;
    private static final byte PAID = 2;
    private static final byte SHIPPED = 3;

    /** One tag byte, then the fields in order (DataOutput's encoding). */
    static byte[] encode(OrderEvent event) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(64);
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            if (event instanceof OrderPlaced p) {
                out.writeByte(PLACED);
                out.writeLong(p.orderId());
                out.writeUTF(p.customer());
                out.writeInt(p.items());
                out.writeLong(p.totalCents());
            } else if (event instanceof OrderPaid p) {
                out.writeByte(PAID);
                out.writeLong(p.orderId());
                out.writeLong(p.amountCents());
            } else if (event instanceof OrderShipped s) {
                out.writeByte(SHIPPED);
                out.writeLong(s.orderId());
                out.writeUTF(s.carrier());
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }

    /** The event [bytes] hold; throws for bytes that are not one (the topic reports it as a RecordDecodingException). */
    static OrderEvent decode(byte[] bytes) {
        try (DataInputStream in = new DataInputStream(new java.io.ByteArrayInputStream(bytes))) {
            byte tag = in.readByte();
            long orderId = in.readLong();
            OrderEvent event = switch (tag) {
                case PLACED -> new OrderPlaced(orderId, in.readUTF(), in.readInt(), in.readLong());
                case PAID -> new OrderPaid(orderId, in.readLong());
                case SHIPPED -> new OrderShipped(orderId, in.readUTF());
                default -> throw new IllegalArgumentException("unknown order event tag " + tag);
            };
            if (in.available() > 0) throw new IllegalArgumentException(in.available() + " bytes past the event");
            return event;
        } catch (IOException e) {
            throw new IllegalArgumentException("truncated order event", e);
        }
    }

    static String money(long cents) {
        return String.format("%d.%02d", cents / 100, cents % 100);
    }

    /**
     * The fulfilment service's consumer: requests {@code batchSize} events at a time, acts on each, and commits its
     * cursor (the position after the last event it handled) when a batch is done or when it has caught up with the
     * topic, then asks for the next batch. It stops (cancels) once it has committed {@code stopAt}. An effect whose
     * event was handled but not committed runs again after a restart: at-least-once.
     */
    static final class Fulfilment implements Flow.Subscriber<Typed<OrderEvent>> {
        private final AsyncTypedTopic<OrderEvent> events;
        private final int batchSize;
        private final long stopAt;
        /** Completes with the committed position when it stops, or with the error that ended it. */
        final CompletableFuture<Long> stopped = new CompletableFuture<>();

        private Flow.Subscription subscription;
        private long outstanding;
        private long committed = -1;

        Fulfilment(AsyncTypedTopic<OrderEvent> events, int batchSize, long stopAt) {
            this.events = events;
            this.batchSize = batchSize;
            this.stopAt = stopAt;
        }

        @Override
        public void onSubscribe(Flow.Subscription s) {
            subscription = s;
            outstanding = batchSize;
            s.request(batchSize); // nothing is read before this
        }

        @Override
        public void onNext(Typed<OrderEvent> t) {
            // Signals come one at a time on the AsyncWal's callback executor, which may block: commit() is joined.
            System.out.println("  #" + t.getSequence() + " " + act(t.getValue()));
            outstanding--;
            long position = t.getSequence() + 1;
            boolean batchDone = outstanding == 0;
            boolean caughtUp = position >= events.nextSequence(); // a real service would also commit on a timer
            if (batchDone || caughtUp || position >= stopAt) {
                events.commit(CONSUMER, position).join();
                System.out.println("  committed position " + position + (batchDone ? "" : " (caught up)"));
                synchronized (this) {
                    committed = position;
                    notifyAll();
                }
            }
            if (position >= stopAt) {
                subscription.cancel();
                stopped.complete(position);
            } else if (batchDone) {
                outstanding = batchSize;
                subscription.request(batchSize);
            }
        }

        @Override
        public void onError(Throwable error) {
            stopped.completeExceptionally(error); // e.g. a RecordDecodingException naming the record
        }

        @Override
        public void onComplete() {
            stopped.complete(committed); // the log was closed
        }

        /** Blocks until the cursor is committed at [position] or later. */
        synchronized void awaitCommitted(long position) throws InterruptedException {
            while (committed < position) wait();
        }

        private static String act(OrderEvent event) {
            if (event instanceof OrderPlaced p) {
                return "placed " + p.orderId() + ": reserve " + p.items() + " items for " + p.customer();
            } else if (event instanceof OrderPaid p) {
                return "paid " + p.orderId() + " (" + money(p.amountCents()) + "): pack it";
            } else {
                OrderShipped s = (OrderShipped) event;
                return "shipped " + s.orderId() + " by " + s.carrier() + ": email the customer";
            }
        }
    }

    public static void main(String[] args) throws Exception {
        Path dir = args.length > 0 ? Path.of(args[0]) : Files.createTempDirectory("kwal-orders");
        System.out.println("Order service on " + dir);
        try (AsyncWal wal = AsyncWal.of(Kwal.open(WalOptions.builder(dir).segmentSize(4 << 20).build()))) {
            AsyncTypedTopic<OrderEvent> orders =
                AsyncTypedTopic.of(wal, TOPIC, OrderService::encode, OrderService::decode);

            // 1. The shop: four orders, three payments in one all-or-nothing batch, one shipment. Each future
            //    completes once its events are durable.
            List<OrderPlaced> placed = List.of(
                new OrderPlaced(1001, "alice", 2, 2_500),
                new OrderPlaced(1002, "bob", 1, 1_999),
                new OrderPlaced(1003, "carol", 5, 12_000),
                new OrderPlaced(1004, "dave", 3, 4_250));
            for (OrderPlaced p : placed) {
                long seq = orders.append(p).join();
                System.out.println("Shop: #" + seq + " order " + p.orderId() + " placed by " + p.customer() + ", "
                    + money(p.totalCents()));
            }
            BatchPositions paid = orders.appendBatch(List.of(
                new OrderPaid(1001, 2_500), new OrderPaid(1002, 1_999), new OrderPaid(1004, 4_250))).join();
            System.out.println("Shop: #" + paid.first() + "..#" + paid.last() + " orders 1001, 1002, 1004 paid (one batch)");
            System.out.println("Shop: #" + orders.append(new OrderShipped(1001, "DHL")).join() + " order 1001 shipped");

            // 2. Fulfilment, run 1: from its committed cursor (none yet: from the start), 3 events at a time; it is
            //    stopped after position 6.
            System.out.println("Fulfilment run 1: cursor " + orders.committed(CONSUMER) + ", 3 events at a time");
            Fulfilment run1 = new Fulfilment(orders, 3, 6);
            orders.follow(CONSUMER).subscribe(run1);
            System.out.println("Fulfilment run 1: stopped at position " + run1.stopped.get(30, TimeUnit.SECONDS));

            // 3. Meanwhile the shop goes on.
            System.out.println("Shop: #" + orders.append(new OrderShipped(1002, "UPS")).join() + " order 1002 shipped");
            System.out.println("Shop: #" + orders.append(new OrderPaid(1003, 12_000)).join() + " order 1003 paid");

            // 4. Fulfilment, run 2: resumes at the committed cursor, catches up, then follows live.
            System.out.println("Fulfilment run 2: resumes at cursor " + orders.committed(CONSUMER));
            Fulfilment run2 = new Fulfilment(orders, 3, 11);
            orders.follow(CONSUMER).subscribe(run2);
            run2.awaitCommitted(orders.nextSequence());
            System.out.println("Shop: shipping order 1004 while fulfilment follows"); // printed before it is sent
            orders.append(new OrderShipped(1004, "DHL")).join();
            System.out.println("Fulfilment run 2: stopped at position " + run2.stopped.get(30, TimeUnit.SECONDS));

            // 5. The orders' state is the replay of their events.
            Map<Long, String> state = new LinkedHashMap<>();
            orders.forEach(0, t -> state.put(t.getValue().orderId(), t.getValue().getClass().getSimpleName()
                .replace("Order", "").toLowerCase()));
            System.out.println("Orders: " + state.entrySet().stream().map(e -> e.getKey() + " " + e.getValue())
                .collect(Collectors.joining(", ")));
            System.out.println("Topic \"" + TOPIC + "\": " + orders.nextSequence() + " events; cursor of \"" + CONSUMER
                + "\": " + orders.committed(CONSUMER));
        }
    }
}
