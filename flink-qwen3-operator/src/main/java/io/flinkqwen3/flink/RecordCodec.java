package io.flinkqwen3.flink;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.exc.InputCoercionException;
import com.fasterxml.jackson.core.io.JsonStringEncoder;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.io.ResolvingDecoder;

/**
 * Wire formats of the records: Avro binary (schemas in src/main/avro) and JSON (snake_case field
 * names, same as the Avro fields).
 *
 * <p>Decoding a prompt accepts either. An Avro PromptRecord starts with the union index of its
 * {@code id} field, byte 0x00 or 0x02; any JSON text (RFC 8259) starts with a UTF-8 byte order
 * mark, whitespace or the first character of a value, none of which can start an Avro record. So
 * the first byte decides, and a record is never read in the wrong format.
 *
 * <p>Decoding never allocates more than the record's size: Avro lengths and counts are checked
 * against the bytes left ({@link BoundedBinaryDecoder}), JSON is read by Jackson's streaming parser
 * under its default read constraints. Every error says which field and what was expected.
 *
 * <p>The Avro schema is also what a record must satisfy to be answered: {@link #schemaViolation}
 * encodes it (the same code that writes it to Kafka) and reports what does not fit, so a record
 * that is accepted can always be snapshotted, emitted and written to a sink.
 */
public final class RecordCodec {
    public static final Schema PROMPT_SCHEMA = schema("/PromptRecord.avsc");
    public static final Schema COMPLETION_SCHEMA = schema("/CompletionRecord.avsc");
    public static final Schema DEAD_LETTER_SCHEMA = schema("/DeadLetter.avsc");
    public static final ObjectMapper JSON = JsonMapper.builder()
            .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT) // max_tokens: 3.5 is an error, not 3
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build();

    /** Avro's message for a null where the schema has no null: "null value for (non-nullable) TYPE at RECORD.PATH". */
    private static final Pattern AVRO_NULL_VALUE = Pattern.compile("null value for \\(non-nullable\\) (\\S+) at \\w+\\.(.+)");
    private static final Pattern AVRO_NULL_KEY = Pattern.compile("null key in map at \\w+\\.(.+)");
    /** Where Jackson's messages name the input: " (start marker at [Source: ...])", "\n at [Source: ...]". */
    private static final Pattern JACKSON_SOURCE = Pattern.compile("\\s*\\(?(start marker )?at \\[Source: .*", Pattern.DOTALL);
    /** Reads only the id of a record that failed: no duplicate detection, so it reads whatever the strict parse refused. */
    private static final JsonFactory LENIENT_JSON = new JsonFactory();
    private static final Pattern INDEX_OUT_OF_BOUNDS = Pattern.compile("Index (-?\\d+) out of bounds for length (\\d+)");

    private RecordCodec() {}

    private static Schema schema(String resource) {
        try (InputStream in = RecordCodec.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("Avro schema " + resource + " missing from the class path");
            }
            return new Schema.Parser().parse(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Decodes Avro binary or JSON; throws IllegalArgumentException saying what is wrong. For JSON
     * it is a {@link PromptDecodeException}, with the record's id when that could be read.
     */
    public static PromptRecord decodePrompt(byte[] bytes) {
        if (bytes == null || bytes.length == 0) {
            throw new IllegalArgumentException("empty record");
        }
        if (!startsJson(bytes[0])) {
            return decodeAvro(bytes);
        }
        try {
            return decodeJson(bytes);
        } catch (IllegalArgumentException e) {
            throw new PromptDecodeException(jsonId(bytes), e.getMessage(), e);
        }
    }

    /** A prompt that does not decode, with its id when that much of it could be read (null otherwise). */
    public static final class PromptDecodeException extends IllegalArgumentException {
        private final String id;

        PromptDecodeException(String id, String message, Throwable cause) {
            super(message, cause);
            this.id = id;
        }

        /** The record's id, so that its dead letter can carry it; null when none could be read. */
        public String id() {
            return id;
        }
    }

    /**
     * Whether a record starting with this byte is JSON: a UTF-8 byte order mark (0xEF), JSON
     * whitespace, or the first byte of a JSON value. An Avro PromptRecord starts with 0x00 or 0x02.
     */
    static boolean startsJson(byte first) {
        return switch (first) {
            case (byte) 0xEF, ' ', '\t', '\n', '\r', '{', '[', '"', '-', 't', 'f', 'n' -> true;
            default -> first >= '0' && first <= '9';
        };
    }

    private static PromptRecord decodeJson(byte[] bytes) {
        try (JsonParser parser = JSON.createParser(bytes)) {
            try {
                return readJson(parser);
            } catch (JsonMappingException e) { // described while the parser still holds the value it failed on
                throw new IllegalArgumentException("invalid JSON prompt: " + fieldError(e, parser), e);
            }
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("invalid JSON prompt: " + withoutSource(e.getOriginalMessage()) + at(e.getLocation()), e);
        } catch (IOException | RuntimeException e) {
            if (e instanceof IllegalArgumentException iae && String.valueOf(iae.getMessage()).startsWith("invalid JSON")) {
                throw iae;
            }
            throw new IllegalArgumentException("invalid JSON prompt: " + e, e);
        }
    }

    private static PromptRecord readJson(JsonParser parser) throws IOException {
        JsonToken first = parser.nextToken();
        if (first != JsonToken.START_OBJECT) {
            throw new IllegalArgumentException("invalid JSON prompt: expected an object {...}, got " + describe(first));
        }
        PromptRecord record = JSON.readValue(parser, PromptRecord.class);
        if (parser.nextToken() != null) {
            throw new IllegalArgumentException("invalid JSON prompt: more data after the object"
                    + at(parser.currentTokenLocation()));
        }
        if (record == null) {
            throw new IllegalArgumentException("invalid JSON prompt: expected an object {...}, got null");
        }
        if (record.messages != null) {
            for (ChatTurn t : record.messages) {
                if (t != null && t.content == null && t.toolCalls != null && !t.toolCalls.isEmpty()) {
                    t.content = ""; // OpenAI's form of a turn that only calls tools
                }
            }
        }
        return record;
    }

    /**
     * A field that does not read, in one line: "unknown field 'colour' (known: attributes, ...)",
     * "field 'max_tokens': expected an integer (32-bit), got 3.5", or the parser's own message for
     * broken JSON inside a field. The parser is still on the value Jackson failed on.
     */
    private static String fieldError(JsonMappingException e, JsonParser parser) {
        String path = jsonPath(e.getPath());
        if (e instanceof UnrecognizedPropertyException u) {
            var known = new ArrayList<String>();
            u.getKnownPropertyIds().forEach(k -> known.add(String.valueOf(k)));
            known.sort(null); // Jackson's order is a hash set's
            return "unknown field '" + path + "' (known: " + String.join(", ", known) + ")";
        }
        Class<?> target = e instanceof MismatchedInputException m ? m.getTargetType()
                : e.getCause() instanceof InputCoercionException c ? c.getTargetType() : null; // an int out of range
        String field = path.isEmpty() ? "" : "field '" + path + "': ";
        if (target == null) {
            return field + withoutSource(e.getOriginalMessage());
        }
        return field + "expected " + expected(target) + ", got " + found(parser);
    }

    private static String expected(Class<?> type) {
        if (type == Integer.class || type == int.class) {
            return "an integer (32-bit)";
        }
        if (type == Long.class || type == long.class) {
            return "an integer (64-bit)";
        }
        if (type == Boolean.class || type == boolean.class) {
            return "true or false";
        }
        if (type == String.class) {
            return "a string";
        }
        if (Collection.class.isAssignableFrom(type) || type.isArray()) {
            return "an array";
        }
        return Map.class.isAssignableFrom(type) ? "an object of strings" : "an object";
    }

    /** The value the parser is on: a scalar as written (a string quoted, at most 40 characters), else its kind. */
    private static String found(JsonParser parser) {
        JsonToken token = parser.currentToken();
        try {
            if (token == JsonToken.VALUE_STRING) {
                String text = parser.getText();
                text = text.length() > 40 ? text.substring(0, 40) + "..." : text;
                return "\"" + new String(JsonStringEncoder.getInstance().quoteAsString(text)) + "\"";
            }
            if (token != null && token.isScalarValue()) {
                return parser.getText();
            }
        } catch (IOException e) {
            // described by its kind below
        }
        return describe(token);
    }

    /** Jackson's message without the "[Source: ...; line: 1, column: 9]" it may embed (the location is reported apart). */
    private static String withoutSource(String message) {
        return JACKSON_SOURCE.matcher(String.valueOf(message)).replaceAll("");
    }

    /**
     * The "id" of a JSON object that did not decode, read leniently (duplicate fields allowed, the
     * first id wins, the rest of the record need not be valid): a string, or a number as the codec
     * reads it into a string. Null when there is none; never throws.
     */
    private static String jsonId(byte[] bytes) {
        try (JsonParser parser = LENIENT_JSON.createParser(bytes)) {
            if (parser.nextToken() != JsonToken.START_OBJECT) {
                return null;
            }
            for (JsonToken t = parser.nextToken(); t == JsonToken.FIELD_NAME; t = parser.nextToken()) {
                JsonToken value = parser.nextToken();
                if ("id".equals(parser.currentName())) {
                    boolean text = value == JsonToken.VALUE_STRING || value == JsonToken.VALUE_NUMBER_INT
                            || value == JsonToken.VALUE_NUMBER_FLOAT;
                    return text ? parser.getText() : null;
                }
                parser.skipChildren();
            }
            return null;
        } catch (IOException | RuntimeException e) {
            return null; // not even the id reads: the dead letter goes without it
        }
    }

    private static String describe(JsonToken token) {
        if (token == null) {
            return "no value";
        }
        return switch (token) {
            case START_ARRAY -> "an array";
            case START_OBJECT -> "an object";
            case VALUE_STRING -> "a string";
            case VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT -> "a number";
            case VALUE_TRUE, VALUE_FALSE -> "a boolean";
            case VALUE_NULL -> "null";
            default -> token.asString() == null ? token.name() : "'" + token.asString() + "'";
        };
    }

    private static String at(JsonLocation location) {
        return location == null || location.getLineNr() < 0 ? ""
                : " (line " + location.getLineNr() + ", column " + location.getColumnNr() + ")";
    }

    /** messages[1].content from Jackson's reference chain. */
    private static String jsonPath(List<JsonMappingException.Reference> references) {
        var path = new StringBuilder();
        for (var r : references) {
            if (r.getFieldName() != null) {
                path.append(path.isEmpty() ? "" : ".").append(r.getFieldName());
            } else if (r.getIndex() >= 0) {
                path.append('[').append(r.getIndex()).append(']');
            }
        }
        return path.toString();
    }

    private static PromptRecord decodeAvro(byte[] bytes) {
        GenericRecord g = readAvro(PROMPT_SCHEMA, bytes, "prompt");
        var r = new PromptRecord();
        r.id = str(g.get("id"));
        r.prompt = str(g.get("prompt"));
        if (g.get("messages") != null) {
            r.messages = new ArrayList<>();
            for (Object o : (List<?>) g.get("messages")) {
                GenericRecord t = (GenericRecord) o;
                var turn = new ChatTurn(str(t.get("role")), str(t.get("content")));
                turn.reasoningContent = str(t.get("reasoning_content"));
                turn.toolCalls = strings(t.get("tool_calls"));
                r.messages.add(turn);
            }
        }
        r.systemPrompt = str(g.get("system_prompt"));
        r.enableThinking = (Boolean) g.get("enable_thinking");
        r.thinkingBudget = (Integer) g.get("thinking_budget");
        r.slaMs = (Long) g.get("sla_ms");
        r.deadlineMs = (Long) g.get("deadline_ms");
        r.maxTokens = (Integer) g.get("max_tokens");
        r.options = stringMap(g.get("options"));
        r.attributes = stringMap(g.get("attributes"));
        r.tools = strings(g.get("tools"));
        r.jsonSchema = str(g.get("json_schema"));
        r.labels = strings(g.get("labels"));
        return r;
    }

    private static List<String> strings(Object o) {
        if (o == null) {
            return null;
        }
        List<String> out = new ArrayList<>();
        for (Object x : (List<?>) o) {
            out.add(str(x));
        }
        return out;
    }

    /**
     * Reads one whole record of the schema, or of an earlier version of it (see {@link #earlierVersion});
     * IllegalArgumentException naming the field that does not decode.
     */
    private static GenericRecord readAvro(Schema schema, byte[] bytes, String what) {
        var decoder = new BoundedBinaryDecoder(bytes);
        try {
            GenericRecord g;
            try {
                g = new FieldPathReader(schema, schema).read(null, decoder);
            } catch (IOException e) {
                g = endsEarly(e) ? earlierVersion(schema, bytes) : null;
                if (g == null) {
                    throw e;
                }
                return g;
            }
            if (decoder.remaining() != 0) {
                throw new IllegalArgumentException("invalid Avro " + what + ": " + bytes.length + " bytes, but the record ends after "
                        + (bytes.length - decoder.remaining()));
            }
            return g;
        } catch (IOException | RuntimeException e) {
            if (e instanceof IllegalArgumentException iae && String.valueOf(iae.getMessage()).startsWith("invalid Avro")) {
                throw iae;
            }
            throw new IllegalArgumentException("invalid Avro " + what + " (schema " + schema.getFullName() + "): "
                    + (e instanceof FieldError ? e.getMessage() : describe(e)));
        }
    }

    private static boolean endsEarly(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof EOFException) {
                return true;
            }
        }
        return false;
    }

    /**
     * The record read as written by an earlier version of the schema: fields are only ever added at
     * the end, with defaults (labels, label_probabilities, ...), so an earlier version is a prefix of
     * the fields. Tries the longest prefix first; the fields it lacks get their defaults (Avro's
     * schema resolution). Null when no prefix reads the bytes exactly.
     */
    private static GenericRecord earlierVersion(Schema schema, byte[] bytes) {
        List<Schema.Field> fields = schema.getFields();
        for (int n = fields.size() - 1; n > 0 && fields.get(n).hasDefaultValue(); n--) {
            List<Schema.Field> prefix = new ArrayList<>();
            for (Schema.Field f : fields.subList(0, n)) {
                prefix.add(new Schema.Field(f, f.schema()));
            }
            Schema writer = Schema.createRecord(schema.getName(), schema.getDoc(), schema.getNamespace(), false, prefix);
            var decoder = new BoundedBinaryDecoder(bytes);
            try {
                GenericRecord g = new FieldPathReader(writer, schema).read(null, decoder);
                if (decoder.remaining() == 0) {
                    return g;
                }
            } catch (IOException | RuntimeException e) {
                // not this version: try an earlier one
            }
        }
        return null;
    }

    private static String describe(Throwable e) {
        if (e instanceof EOFException && e.getMessage() == null) {
            return "the record ends too early";
        }
        Matcher branch = e instanceof ArrayIndexOutOfBoundsException ? INDEX_OUT_OF_BOUNDS.matcher(String.valueOf(e.getMessage())) : null;
        if (branch != null && branch.matches()) { // the resolver looking up a union branch that does not exist
            return "union branch " + branch.group(1) + " does not exist (the field's type has " + branch.group(2) + ")";
        }
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }

    /** A decoding error and the field path it happened in (outermost field first). */
    private static final class FieldError extends IOException {
        private final String path;

        FieldError(String path, Throwable cause) {
            super(cause);
            this.path = path;
        }

        @Override
        public String getMessage() {
            return "field '" + path + "': " + describe(getCause());
        }
    }

    /** Avro's generic reader, remembering which field was being read when decoding failed. */
    private static final class FieldPathReader extends GenericDatumReader<GenericRecord> {
        FieldPathReader(Schema writer, Schema reader) {
            super(writer, reader);
        }

        @Override
        protected void readField(Object record, Schema.Field field, Object oldDatum, ResolvingDecoder in, Object state)
                throws IOException {
            try {
                super.readField(record, field, oldDatum, in, state);
            } catch (FieldError e) {
                throw new FieldError(field.name() + "." + e.path, e.getCause());
            } catch (IOException | RuntimeException e) {
                throw new FieldError(field.name(), e);
            }
        }
    }

    /**
     * Why the record does not fit the PromptRecord schema (a null where the schema needs a string,
     * a null map key), or null when it fits. Checked by encoding it, as every sink and the JSON
     * payload of a dead letter would.
     */
    public static String schemaViolation(PromptRecord r) {
        try {
            encodePromptAvro(r);
            return null;
        } catch (RuntimeException e) {
            String message = String.valueOf(e.getMessage());
            Matcher m = AVRO_NULL_VALUE.matcher(message);
            if (m.matches()) {
                return avroPath(m.group(2)) + " is null, but the schema requires a " + m.group(1);
            }
            m = AVRO_NULL_KEY.matcher(message);
            if (m.matches()) {
                return avroPath(m.group(1)) + " has a null key, but the schema requires string keys";
            }
            return "does not fit the schema " + PROMPT_SCHEMA.getFullName() + ": " + message;
        }
    }

    /** Avro's "messages[array][1].content" as "messages[1].content". */
    private static String avroPath(String path) {
        return path.replace("[array]", "");
    }

    public static byte[] encodePromptAvro(PromptRecord r) {
        var g = new GenericData.Record(PROMPT_SCHEMA);
        g.put("id", r.id);
        g.put("prompt", r.prompt);
        if (r.messages != null) {
            Schema turn = PROMPT_SCHEMA.getField("messages").schema().getTypes().get(1).getElementType();
            List<GenericRecord> turns = new ArrayList<>();
            for (ChatTurn t : r.messages) {
                if (t == null) {
                    turns.add(null);
                    continue;
                }
                var gt = new GenericData.Record(turn);
                gt.put("role", t.role);
                gt.put("content", t.content);
                gt.put("reasoning_content", t.reasoningContent);
                gt.put("tool_calls", t.toolCalls);
                turns.add(gt);
            }
            g.put("messages", turns);
        }
        g.put("system_prompt", r.systemPrompt);
        g.put("enable_thinking", r.enableThinking);
        g.put("thinking_budget", r.thinkingBudget);
        g.put("sla_ms", r.slaMs);
        g.put("deadline_ms", r.deadlineMs);
        g.put("max_tokens", r.maxTokens);
        g.put("options", r.options == null ? Map.of() : r.options);
        g.put("attributes", r.attributes == null ? Map.of() : r.attributes);
        g.put("tools", r.tools);
        g.put("json_schema", r.jsonSchema);
        g.put("labels", r.labels);
        return write(PROMPT_SCHEMA, g);
    }

    public static byte[] encodeCompletionAvro(CompletionRecord c) {
        var g = new GenericData.Record(COMPLETION_SCHEMA);
        g.put("id", c.id);
        g.put("answer", c.answer);
        g.put("reasoning", c.reasoning);
        g.put("finish_reason", c.finishReason);
        g.put("prompt_tokens", c.promptTokens);
        g.put("thinking_tokens", c.thinkingTokens);
        g.put("answer_tokens", c.answerTokens);
        g.put("thinking_budget", c.thinkingBudget);
        g.put("sla_ms", c.slaMs);
        g.put("latency_ms", c.latencyMs);
        g.put("sla_met", c.slaMet);
        g.put("model", c.model);
        g.put("attributes", c.attributes == null ? Map.of() : c.attributes);
        g.put("label", c.label);
        g.put("label_probabilities", c.labelProbabilities);
        return write(COMPLETION_SCHEMA, g);
    }

    public static CompletionRecord decodeCompletionAvro(byte[] bytes) {
        GenericRecord g = readAvro(COMPLETION_SCHEMA, bytes, "completion");
        var c = new CompletionRecord();
        c.id = str(g.get("id"));
        c.answer = str(g.get("answer"));
        c.reasoning = str(g.get("reasoning"));
        c.finishReason = str(g.get("finish_reason"));
        c.promptTokens = (Integer) g.get("prompt_tokens");
        c.thinkingTokens = (Integer) g.get("thinking_tokens");
        c.answerTokens = (Integer) g.get("answer_tokens");
        c.thinkingBudget = (Integer) g.get("thinking_budget");
        c.slaMs = (Long) g.get("sla_ms");
        c.latencyMs = (Long) g.get("latency_ms");
        c.slaMet = (Boolean) g.get("sla_met");
        c.model = str(g.get("model"));
        c.attributes = stringMap(g.get("attributes"));
        c.label = str(g.get("label"));
        if (g.get("label_probabilities") instanceof Map<?, ?> m) {
            c.labelProbabilities = new HashMap<>();
            m.forEach((k, v) -> c.labelProbabilities.put(k.toString(), (Double) v));
        }
        return c;
    }

    public static byte[] encodeDeadLetterAvro(DeadLetter d) {
        var g = new GenericData.Record(DEAD_LETTER_SCHEMA);
        g.put("id", d.id);
        g.put("reason", d.reason);
        g.put("payload", ByteBuffer.wrap(d.payload == null ? new byte[0] : d.payload));
        return write(DEAD_LETTER_SCHEMA, g);
    }

    public static DeadLetter decodeDeadLetterAvro(byte[] bytes) {
        GenericRecord g = readAvro(DEAD_LETTER_SCHEMA, bytes, "dead letter");
        ByteBuffer payload = (ByteBuffer) g.get("payload");
        byte[] raw = new byte[payload.remaining()];
        payload.get(raw);
        return new DeadLetter(str(g.get("id")), str(g.get("reason")), raw);
    }

    public static byte[] toJson(Object record) {
        try {
            return JSON.writeValueAsBytes(record);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static byte[] write(Schema schema, GenericRecord g) {
        var out = new ByteArrayOutputStream();
        BinaryEncoder encoder = EncoderFactory.get().binaryEncoder(out, null);
        try {
            new GenericDatumWriter<GenericRecord>(schema).write(g, encoder);
            encoder.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    private static String str(Object o) {
        return o == null ? null : o.toString();
    }

    private static Map<String, String> stringMap(Object o) {
        Map<String, String> out = new HashMap<>();
        if (o instanceof Map<?, ?> m) {
            m.forEach((k, v) -> out.put(k.toString(), v == null ? null : v.toString()));
        }
        return out;
    }
}
