package dev.kwal.samples;

import dev.kwal.AsyncWal;
import dev.kwal.BatchPositions;
import dev.kwal.WalOptions;
import dev.kwal.engine.Kwal;
import dev.kwal.typed.AsyncTypedTopic;
import dev.kwal.typed.RecordDecodingException;
import dev.kwal.typed.TopicFormats;
import dev.kwal.typed.Typed;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Typed topics from Java: a Java record with a plain codec pair, and a Kotlin {@code @Serializable} class in JSON.
 *
 * <p>Run it with {@code mvn -B -ntp -q -pl samples -am -DskipTests package exec:java
 * -Dexec.mainClass=dev.kwal.samples.JavaTypedTopics}. It writes to a fresh temporary directory, or to the one given.
 */
public final class JavaTypedTopics {

    /** A reading, encoded by hand: 8 bytes of temperature, then the sensor's name in UTF-8. */
    public record Reading(String sensor, double celsius) {
        static byte[] toBytes(Reading r) {
            byte[] name = r.sensor().getBytes(StandardCharsets.UTF_8);
            return ByteBuffer.allocate(8 + name.length).putDouble(r.celsius()).put(name).array();
        }

        static Reading fromBytes(byte[] bytes) {
            ByteBuffer b = ByteBuffer.wrap(bytes);
            double celsius = b.getDouble();
            return new Reading(new String(bytes, 8, bytes.length - 8, StandardCharsets.UTF_8), celsius);
        }
    }

    public static void main(String[] args) throws Exception {
        Path dir = args.length > 0 ? Path.of(args[0]) : Files.createTempDirectory("kwal-java-typed");
        try (AsyncWal wal = AsyncWal.of(Kwal.open(WalOptions.builder(dir).segmentSize(4 << 20).build()))) {
            // 1. A Java type and two functions: no kotlinx.serialization needed.
            AsyncTypedTopic<Reading> readings =
                AsyncTypedTopic.of(wal, "readings", Reading::toBytes, Reading::fromBytes);
            long seq = readings.append(new Reading("boiler", 71.5)).join();
            BatchPositions batch =
                readings.appendBatch(List.of(new Reading("attic", 18.25), new Reading("cellar", 12.0))).join();
            System.out.println("Appended reading #" + seq + ", then a batch at #" + batch.first() + ".." + batch.last());
            readings.forEach(0, (Typed<Reading> t) ->
                System.out.println("  #" + t.getSequence() + " " + t.getValue().sensor() + " " + t.getValue().celsius()));

            // 2. A Kotlin @Serializable class, in JSON, through its serializer.
            AsyncTypedTopic<Job> jobs = AsyncTypedTopic.of(wal, "jobs", Job.Companion.serializer(), TopicFormats.json);
            jobs.append(new Job("job-1", "send invoice 17")).join();
            System.out.println("Job #0 stored as " + new String(wal.read("jobs", 0).join().getPayload(), StandardCharsets.UTF_8));
            System.out.println("Job #0 read back: " + jobs.read(0).join().getValue());

            // 3. Bytes that are not a Job: a typed error naming the record, not a crash and not a skip.
            wal.append("jobs", "not json".getBytes(StandardCharsets.UTF_8)).join();
            try {
                jobs.forEach(0, t -> System.out.println("  job " + t.getValue().getId()));
            } catch (RecordDecodingException e) {
                System.out.println("Stopped at record " + e.getSequence() + " of \"" + e.getTopic() + "\": "
                    + e.getCause().getClass().getSimpleName());
            }
        }
    }
}
