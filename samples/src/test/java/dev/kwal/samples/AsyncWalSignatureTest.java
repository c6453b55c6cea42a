package dev.kwal.samples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kwal.AsyncWal;
import dev.kwal.BatchPositions;
import dev.kwal.RecordChecks;
import dev.kwal.RecordView;
import dev.kwal.Wal;
import dev.kwal.typed.AsyncTypedTopic;
import dev.kwal.typed.RecordDecodingException;
import dev.kwal.typed.TopicCodec;
import dev.kwal.typed.TopicFormats;
import dev.kwal.typed.Typed;
import dev.kwal.typed.TypedTopic;
import java.lang.reflect.Constructor;
import java.lang.reflect.Executable;
import java.lang.reflect.Field;
import java.lang.reflect.GenericArrayType;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.lang.reflect.WildcardType;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * The Java facade speaks Java: no public signature of {@link AsyncWal}, its public nested types,
 * {@link BatchPositions}, or the {@link RecordView} and {@link RecordChecks} its view calls take, mentions a type of a {@code kotlin.} package (kotlin.Unit, LongRange, Continuation,
 * kotlin.jvm.functions.*, kotlin.time.*, Kotlin collections...), as a parameter, return, exception, field or generic
 * argument, at any depth. Synthetic members (Kotlin's {@code $default} bridges and accessors) are invisible to
 * javac and skipped.
 *
 * <p>One exemption, checked to be the only one: the static {@code getEntries()} that the Kotlin compiler adds to every
 * enum class (here {@code AsyncWal.WhenFull} and {@code RecordChecks}); it cannot be switched off, and Java has
 * {@code values()} for it.
 */
class AsyncWalSignatureTest {

    /** Every public member of [types] and of their public nested types, with each Kotlin type it mentions. */
    private static List<String> kotlinTypesIn(Class<?>... types) {
        List<String> found = new ArrayList<>();
        Deque<Class<?>> todo = new ArrayDeque<>(Arrays.asList(types));
        Set<Class<?>> seen = new HashSet<>();
        while (!todo.isEmpty()) {
            Class<?> c = todo.pop();
            if (!seen.add(c)) continue;
            checkType(c.getName() + " extends", c.getGenericSuperclass(), found);
            for (Type i : c.getGenericInterfaces()) checkType(c.getName() + " implements", i, found);
            for (Constructor<?> k : c.getConstructors()) checkExecutable(c, k, found);
            for (Method m : c.getMethods()) {
                if (isEnumEntries(c, m)) continue;
                checkExecutable(c, m, found);
            }
            for (Field f : c.getFields()) {
                if (f.isSynthetic()) continue;
                checkType(c.getName() + "." + f.getName(), f.getGenericType(), found);
            }
            for (Class<?> nested : c.getClasses()) {
                if (!nested.isSynthetic()) todo.add(nested);
            }
        }
        return found;
    }

    private static boolean isEnumEntries(Class<?> c, Method m) {
        return c.isEnum() && m.getName().equals("getEntries") && m.getParameterCount() == 0
            && Modifier.isStatic(m.getModifiers()) && m.getReturnType().getName().equals("kotlin.enums.EnumEntries");
    }

    private static void checkExecutable(Class<?> owner, Executable e, List<String> found) {
        if (e.isSynthetic() || e.getDeclaringClass() == Object.class) return;
        String where = owner.getName() + "#" + e.getName();
        if (e instanceof Method) checkType(where + " returns", ((Method) e).getGenericReturnType(), found);
        for (Type p : e.getGenericParameterTypes()) checkType(where + " parameter", p, found);
        for (Type x : e.getGenericExceptionTypes()) checkType(where + " throws", x, found);
        for (TypeVariable<?> v : e.getTypeParameters()) checkType(where + " type parameter", v, found);
    }

    private static void checkType(String where, Type type, List<String> found) {
        checkType(where, type, found, new HashSet<>());
    }

    private static void checkType(String where, Type type, List<String> found, Set<Type> seen) {
        if (type == null || !seen.add(type)) return;
        if (type instanceof Class<?>) {
            Class<?> c = (Class<?>) type;
            while (c.isArray()) c = c.getComponentType();
            if (c.getName().startsWith("kotlin.")) found.add(where + ": " + c.getName());
        } else if (type instanceof ParameterizedType) {
            ParameterizedType p = (ParameterizedType) type;
            checkType(where, p.getRawType(), found, seen);
            checkType(where, p.getOwnerType(), found, seen);
            for (Type a : p.getActualTypeArguments()) checkType(where + " <generic>", a, found, seen);
        } else if (type instanceof WildcardType) {
            WildcardType w = (WildcardType) type;
            for (Type b : w.getUpperBounds()) checkType(where, b, found, seen);
            for (Type b : w.getLowerBounds()) checkType(where, b, found, seen);
        } else if (type instanceof GenericArrayType) {
            checkType(where, ((GenericArrayType) type).getGenericComponentType(), found, seen);
        } else if (type instanceof TypeVariable<?>) {
            for (Type b : ((TypeVariable<?>) type).getBounds()) checkType(where, b, found, seen);
        }
    }

    @Test
    void noPublicSignatureOfTheJavaFacadeMentionsAKotlinType() {
        List<String> found = kotlinTypesIn(AsyncWal.class, BatchPositions.class, RecordView.class, RecordChecks.class);
        assertEquals(List.of(), found, "Kotlin types in the Java facade's public signatures");
    }

    /**
     * The typed Java API too (wal-typed): AsyncTypedTopic with its typed publishers and BatchPositions, the values it
     * hands out, its codecs and its error.
     */
    @Test
    void noPublicSignatureOfTheTypedJavaApiMentionsAKotlinType() {
        List<String> found = kotlinTypesIn(AsyncTypedTopic.class, Typed.class, TopicCodec.class, TopicFormats.class,
            RecordDecodingException.class);
        assertEquals(List.of(), found, "Kotlin types in the typed Java API's public signatures");
        // The Kotlin side is not held to it, and the check sees that: TypedTopic suspends.
        assertTrue(String.join("\n", kotlinTypesIn(TypedTopic.class)).contains("kotlin.coroutines.Continuation"));
    }

    @Test
    void theCheckFindsKotlinTypesWhereThereAreSome() {
        // The check itself must be able to fail: Wal's suspending calls take a kotlin.coroutines.Continuation, and
        // its appendBatch returns a kotlin.ranges.LongRange.
        String found = String.join("\n", kotlinTypesIn(Wal.class));
        assertTrue(found.contains("kotlin.coroutines.Continuation"), found);
        assertTrue(found.contains("dev.kwal.Wal#appendBatch parameter: kotlin.coroutines.Continuation"), found);
        assertTrue(found.contains("kotlin.ranges.LongRange"), found);
    }

    @Test
    void theOnlyExemptionIsTheEnumEntriesOfTheEnums() throws Exception {
        Method entries = AsyncWal.WhenFull.class.getMethod("getEntries");
        assertTrue(isEnumEntries(AsyncWal.WhenFull.class, entries));
        assertEquals(List.of(AsyncWal.WhenFull.WAIT, AsyncWal.WhenFull.FAIL), List.of(AsyncWal.WhenFull.values()));
        assertTrue(isEnumEntries(RecordChecks.class, RecordChecks.class.getMethod("getEntries")));
        assertEquals(List.of(RecordChecks.ALL, RecordChecks.SKIP_SEALED), List.of(RecordChecks.values()));
    }

    /** Every public call of Wal has a counterpart of the same name in AsyncWal (properties as methods). */
    @Test
    void everyPublicCallOfWalHasAnAsyncWalCounterpart() {
        Set<String> facade = Arrays.stream(AsyncWal.class.getMethods()).map(Method::getName)
            .collect(Collectors.toSet());
        Set<String> missing = new TreeSet<>();
        for (Method m : Wal.class.getMethods()) {
            if (m.isSynthetic() || m.isDefault() || Modifier.isStatic(m.getModifiers())) continue;
            String name = m.getName();
            String want;
            if (name.equals("getDirectory")) want = "directory";
            else if (name.equals("getRecovery")) want = "recovery";
            else want = name;
            if (!facade.contains(want)) missing.add(name + " -> " + want);
        }
        assertEquals(Set.of(), missing, "Wal calls without an AsyncWal counterpart");
        // And with each start kind: replay and follow from a sequence and from an Instant, follow from a consumer.
        Set<String> publishers = Arrays.stream(AsyncWal.class.getMethods())
            .filter(m -> m.getReturnType() == java.util.concurrent.Flow.Publisher.class)
            .map(m -> m.getName() + Arrays.stream(m.getParameterTypes()).map(Class::getSimpleName)
                .collect(Collectors.joining(",", "(", ")")))
            .collect(Collectors.toCollection(TreeSet::new));
        assertEquals(new TreeSet<>(List.of("follow(String,Instant)", "follow(String,String)", "follow(String,long)",
            "replay(String,Instant)", "replay(String,long)")), publishers);
    }
}
