package io.flinkqwen3.flink;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Records as they arrive on the wire (Kafka key = id, value = bytes): poison pills, each with a
 * fragment its dead-letter reason must contain, and records at the extremes of their fields that
 * must be answered. Shared by the codec, operator-harness and Kafka end-to-end tests.
 */
final class PoisonPills {
    /**
     * @param needsEngine the reason only shows once the prompt is tokenized (the codec accepts it)
     */
    record Pill(String id, byte[] value, String reason, boolean needsEngine) {
        @Override
        public String toString() {
            return id;
        }
    }

    /** A record that must be answered. */
    record Good(String id, byte[] value) {
        @Override
        public String toString() {
            return id;
        }
    }

    static final String INT_MAX = String.valueOf(Integer.MAX_VALUE);
    /** 2^31 - 9: the largest array Java can allocate, and Avro's default limit. */
    static final long HUGE = Integer.MAX_VALUE - 8;

    private PoisonPills() {}

    static List<Pill> all() {
        List<Pill> p = new ArrayList<>();
        // the cases of issue 9
        p.add(json("stop-null", "\"prompt\":\"hi\",\"options\":{\"stop\":null}", "options[\"stop\"] is null, but the schema requires a string"));
        p.add(json("attribute-null", "\"prompt\":\"hi\",\"attributes\":{\"tenant\":null}", "attributes[\"tenant\"] is null"));
        p.add(json("content-null", "\"messages\":[{\"role\":\"user\",\"content\":null}]", "messages[0].content is null"));
        p.add(new Pill("avro-array-count", avroArrayCount(), "field 'messages': array of 2147483639 items, but only", false));
        p.add(new Pill("avro-string-length", avroStringLength(), "field 'id': string of 2147483639 bytes, but only", false));
        p.add(option("temperature-nan", "temperature", "NaN", "option 'temperature' is not a number: 'NaN'"));
        p.add(option("top-p-infinity", "top_p", "Infinity", "option 'top_p' is not a number: 'Infinity'"));
        p.add(option("min-p-nan", "min_p", "NaN", "option 'min_p' is not a number"));
        p.add(option("presence-penalty-infinity", "presence_penalty", "-Infinity", "option 'presence_penalty' is not a number"));
        // Avro beyond those
        p.add(new Pill("avro-map-count", avroMapCount(), "field 'options': map of 2147483639 items, but only", false));
        p.add(new Pill("avro-negative-length", concat(new byte[] {2}, varint(-5)), "field 'id': negative string length -5", false));
        p.add(new Pill("avro-union-branch", new byte[] {0x0E, 0, 0}, "field 'id': union branch 7 does not exist", false));
        byte[] good = RecordCodec.encodePromptAvro(PromptRecord.of("avro-truncated", "a prompt cut in half"));
        p.add(new Pill("avro-truncated", Arrays.copyOf(good, good.length - 14),
                "field 'prompt': string of 20 bytes, but only 18 bytes are left", false));
        p.add(new Pill("avro-trailing", concat(RecordCodec.encodePromptAvro(PromptRecord.of("avro-trailing", "hi")), new byte[] {0, 0}),
                "bytes, but the record ends after", false));
        p.add(new Pill("avro-garbage", new byte[] {(byte) 0xFF, 0x00, 0x13}, "invalid Avro prompt", false));
        var nan = PromptRecord.of("avro-nan-temperature", "hi");
        nan.options = Map.of("temperature", "NaN");
        p.add(new Pill("avro-nan-temperature", RecordCodec.encodePromptAvro(nan), "option 'temperature' is not a number", false));
        p.add(new Pill("empty", new byte[0], "empty record", false));
        // JSON texts that are not a prompt object, and broken JSON
        p.add(raw("json-null", "null", "invalid JSON prompt: expected an object {...}, got null"));
        p.add(raw("json-array", "[1, 2]", "expected an object {...}, got an array"));
        p.add(raw("json-string", "\"hello\"", "expected an object {...}, got a string"));
        p.add(raw("json-number", " 42", "expected an object {...}, got a number"));
        p.add(raw("json-trailing", "{\"id\":\"json-trailing\",\"prompt\":\"hi\"} {}", "more data after the object"));
        p.add(json("json-duplicate", "\"prompt\":\"a\",\"prompt\":\"b\"", "Duplicate field 'prompt'"));
        p.add(raw("json-truncated", "{\"id\":\"json-truncated\",\"prompt\":\"hi", "invalid JSON prompt"));
        p.add(new Pill("json-invalid-utf8", concat(bytes("{\"id\":\"json-invalid-utf8\",\"prompt\":\""), new byte[] {(byte) 0xC3, 0x28},
                bytes("\"}")), "Invalid UTF-8", false));
        p.add(json("json-deep", "\"prompt\":\"hi\",\"attributes\":{\"a\":" + "[".repeat(100_000),
                "field 'attributes.a': expected a string, got an array"));
        p.add(new Pill("bom-garbage", new byte[] {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF, 1, 2}, "invalid JSON prompt", false));
        p.add(json("unknown-field", "\"prompt\":\"hi\",\"colour\":\"blue\"",
                "unknown field 'colour' (known: attributes, deadline_ms, enable_thinking, id, json_schema, labels, max_tokens, "
                + "messages, options, prompt, sla_ms, system_prompt, thinking_budget, tools)"));
        p.add(json("enable-thinking-text", "\"prompt\":\"hi\",\"enable_thinking\":\"maybe\"",
                "field 'enable_thinking': expected true or false, got \"maybe\""));
        p.add(json("options-array", "\"prompt\":\"hi\",\"options\":[1]", "field 'options': expected an object of strings, got an array"));
        // structure and values
        p.add(json("message-null", "\"messages\":[null]", "messages[0] is null, but the schema requires a ChatTurn"));
        p.add(json("role-null", "\"messages\":[{\"role\":null,\"content\":\"x\"}]", "messages[0].role is null"));
        p.add(json("tool-call-without-name", "\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\","
                + "\"content\":null,\"tool_calls\":[{\"type\":\"function\",\"function\":{\"arguments\":{}}}]}]",
                "messages[1].tool_calls[0].function.name is missing, expected a string"));
        p.add(json("tool-call-not-json", "\"messages\":[{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[\"{oops\"]}]",
                "messages[0].tool_calls[0] is not JSON"));
        p.add(json("tools-not-object", "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[3]",
                "tools[0] is '3', expected a JSON object (a function definition)"));
        p.add(json("tools-with-prompt", "\"prompt\":\"x\",\"tools\":[{\"type\":\"function\"}]", "tools need 'messages'"));
        p.add(json("schema-unsupported", "\"prompt\":\"x\",\"json_schema\":{\"type\":\"object\",\"properties\":{\"a\":"
                + "{\"type\":\"string\",\"pattern\":\"^x\"}}}", "json_schema /properties/a: keyword 'pattern' is not supported"));
        p.add(json("schema-not-json", "\"prompt\":\"x\",\"json_schema\":\"{\\\"type\\\":\"", "json_schema is not JSON"));
        p.add(json("prompt-and-messages", "\"prompt\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]", "give either 'prompt' or 'messages'"));
        p.add(json("no-prompt", "\"sla_ms\":100", "missing prompt"));
        p.add(json("blank-prompt", "\"prompt\":\" \\n\"", "missing prompt"));
        p.add(option("unknown-option", "colour", "blue", "unknown option 'colour'"));
        p.add(json("max-tokens-zero", "\"prompt\":\"hi\",\"max_tokens\":0", "max_tokens must be >= 1, got 0"));
        p.add(json("max-tokens-min", "\"prompt\":\"hi\",\"max_tokens\":-2147483648", "max_tokens must be >= 1, got -2147483648"));
        p.add(json("max-tokens-fraction", "\"prompt\":\"hi\",\"max_tokens\":3.5", "field 'max_tokens': expected an integer (32-bit), got 3.5"));
        p.add(json("max-tokens-overflow", "\"prompt\":\"hi\",\"max_tokens\":2147483648",
                "field 'max_tokens': expected an integer (32-bit), got 2147483648"));
        p.add(json("sla-negative", "\"prompt\":\"hi\",\"sla_ms\":-1", "negative sla_ms: -1"));
        p.add(json("sla-overflow", "\"prompt\":\"hi\",\"sla_ms\":9223372036854775808",
                "field 'sla_ms': expected an integer (64-bit), got 9223372036854775808"));
        p.add(json("deadline-negative", "\"prompt\":\"hi\",\"deadline_ms\":-9223372036854775808", "negative deadline_ms: -9223372036854775808"));
        p.add(json("thinking-budget-negative", "\"prompt\":\"hi\",\"thinking_budget\":-2", "thinking_budget must be -1 (unlimited) or >= 0, got -2"));
        p.add(option("top-k-negative", "top_k", "-1", "option 'top_k' must be an integer between 0 and 2147483647, got -1"));
        p.add(option("top-k-huge", "top_k", "1e12", "option 'top_k' must be an integer between 0 and 2147483647"));
        p.add(option("top-k-fraction", "top_k", "2.5", "option 'top_k' must be an integer"));
        p.add(option("seed-huge", "seed", "1e30", "option 'seed' must be an integer"));
        p.add(option("seed-text", "seed", "abc", "option 'seed' is not a number: 'abc'"));
        p.add(json("temperature-huge", "\"prompt\":\"hi\",\"options\":{\"temperature\":1e400}", "option 'temperature' must be between 0 (greedy) and 100"));
        p.add(option("temperature-negative", "temperature", "-0.5", "option 'temperature' must be between 0 (greedy) and 100, got -0.5"));
        p.add(option("temperature-hex", "temperature", "0x1p3", "option 'temperature' is not a number"));
        p.add(option("top-p-zero", "top_p", "0", "option 'top_p' must be > 0 and <= 1, got 0.0"));
        p.add(option("min-p-above-one", "min_p", "1.5", "option 'min_p' must be between 0 and 1, got 1.5"));
        p.add(option("presence-penalty-huge", "presence_penalty", "1e38", "option 'presence_penalty' must be between -2 and 2"));
        p.add(option("stop-empty", "stop", "", "option 'stop' contains an empty stop string"));
        p.add(option("stop-empty-among", "stop", "\\u001fEND", "option 'stop' contains an empty stop string"));
        p.add(json("labels-one", "\"prompt\":\"x\",\"labels\":[\"spam\"]", "labels: between 2 and 512 labels, got 1"));
        p.add(json("labels-duplicate", "\"prompt\":\"x\",\"labels\":[\"spam\",\"ham\",\"spam\"]", "labels[2] 'spam' is a duplicate"));
        p.add(json("labels-empty-label", "\"prompt\":\"x\",\"labels\":[\"spam\",\"\"]", "labels[1] is empty"));
        p.add(json("labels-null-label", "\"prompt\":\"x\",\"labels\":[\"spam\",null]", "labels[1] is null, but the schema requires a string"));
        p.add(json("labels-not-a-list", "\"prompt\":\"x\",\"labels\":\"spam,ham\"", "field 'labels': expected an array, got \"spam,ham\""));
        p.add(json("labels-and-schema", "\"prompt\":\"x\",\"labels\":[\"a\",\"b\"],\"json_schema\":{\"type\":\"object\"}",
                "give either 'labels' (classify) or 'json_schema'"));
        // only the engine can tell: the prompt does not fit the context; the answer the schema needs does not fit max_tokens;
        // a label of more tokens than a label may have
        p.add(new Pill("schema-max-tokens", bytes("{\"id\":\"schema-max-tokens\",\"prompt\":\"x\",\"thinking_budget\":0,"
                + "\"max_tokens\":3,\"json_schema\":{\"type\":\"object\",\"properties\":{\"ok\":{\"type\":\"boolean\"}},"
                + "\"required\":[\"ok\"]}}"), "max_tokens 3 is too small for the JSON schema", true));
        p.add(new Pill("prompt-too-long", bytes("{\"id\":\"prompt-too-long\",\"prompt\":\"" + "word ".repeat(400) + "\"}"),
                "context length is", true));
        p.add(new Pill("label-too-many-tokens", bytes("{\"id\":\"label-too-many-tokens\",\"prompt\":\"x\",\"labels\":[\"a\",\""
                + "b ".repeat(40) + "\"]}"), "has more than 32 tokens", true));
        return p;
    }

    /** Records at their fields' extremes (0, huge, tiny) that have a sane answer. */
    static List<Good> extremes() {
        List<Good> g = new ArrayList<>();
        g.add(new Good("good-bom", concat(new byte[] {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF},
                bytes("{\"id\":\"good-bom\",\"prompt\":\"A JSON record after a byte order mark\"}"))));
        g.add(new Good("good-whitespace", bytes(" \r\n\t{\"id\":\"good-whitespace\",\"prompt\":\"Leading white space\"}\n")));
        g.add(goodJson("good-sla-zero", "\"prompt\":\"hi\",\"sla_ms\":0"));
        g.add(goodJson("good-sla-max", "\"prompt\":\"hi\",\"sla_ms\":9223372036854775807"));
        g.add(goodJson("good-deadline-zero", "\"prompt\":\"hi\",\"deadline_ms\":0"));
        g.add(goodJson("good-deadline-max", "\"prompt\":\"hi\",\"deadline_ms\":9223372036854775807"));
        g.add(goodJson("good-thinking-budget-max", "\"prompt\":\"hi\",\"thinking_budget\":" + INT_MAX + ",\"max_tokens\":8"));
        g.add(goodJson("good-max-tokens-max", "\"prompt\":\"hi\",\"max_tokens\":" + INT_MAX));
        g.add(goodJson("good-options-numbers", "\"prompt\":\"hi\",\"options\":{\"temperature\":0.5,\"top_k\":5,\"seed\":7}"));
        g.add(goodJson("good-temperature-tiny", "\"prompt\":\"hi\",\"options\":{\"temperature\":\"1e-30\",\"top_p\":\"1e-30\"}"));
        g.add(goodJson("good-top-k-zero", "\"prompt\":\"hi\",\"options\":{\"top_k\":\"0\",\"min_p\":\"1\"}"));
        g.add(goodJson("good-seed-min", "\"prompt\":\"hi\",\"options\":{\"seed\":\"-9223372036854775808\",\"presence_penalty\":\"-2\"}"));
        g.add(goodJson("good-stop", "\"prompt\":\"hi\",\"options\":{\"stop\":\"a\\u001fb\"}"));
        g.add(goodJson("good-surrogate", "\"prompt\":\"\\ud800 lone surrogate\""));
        g.add(goodJson("good-null-fields", "\"prompt\":\"hi\",\"options\":null,\"attributes\":null,\"messages\":null"));
        g.add(goodJson("good-unknown-role", "\"messages\":[{\"role\":\"robot\",\"content\":\"x\"},{\"role\":\"user\",\"content\":\"hi\"}]"));
        g.add(goodJson("good-tools", "\"max_tokens\":4,\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
                + "\"parameters\":{\"type\":\"object\",\"properties\":{}}}}],\"messages\":[{\"role\":\"user\",\"content\":\"call f\"},"
                + "{\"role\":\"assistant\",\"content\":null,\"reasoning_content\":\"use f\",\"tool_calls\":[{\"type\":\"function\","
                + "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"content\":\"42\"}]"));
        g.add(goodJson("good-json-schema", "\"prompt\":\"ok?\",\"thinking_budget\":0,\"max_tokens\":24,\"json_schema\":"
                + "{\"type\":\"object\",\"properties\":{\"ok\":{\"type\":\"boolean\"}},\"required\":[\"ok\"]}"));
        g.add(goodJson("good-labels", "\"prompt\":\"Buy cheap watches now!\",\"thinking_budget\":0,\"labels\":[\"spam\",\"ham\"]"));
        var avro = PromptRecord.of("good-avro-extremes", null);
        avro.messages = List.of(new ChatTurn("system", ""), new ChatTurn("user", "hi"));
        avro.slaMs = Long.MAX_VALUE;
        avro.thinkingBudget = 0;
        avro.maxTokens = 1;
        avro.options = Map.of("temperature", "100", "top_p", "1", "presence_penalty", "2", "seed", String.valueOf(Long.MAX_VALUE));
        avro.attributes = Map.of("", "");
        g.add(new Good(avro.id, RecordCodec.encodePromptAvro(avro)));
        return g;
    }

    private static Pill json(String id, String fields, String reason) {
        return new Pill(id, bytes("{\"id\":\"" + id + "\"," + fields + "}"), reason, false);
    }

    private static Pill raw(String id, String text, String reason) {
        return new Pill(id, bytes(text), reason, false);
    }

    private static Pill option(String id, String key, String value, String reason) {
        return json(id, "\"prompt\":\"hi\",\"options\":{\"" + key + "\":\"" + value + "\"}", reason);
    }

    private static Good goodJson(String id, String fields) {
        return new Good(id, bytes("{\"id\":\"" + id + "\"," + fields + "}"));
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** 10 bytes: id null, prompt null, messages = an array claiming 2^31-9 ChatTurns. */
    static byte[] avroArrayCount() {
        return Arrays.copyOf(concat(new byte[] {0, 0, 2}, varint(HUGE)), 10);
    }

    /** id = a string claiming 2^31-9 bytes, followed by 8. */
    static byte[] avroStringLength() {
        return concat(new byte[] {2}, varint(HUGE), bytes("abcdefgh"));
    }

    /** A record whose options map claims 2^31-9 entries. */
    static byte[] avroMapCount() {
        // id, prompt "hi", then messages .. max_tokens all null (7 union indexes 0), then the options map count
        return concat(new byte[] {0, 2}, varint(2), bytes("hi"), new byte[7], varint(HUGE), bytes("kv"));
    }

    /** Avro's zig-zag varint. */
    static byte[] varint(long v) {
        var out = new ByteArrayOutputStream();
        long z = (v << 1) ^ (v >> 63);
        while ((z & ~0x7FL) != 0) {
            out.write((int) ((z & 0x7F) | 0x80));
            z >>>= 7;
        }
        out.write((int) z);
        return out.toByteArray();
    }

    static byte[] concat(byte[]... parts) {
        var out = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }
}
