package io.flinkqwen3.runtime;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * A JSON Schema compiled to a deterministic automaton over UTF-8 bytes that accepts exactly the
 * JSON texts this engine lets the model write for it: every accepted text parses and validates.
 *
 * <p>The subset (what enrichment needs): {@code type} object (with {@code properties},
 * {@code required}; {@code additionalProperties} is accepted, no other property is ever written),
 * array (with {@code items}, {@code minItems}, {@code maxItems}), string, number, integer, boolean,
 * null, or a list of these; {@code enum} and {@code const}; nested to {@link #MAX_DEPTH} levels.
 * Annotations ({@code title}, {@code description}, {@code $schema}, ...) are ignored; any other
 * keyword is refused with its path, so a schema is never silently weakened.
 *
 * <p>The form written: properties in the order the schema lists them (optional ones may be left
 * out), no whitespace except one optional space after {@code :} and {@code ,}, and up to two
 * leading spaces or newlines (what follows {@code </think>}). Strings are valid UTF-8, control
 * characters escaped, {@code \\u} escapes outside the surrogate range.
 *
 * <p>Built by Thompson's construction (one NFA fragment per schema node) and the subset
 * construction. {@link #distance(int)} is the fewest bytes from a state to a complete text: every
 * byte is a token of a byte-level BPE vocabulary, so it bounds the tokens needed to finish.
 */
public final class JsonSchemaGrammar {
    /**
     * Nesting levels of objects and arrays accepted: 10 levels of arrays of strings fit the automaton
     * limits; past that the size limit would refuse even the simplest schema, with a vaguer reason.
     */
    public static final int MAX_DEPTH = 10;
    /** Longest schema text accepted, in characters. */
    public static final int MAX_SCHEMA_CHARS = 64 * 1024;
    /** Automaton size limits: a schema beyond them is refused instead of exhausting the heap. */
    static final int MAX_NFA_STATES = 200_000, MAX_DFA_STATES = 20_000;
    /** What a schema beyond either size limit is told: one limit for the user, whichever stage hit it. */
    static final String TOO_LARGE = "json_schema is too large: its automaton would exceed the size limit (" + MAX_NFA_STATES
            + " NFA / " + MAX_DFA_STATES + " DFA states); use fewer enum values or optional properties, smaller minItems/maxItems,"
            + " or less nesting";
    /** Items written out one by one for minItems/maxItems (each a copy of the item's automaton). */
    static final int MAX_ITEM_BOUND = 64;

    private static final Set<String> ANNOTATIONS = Set.of("title", "description", "$schema", "$id", "$comment",
            "default", "examples", "deprecated", "readOnly", "writeOnly");
    private static final Set<String> KEYWORDS = Set.of("type", "properties", "required", "additionalProperties", "items",
            "minItems", "maxItems", "enum", "const");
    private static final Set<String> TYPES = Set.of("object", "array", "string", "number", "integer", "boolean", "null");
    private static final ObjectMapper JSON = JsonMapper.builder().build();

    /** Transitions: next[state * 256 + byte], -1 where the byte is not allowed. */
    private final int[] next;
    private final boolean[] accepting;
    private final int[] distance;
    private final int states;

    private JsonSchemaGrammar(int[] next, boolean[] accepting, int states) {
        this.next = next;
        this.accepting = accepting;
        this.states = states;
        this.distance = distances(next, accepting, states);
    }

    /**
     * Compiles a schema given as JSON text. Throws IllegalArgumentException whose message starts
     * with "json_schema" and names the offending keyword's path (e.g.
     * {@code json_schema /properties/age: keyword 'minimum' is not supported ...}).
     */
    public static JsonSchemaGrammar compile(String schemaJson) {
        synchronized (RECENT) {
            JsonSchemaGrammar g = RECENT.get(schemaJson);
            if (g != null) {
                return g;
            }
        }
        JsonSchemaGrammar g = compileText(schemaJson);
        synchronized (RECENT) {
            RECENT.put(schemaJson, g);
        }
        return g;
    }

    /** Grammars of the most recently compiled schema texts: a job sends the same schema with every record. */
    private static final Map<String, JsonSchemaGrammar> RECENT = new java.util.LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, JsonSchemaGrammar> eldest) {
            return size() > 64;
        }
    };

    private static JsonSchemaGrammar compileText(String schemaJson) {
        if (schemaJson == null || schemaJson.isBlank()) {
            throw new IllegalArgumentException("json_schema is empty");
        }
        if (schemaJson.length() > MAX_SCHEMA_CHARS) {
            throw new IllegalArgumentException("json_schema has " + schemaJson.length() + " characters, at most "
                    + MAX_SCHEMA_CHARS + " are accepted");
        }
        JsonNode schema;
        try {
            schema = JSON.readTree(schemaJson);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("json_schema is not JSON: " + e.getOriginalMessage());
        }
        return compile(schema);
    }

    /** Compiles a parsed schema; errors as {@link #compile(String)}. */
    public static JsonSchemaGrammar compile(JsonNode schema) {
        var nfa = new Nfa();
        Frag value = nfa.value(schema, "", 0);
        Frag leading = nfa.upTo(2, nfa.bytes(" \n"));
        int start = nfa.state(), end = nfa.state();
        nfa.epsilon(start, leading.in);
        nfa.epsilon(leading.out, value.in);
        nfa.epsilon(value.out, end);
        return nfa.determinize(start, end);
    }

    public int start() {
        return 0;
    }

    public int states() {
        return states;
    }

    /** The state after byte b (0..255), or -1 when b is not allowed there. */
    public int step(int state, int b) {
        return next[state * 256 + b];
    }

    /** Whether the bytes read so far are a complete JSON text that validates. */
    public boolean accepting(int state) {
        return accepting[state];
    }

    /** The fewest bytes that lead from the state to an accepting one. */
    public int distance(int state) {
        return distance[state];
    }

    /** The state after the bytes, or -1 if the automaton rejects them. */
    public int walk(int state, byte[] bytes) {
        for (int i = 0; i < bytes.length && state >= 0; i++) {
            state = next[state * 256 + (bytes[i] & 0xFF)];
        }
        return state;
    }

    /** Whether the whole text is accepted (for tests and checks of a finished answer). */
    public boolean matches(String text) {
        int s = walk(start(), text.getBytes(StandardCharsets.UTF_8));
        return s >= 0 && accepting[s];
    }

    /** Breadth-first search backwards from the accepting states. Only states that can finish are built. */
    private static int[] distances(int[] next, boolean[] accepting, int states) {
        List<List<Integer>> into = new ArrayList<>(states);
        for (int s = 0; s < states; s++) {
            into.add(new ArrayList<>());
        }
        for (int s = 0; s < states; s++) {
            for (int b = 0; b < 256; b++) {
                int t = next[s * 256 + b];
                if (t >= 0) {
                    into.get(t).add(s);
                }
            }
        }
        int[] d = new int[states];
        Arrays.fill(d, Integer.MAX_VALUE);
        var queue = new ArrayDeque<Integer>();
        for (int s = 0; s < states; s++) {
            if (accepting[s]) {
                d[s] = 0;
                queue.add(s);
            }
        }
        while (!queue.isEmpty()) {
            int s = queue.poll();
            for (int p : into.get(s)) {
                if (d[p] == Integer.MAX_VALUE) {
                    d[p] = d[s] + 1;
                    queue.add(p);
                }
            }
        }
        return d;
    }

    /** An NFA fragment: one entry and one exit state. */
    private record Frag(int in, int out) {}

    /** A Thompson NFA under construction: byte-range edges and epsilon edges. */
    private static final class Nfa {
        /** Per state: edges as (lo, hi, target) triples. */
        private final List<int[]> edges = new ArrayList<>();
        private final List<int[]> epsilons = new ArrayList<>();
        private final List<Integer> edgeCount = new ArrayList<>();
        private final List<Integer> epsilonCount = new ArrayList<>();

        int state() {
            if (edges.size() >= MAX_NFA_STATES) {
                throw new IllegalArgumentException(TOO_LARGE);
            }
            edges.add(new int[6]);
            epsilons.add(new int[2]);
            edgeCount.add(0);
            epsilonCount.add(0);
            return edges.size() - 1;
        }

        void edge(int from, int lo, int hi, int to) {
            int n = edgeCount.get(from);
            int[] e = edges.get(from);
            if (n * 3 + 3 > e.length) {
                e = Arrays.copyOf(e, e.length * 2);
                edges.set(from, e);
            }
            e[n * 3] = lo;
            e[n * 3 + 1] = hi;
            e[n * 3 + 2] = to;
            edgeCount.set(from, n + 1);
        }

        void epsilon(int from, int to) {
            int n = epsilonCount.get(from);
            int[] e = epsilons.get(from);
            if (n + 1 > e.length) {
                e = Arrays.copyOf(e, e.length * 2);
                epsilons.set(from, e);
            }
            e[n] = to;
            epsilonCount.set(from, n + 1);
        }

        /** One byte from a set of ranges (lo, hi pairs). */
        Frag ranges(int... bounds) {
            int in = state(), out = state();
            for (int i = 0; i < bounds.length; i += 2) {
                edge(in, bounds[i], bounds[i + 1], out);
            }
            return new Frag(in, out);
        }

        /** One byte out of the characters of an ASCII string. */
        Frag bytes(String chars) {
            int in = state(), out = state();
            for (char c : chars.toCharArray()) {
                edge(in, c, c, out);
            }
            return new Frag(in, out);
        }

        Frag literal(byte[] text) {
            int in = state(), at = in;
            for (byte b : text) {
                int to = state();
                edge(at, b & 0xFF, b & 0xFF, to);
                at = to;
            }
            return new Frag(in, at);
        }

        Frag literal(String text) {
            return literal(text.getBytes(StandardCharsets.UTF_8));
        }

        Frag seq(Frag... parts) {
            for (int i = 1; i < parts.length; i++) {
                epsilon(parts[i - 1].out, parts[i].in);
            }
            return new Frag(parts[0].in, parts[parts.length - 1].out);
        }

        Frag alt(List<Frag> options) {
            int in = state(), out = state();
            for (Frag f : options) {
                epsilon(in, f.in);
                epsilon(f.out, out);
            }
            return new Frag(in, out);
        }

        Frag optional(Frag f) {
            epsilon(f.in, f.out);
            return f;
        }

        Frag star(Frag f) {
            int in = state(), out = state();
            epsilon(in, f.in);
            epsilon(in, out);
            epsilon(f.out, f.in);
            epsilon(f.out, out);
            return new Frag(in, out);
        }

        /** Zero to n repetitions of a one-byte fragment (reused: it is a plain byte class). */
        Frag upTo(int n, Frag oneByte) {
            int in = state(), at = in;
            int out = state();
            epsilon(in, out);
            for (int i = 0; i < n; i++) {
                int to = state();
                copyEdges(oneByte.in, at, to);
                epsilon(to, out);
                at = to;
            }
            return new Frag(in, out);
        }

        private void copyEdges(int from, int at, int to) {
            int[] e = edges.get(from);
            for (int i = 0; i < edgeCount.get(from); i++) {
                edge(at, e[i * 3], e[i * 3 + 1], to);
            }
        }

        Frag space() {
            return optional(bytes(" "));
        }

        // ---- JSON values ----

        Frag value(JsonNode schema, String path, int depth) {
            String where = path.isEmpty() ? "/" : path;
            if (depth > MAX_DEPTH) {
                throw new IllegalArgumentException("json_schema " + where + ": nested deeper than " + MAX_DEPTH + " levels");
            }
            if (schema == null || !schema.isObject()) {
                throw new IllegalArgumentException("json_schema " + where + ": expected a schema object, got "
                        + (schema == null ? "nothing" : schema.getNodeType().toString().toLowerCase()));
            }
            for (var names = schema.fieldNames(); names.hasNext(); ) {
                String k = names.next();
                if (!KEYWORDS.contains(k) && !ANNOTATIONS.contains(k)) {
                    throw new IllegalArgumentException("json_schema " + where + ": keyword '" + k + "' is not supported "
                            + "(supported: " + new TreeSet<>(KEYWORDS) + "; annotations are ignored: " + new TreeSet<>(ANNOTATIONS) + ")");
                }
            }
            Set<String> types = types(schema, where);
            if (schema.has("const") || schema.has("enum")) {
                return literals(schema, types, where);
            }
            if (types.isEmpty()) {
                throw new IllegalArgumentException("json_schema " + where + ": needs 'type', 'enum' or 'const'");
            }
            List<Frag> options = new ArrayList<>();
            for (String type : types) {
                options.add(switch (type) {
                    case "object" -> object(schema, path, depth);
                    case "array" -> array(schema, path, depth);
                    case "string" -> string();
                    case "number" -> number(false);
                    case "integer" -> number(true);
                    case "boolean" -> alt(List.of(literal("true"), literal("false")));
                    default -> literal("null");
                });
            }
            return options.size() == 1 ? options.get(0) : alt(options);
        }

        private static Set<String> types(JsonNode schema, String where) {
            JsonNode t = schema.get("type");
            Set<String> types = new LinkedHashSet<>();
            if (t == null) {
                return types;
            }
            List<JsonNode> list = new ArrayList<>();
            if (t.isArray()) {
                t.forEach(list::add);
            } else {
                list.add(t);
            }
            for (JsonNode n : list) {
                if (!n.isTextual() || !TYPES.contains(n.asText())) {
                    throw new IllegalArgumentException("json_schema " + where + ": type " + n + " is not supported (supported: "
                            + new TreeSet<>(TYPES) + ")");
                }
                types.add(n.asText());
            }
            if (types.isEmpty()) {
                throw new IllegalArgumentException("json_schema " + where + ": 'type' is an empty list");
            }
            return types;
        }

        /** enum / const: exactly these values, written compactly; filtered by 'type' when both are given. */
        private Frag literals(JsonNode schema, Set<String> types, String where) {
            List<JsonNode> values = new ArrayList<>();
            if (schema.has("const")) {
                values.add(schema.get("const"));
            }
            if (schema.has("enum")) {
                JsonNode e = schema.get("enum");
                if (!e.isArray() || e.isEmpty()) {
                    throw new IllegalArgumentException("json_schema " + where + ": 'enum' must be a non-empty list, got " + brief(e));
                }
                if (schema.has("const")) {
                    values.removeIf(v -> !contains(e, v));
                } else {
                    e.forEach(values::add);
                }
            }
            if (!types.isEmpty()) {
                values.removeIf(v -> !types.contains(jsonType(v)) && !(types.contains("number") && v.isIntegralNumber()));
            }
            if (values.isEmpty()) {
                throw new IllegalArgumentException("json_schema " + where + ": no value satisfies 'enum'/'const' and 'type' together");
            }
            List<Frag> options = new ArrayList<>();
            Set<String> seen = new LinkedHashSet<>();
            for (JsonNode v : values) {
                String text = v.toString(); // Jackson's compact form: valid JSON, UTF-8 kept as is
                if (seen.add(text)) {
                    options.add(literal(text));
                }
            }
            return options.size() == 1 ? options.get(0) : alt(options);
        }

        private static boolean contains(JsonNode list, JsonNode v) {
            for (JsonNode x : list) {
                if (x.equals(v)) {
                    return true;
                }
            }
            return false;
        }

        private static String jsonType(JsonNode v) {
            return switch (v.getNodeType()) {
                case OBJECT -> "object";
                case ARRAY -> "array";
                case STRING -> "string";
                case NUMBER -> v.isIntegralNumber() ? "integer" : "number";
                case BOOLEAN -> "boolean";
                default -> "null";
            };
        }

        private Frag object(JsonNode schema, String path, int depth) {
            String where = path.isEmpty() ? "/" : path;
            JsonNode props = schema.get("properties");
            if (props == null || !props.isObject() || props.isEmpty()) {
                throw new IllegalArgumentException("json_schema " + where + ": an object needs a non-empty 'properties' map"
                        + " (the model only writes the properties it lists)");
            }
            Set<String> required = new LinkedHashSet<>();
            JsonNode req = schema.get("required");
            if (req != null) {
                if (!req.isArray()) {
                    throw new IllegalArgumentException("json_schema " + where + ": 'required' must be a list of names, got " + brief(req));
                }
                for (JsonNode r : req) {
                    if (!r.isTextual() || !props.has(r.asText())) {
                        throw new IllegalArgumentException("json_schema " + where + ": required property " + r
                                + " has no schema in 'properties'");
                    }
                    required.add(r.asText());
                }
            }
            JsonNode additional = schema.get("additionalProperties");
            if (additional != null && !additional.isBoolean() && !additional.isObject()) {
                throw new IllegalArgumentException("json_schema " + where + ": 'additionalProperties' must be a boolean or a schema");
            }
            // Two tracks: 'none' before the first property written, 'some' after it (then a comma precedes each).
            int none = state(), some = state();
            int open = state();
            edge(open, '{', '{', none);
            for (Map.Entry<String, JsonNode> e : props.properties()) {
                String name = e.getKey();
                String at = path + "/properties/" + name;
                int noneNext = state(), someNext = state();
                Frag first = seq(literal(JSON.valueToTree(name).toString() + ":"), space(), value(e.getValue(), at, depth + 1));
                epsilon(none, first.in);
                epsilon(first.out, someNext);
                Frag later = seq(literal(","), space(), literal(JSON.valueToTree(name).toString() + ":"), space(),
                        value(e.getValue(), at, depth + 1));
                epsilon(some, later.in);
                epsilon(later.out, someNext);
                if (!required.contains(name)) {
                    epsilon(none, noneNext);
                    epsilon(some, someNext);
                }
                none = noneNext;
                some = someNext;
            }
            int close = state();
            edge(none, '}', '}', close);
            edge(some, '}', '}', close);
            return new Frag(open, close);
        }

        private Frag array(JsonNode schema, String path, int depth) {
            String where = path.isEmpty() ? "/" : path;
            JsonNode items = schema.get("items");
            if (items == null || !items.isObject()) {
                throw new IllegalArgumentException("json_schema " + where + ": an array needs an 'items' schema");
            }
            int min = bound(schema, "minItems", 0, where);
            int max = bound(schema, "maxItems", -1, where);
            if (max >= 0 && max < min) {
                throw new IllegalArgumentException("json_schema " + where + ": maxItems " + max + " is below minItems " + min);
            }
            if (min > MAX_ITEM_BOUND || (max >= 0 && max > MAX_ITEM_BOUND && max != min)) {
                throw new IllegalArgumentException("json_schema " + where + ": minItems/maxItems above " + MAX_ITEM_BOUND
                        + " are not supported");
            }
            String at = path + "/items";
            Frag open = literal("[");
            Frag close = literal("]");
            if (max == 0) {
                return seq(open, close);
            }
            // first item, then (", " item) repeated: min - 1 required, then optional up to max (or any number)
            List<Frag> parts = new ArrayList<>();
            parts.add(open);
            Frag rest;
            List<Frag> more = new ArrayList<>();
            for (int i = 1; i < Math.max(min, 1); i++) {
                more.add(seq(literal(","), space(), value(items, at, depth + 1)));
            }
            if (max < 0) {
                more.add(star(seq(literal(","), space(), value(items, at, depth + 1))));
            } else {
                // nested optionals: (, item (, item (...)?)?)?
                Frag tail = null;
                for (int i = Math.max(min, 1); i < max; i++) {
                    Frag one = seq(literal(","), space(), value(items, at, depth + 1));
                    tail = tail == null ? optional(one) : optional(seq(one, tail));
                }
                if (tail != null) {
                    more.add(tail);
                }
            }
            List<Frag> body = new ArrayList<>();
            body.add(value(items, at, depth + 1));
            body.addAll(more);
            rest = seq(body.toArray(Frag[]::new));
            parts.add(min == 0 ? optional(rest) : rest);
            parts.add(close);
            return seq(parts.toArray(Frag[]::new));
        }

        private static int bound(JsonNode schema, String key, int fallback, String where) {
            JsonNode v = schema.get(key);
            if (v == null) {
                return fallback;
            }
            if (!v.canConvertToInt() || !v.isIntegralNumber() || v.asInt() < 0) {
                throw new IllegalArgumentException("json_schema " + where + ": '" + key + "' must be a non-negative integer, got " + v);
            }
            return v.asInt();
        }

        /** A JSON string: valid UTF-8, no raw control characters, escapes as RFC 8259 (no lone surrogates). */
        private Frag string() {
            int open = state(), body = state(), close = state();
            edge(open, '"', '"', body);
            edge(body, '"', '"', close);
            edge(body, 0x20, 0x21, body);
            edge(body, 0x23, 0x5B, body);
            edge(body, 0x5D, 0x7F, body);
            // UTF-8 sequences (RFC 3629 table: no overlong forms, no surrogates, nothing above U+10FFFF)
            int cont1 = state(), cont2 = state(), cont3 = state();
            edge(cont1, 0x80, 0xBF, body);
            edge(cont2, 0x80, 0xBF, cont1);
            edge(cont3, 0x80, 0xBF, cont2);
            edge(body, 0xC2, 0xDF, cont1);
            int e0 = state(), ed = state(), f0 = state(), f4 = state();
            edge(body, 0xE0, 0xE0, e0);
            edge(e0, 0xA0, 0xBF, cont1);
            edge(body, 0xE1, 0xEC, cont2);
            edge(body, 0xED, 0xED, ed);
            edge(ed, 0x80, 0x9F, cont1);
            edge(body, 0xEE, 0xEF, cont2);
            edge(body, 0xF0, 0xF0, f0);
            edge(f0, 0x90, 0xBF, cont2);
            edge(body, 0xF1, 0xF3, cont3);
            edge(body, 0xF4, 0xF4, f4);
            edge(f4, 0x80, 0x8F, cont2);
            // escapes
            int escape = state(), u = state(), hex3 = state(), hex2 = state(), hex1 = state(), d = state();
            edge(body, '\\', '\\', escape);
            for (char c : "\"\\/bfnrt".toCharArray()) {
                edge(escape, c, c, body);
            }
            edge(escape, 'u', 'u', u);
            int[][] hex = {{'0', '9'}, {'a', 'f'}, {'A', 'F'}};
            // first hex digit: anything but d/D goes on freely; d/D must be followed by 0-7 (not a surrogate)
            edge(u, '0', '9', hex3);
            edge(u, 'a', 'c', hex3);
            edge(u, 'A', 'C', hex3);
            edge(u, 'e', 'f', hex3);
            edge(u, 'E', 'F', hex3);
            edge(u, 'd', 'd', d);
            edge(u, 'D', 'D', d);
            edge(d, '0', '7', hex2);
            for (int[] r : hex) {
                edge(hex3, r[0], r[1], hex2);
                edge(hex2, r[0], r[1], hex1);
                edge(hex1, r[0], r[1], body);
            }
            return new Frag(open, close);
        }

        /** -?(0|[1-9][0-9]*), then for numbers (\.[0-9]+)?([eE][+-]?[0-9]+)? */
        private Frag number(boolean integer) {
            Frag sign = optional(literal("-"));
            Frag intPart = alt(List.of(literal("0"), seq(ranges('1', '9'), star(ranges('0', '9')))));
            if (integer) {
                return seq(sign, intPart);
            }
            Frag fraction = optional(seq(literal("."), ranges('0', '9'), star(ranges('0', '9'))));
            Frag exponent = optional(seq(bytes("eE"), optional(bytes("+-")), ranges('0', '9'), star(ranges('0', '9'))));
            return seq(sign, intPart, fraction, exponent);
        }

        // ---- subset construction ----

        JsonSchemaGrammar determinize(int start, int end) {
            Map<String, Integer> ids = new HashMap<>();
            List<int[]> sets = new ArrayList<>();
            int[] first = closure(new int[] {start});
            ids.put(Arrays.toString(first), 0);
            sets.add(first);
            int[] next = new int[256 * 64];
            List<Boolean> accepting = new ArrayList<>();
            var targets = new TreeSet<Integer>();
            for (int s = 0; s < sets.size(); s++) {
                int[] set = sets.get(s);
                accepting.add(Arrays.binarySearch(set, end) >= 0);
                if (next.length < (s + 1) * 256) {
                    next = Arrays.copyOf(next, next.length * 2);
                }
                for (int b = 0; b < 256; b++) {
                    targets.clear();
                    for (int q : set) {
                        int[] e = edges.get(q);
                        for (int i = 0, n = edgeCount.get(q); i < n; i++) {
                            if (b >= e[i * 3] && b <= e[i * 3 + 1]) {
                                targets.add(e[i * 3 + 2]);
                            }
                        }
                    }
                    if (targets.isEmpty()) {
                        next[s * 256 + b] = -1;
                        continue;
                    }
                    int[] to = closure(targets.stream().mapToInt(Integer::intValue).toArray());
                    String key = Arrays.toString(to);
                    Integer id = ids.get(key);
                    if (id == null) {
                        if (sets.size() >= MAX_DFA_STATES) {
                            throw new IllegalArgumentException(TOO_LARGE);
                        }
                        id = sets.size();
                        ids.put(key, id);
                        sets.add(to);
                    }
                    next[s * 256 + b] = id;
                }
            }
            boolean[] acc = new boolean[sets.size()];
            for (int i = 0; i < acc.length; i++) {
                acc[i] = accepting.get(i);
            }
            return new JsonSchemaGrammar(Arrays.copyOf(next, sets.size() * 256), acc, sets.size());
        }

        /** The sorted set of states reachable through epsilon edges. */
        private int[] closure(int[] from) {
            var seen = new TreeSet<Integer>();
            var stack = new ArrayDeque<Integer>();
            for (int s : from) {
                if (seen.add(s)) {
                    stack.push(s);
                }
            }
            while (!stack.isEmpty()) {
                int s = stack.pop();
                int[] e = epsilons.get(s);
                for (int i = 0, n = epsilonCount.get(s); i < n; i++) {
                    if (seen.add(e[i])) {
                        stack.push(e[i]);
                    }
                }
            }
            return seen.stream().mapToInt(Integer::intValue).toArray();
        }
    }

    private static String brief(JsonNode v) {
        String s = String.valueOf(v);
        return s.length() > 60 ? s.substring(0, 57) + "..." : s;
    }
}
