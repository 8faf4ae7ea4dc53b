package io.flinkqwen3.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.model.GenerationConfig;
import io.flinkqwen3.runtime.GenerationRequest;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.serialization.SerializerConfigImpl;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.avro.SchemaCompatibility;
import org.apache.avro.SchemaCompatibility.SchemaCompatibilityType;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.io.EncoderFactory;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.MemorySize;
import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.apache.flink.streaming.runtime.streamrecord.StreamElementSerializer;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.util.Collector;
import org.apache.flink.util.InstantiationUtil;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;

class RecordCodecTest {
    static PromptRecord full() {
        var r = PromptRecord.of("r-1", null);
        var call = new ChatTurn("assistant", "");
        call.reasoningContent = "look it up";
        call.toolCalls = List.of("{\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":{\"x\":1}}}");
        r.messages = List.of(new ChatTurn("system", "Be brief."), new ChatTurn("user", "Hi"), call, new ChatTurn("tool", "2"));
        r.tools = List.of("{\"type\":\"function\",\"function\":{\"name\":\"f\"}}");
        r.jsonSchema = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}";
        r.enableThinking = true;
        r.thinkingBudget = 64;
        r.slaMs = 2500L;
        r.deadlineMs = 1_800_000_000_000L;
        r.maxTokens = 128;
        r.options = Map.of("temperature", "0.3");
        r.attributes = Map.of("tenant", "acme");
        return r;
    }

    @Test
    void avroRoundTrip() {
        PromptRecord r = full();
        assertEquals(r, RecordCodec.decodePrompt(RecordCodec.encodePromptAvro(r)));
        var minimal = PromptRecord.of(null, "just text");
        assertEquals(minimal, RecordCodec.decodePrompt(RecordCodec.encodePromptAvro(minimal)));
    }

    @Test
    void toolsToolCallsAndSchemasComeAsObjectsInJsonAndAsJsonTextInAvro() {
        String json = "{\"id\":\"t\",\"json_schema\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}},"
                + "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                + "{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":null,\"reasoning_content\":\"look it up\","
                + "\"tool_calls\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":{\"x\":1}}}]},"
                + "{\"role\":\"tool\",\"content\":\"2\"}]}";
        PromptRecord r = RecordCodec.decodePrompt(json.getBytes(StandardCharsets.UTF_8));
        PromptRecord expected = full();
        assertEquals(expected.messages, r.messages);
        assertEquals(expected.tools, r.tools);
        assertEquals(expected.jsonSchema, r.jsonSchema);
        assertEquals(null, RequestBuilder.validate(r));
        assertEquals(r, RecordCodec.decodePrompt(RecordCodec.toJson(r)), "the JSON we write (JSON text as strings) reads back");
        var request = new RequestBuilder(new Configuration(), GenerationConfig.EMPTY).build(r, 0);
        assertEquals(expected.jsonSchema, request.jsonSchema());
        assertEquals("f", request.tools().get(0).path("function").path("name").asText());
        assertEquals("look it up", request.messages().get(2).reasoningContent());
        assertEquals(1, request.messages().get(2).toolCalls().get(0).path("function").path("arguments").path("x").asInt());
    }

    @Test
    void jsonIsAcceptedWithTheAvroFieldNames() {
        String json = "{\"id\":\"j1\",\"prompt\":\"Hello\",\"sla_ms\":900,\"max_tokens\":7,\"attributes\":{\"k\":\"v\"}}";
        PromptRecord r = RecordCodec.decodePrompt(json.getBytes(StandardCharsets.UTF_8));
        assertEquals("j1", r.id);
        assertEquals(900L, r.slaMs);
        assertEquals(7, r.maxTokens);
        assertEquals(Map.of("k", "v"), r.attributes);
    }

    @Test
    void garbageGetsAPreciseError() {
        var e = assertThrows(IllegalArgumentException.class, () -> RecordCodec.decodePrompt(new byte[] {(byte) 0xFF, 1, 2}));
        assertTrue(e.getMessage().startsWith("invalid Avro prompt"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> RecordCodec.decodePrompt("{\"prompt\": 3, \"nope\": 1}".getBytes()));
        assertTrue(e.getMessage().contains("invalid JSON prompt") && e.getMessage().contains("nope"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> RecordCodec.decodePrompt(new byte[0]));
        assertEquals("empty record", e.getMessage());
    }

    @Test
    void aJsonRecordThatDoesNotDecodeKeepsItsIdAndGetsAOneLineReason() {
        record Bad(String json, String id, String reason) {}
        var cases = List.of(
                new Bad("{\"id\":\"unknownfield\",\"prompt\":\"a\",\"colour\":\"red\"}", "unknownfield",
                        "invalid JSON prompt: unknown field 'colour' (known: attributes, deadline_ms, enable_thinking, id, json_schema, "
                                + "labels, max_tokens, messages, options, prompt, sla_ms, system_prompt, thinking_budget, tools)"),
                new Bad("{\"id\":\"fraction\",\"prompt\":\"a\",\"max_tokens\":3.5}", "fraction",
                        "invalid JSON prompt: field 'max_tokens': expected an integer (32-bit), got 3.5"),
                new Bad("{\"id\":\"thinking\",\"prompt\":\"a\",\"enable_thinking\":\"yes\"}", "thinking",
                        "invalid JSON prompt: field 'enable_thinking': expected true or false, got \"yes\""),
                new Bad("{\"id\":\"twice\",\"prompt\":\"a\",\"prompt\":\"b\"}", "twice",
                        "invalid JSON prompt: Duplicate field 'prompt' (line 1, column 36)"),
                new Bad("{\"id\":\"turn\",\"messages\":[{\"role\":\"user\",\"colour\":1}]}", "turn",
                        "invalid JSON prompt: unknown field 'messages[0].colour' (known: content, reasoning_content, role, tool_calls)"),
                new Bad("{\"prompt\":\"a\",\"max_tokens\":3.5,\"id\":\"id-last\"}", "id-last",
                        "invalid JSON prompt: field 'max_tokens': expected an integer (32-bit), got 3.5"),
                new Bad("{\"id\":42,\"prompt\":\"a\",\"sla_ms\":true}", "42",
                        "invalid JSON prompt: field 'sla_ms': expected an integer (64-bit), got true"),
                new Bad("{\"id\":\"cut\",\"prompt\":\"a\"", "cut",
                        "invalid JSON prompt: Unexpected end-of-input: expected close marker for Object (line 1, column 25)"),
                new Bad("{\"id\":\"x\",\"id\":\"y\",\"prompt\":\"a\"}", "x", "invalid JSON prompt: Duplicate field 'id' (line 1, column 15)"),
                new Bad("{\"id\":{\"a\":1},\"prompt\":\"a\"}", null, "invalid JSON prompt: field 'id': expected a string, got an object"),
                new Bad("{\"prompt\":\"a\",\"colour\":\"red\"}", null, "invalid JSON prompt: unknown field 'colour' (known: attributes, "
                        + "deadline_ms, enable_thinking, id, json_schema, labels, max_tokens, messages, options, prompt, sla_ms, "
                        + "system_prompt, thinking_budget, tools)"),
                new Bad("[{\"id\":\"in-array\"}]", null, "invalid JSON prompt: expected an object {...}, got an array"));
        for (var c : cases) {
            byte[] value = bytes(c.json());
            var e = assertThrows(RecordCodec.PromptDecodeException.class, () -> RecordCodec.decodePrompt(value), c.json());
            assertEquals(c.id(), e.id(), c.json());
            assertEquals(c.reason(), e.getMessage(), c.json());
            // the Kafka source's dead letter: the record's id, even without a key
            PromptRecord dead = Qwen3Kafka.PromptDeserializer.decode(new ConsumerRecord<>("prompts", 0, 7, null, value));
            assertEquals(c.id(), dead.id, c.json());
            assertEquals(c.reason() + " (prompts-0@7)", dead.decodeError, c.json());
        }
        PromptRecord keyed = Qwen3Kafka.PromptDeserializer.decode(new ConsumerRecord<>("prompts", 0, 8, bytes("key"), bytes("{\"prompt\":3.5,\"x\":1}")));
        assertEquals("key", keyed.id, "no id in the record: the Kafka key");
    }

    @Test
    void completionAndDeadLetterRoundTrip() {
        var c = new CompletionRecord();
        c.id = "x";
        c.answer = "42";
        c.reasoning = "think";
        c.finishReason = "stop";
        c.promptTokens = 3;
        c.thinkingTokens = 4;
        c.answerTokens = 5;
        c.thinkingBudget = -1;
        c.slaMs = 100L;
        c.latencyMs = 50;
        c.slaMet = true;
        c.model = "m";
        c.attributes = Map.of("a", "b");
        CompletionRecord back = RecordCodec.decodeCompletionAvro(RecordCodec.encodeCompletionAvro(c));
        assertEquals(RecordCodec.JSON.valueToTree(c), RecordCodec.JSON.valueToTree(back));
        var d = new DeadLetter("id", "why", new byte[] {1, 2, 3});
        DeadLetter dBack = RecordCodec.decodeDeadLetterAvro(RecordCodec.encodeDeadLetterAvro(d));
        assertEquals("why", dBack.reason);
        assertEquals(3, dBack.payload.length);
    }

    @Test
    void labelsComeInBothFormatsAndReachTheRequest() {
        var r = PromptRecord.of("c-1", "Buy cheap watches!");
        r.labels = List.of("spam", "ham", "not sure, maybe");
        assertEquals(r, RecordCodec.decodePrompt(RecordCodec.encodePromptAvro(r)));
        PromptRecord json = RecordCodec.decodePrompt(bytes("{\"id\":\"c-1\",\"prompt\":\"Buy cheap watches!\","
                + "\"labels\":[\"spam\",\"ham\",\"not sure, maybe\"]}"));
        assertEquals(r, json);
        assertEquals(null, RequestBuilder.validate(json));
        assertEquals(r.labels, new RequestBuilder(new Configuration(), GenerationConfig.EMPTY).build(json, 0).labels());
    }

    @Test
    void labelAndProbabilitiesRoundTrip() throws Exception {
        var c = new CompletionRecord();
        c.id = "c-1";
        c.answer = "ham";
        c.reasoning = "";
        c.finishReason = "stop";
        c.model = "m";
        c.label = "ham";
        c.labelProbabilities = Map.of("spam", 0.1, "ham", 0.6, "eggs", 0.3);
        CompletionRecord back = RecordCodec.decodeCompletionAvro(RecordCodec.encodeCompletionAvro(c));
        assertEquals("ham", back.label);
        assertEquals(c.labelProbabilities, back.labelProbabilities);
        var tree = RecordCodec.JSON.readTree(RecordCodec.toJson(c));
        assertEquals("ham", tree.get("label").asText());
        assertEquals(c.labelProbabilities, RecordCodec.JSON.convertValue(tree.get("label_probabilities"), Map.class));
    }

    /** The schemas without the fields added for labels: what producers and consumers of earlier versions have. */
    static org.apache.avro.Schema withoutLabels(org.apache.avro.Schema schema) {
        var fields = schema.getFields().stream().filter(f -> !f.name().startsWith("label"))
                .map(f -> new org.apache.avro.Schema.Field(f, f.schema())).toList();
        return org.apache.avro.Schema.createRecord(schema.getName(), schema.getDoc(), schema.getNamespace(), false, fields);
    }

    @Test
    void recordsOfTheSchemasBeforeLabelsStillReadAndTheirReadersReadOurs() throws Exception {
        for (var schema : List.of(RecordCodec.PROMPT_SCHEMA, RecordCodec.COMPLETION_SCHEMA)) {
            var old = withoutLabels(schema);
            assertEquals(schema.getFields().size() - (schema == RecordCodec.PROMPT_SCHEMA ? 1 : 2), old.getFields().size());
            assertEquals(SchemaCompatibilityType.COMPATIBLE,
                    SchemaCompatibility.checkReaderWriterCompatibility(schema, old).getType(), "new reader, old writer");
            assertEquals(SchemaCompatibilityType.COMPATIBLE,
                    SchemaCompatibility.checkReaderWriterCompatibility(old, schema).getType(), "old reader, new writer");
        }
        // bytes an earlier producer wrote (no labels field at all) decode, the new fields at their defaults
        var oldPrompt = new GenericData.Record(withoutLabels(RecordCodec.PROMPT_SCHEMA));
        oldPrompt.put("id", "old-1");
        oldPrompt.put("prompt", "written before labels");
        oldPrompt.put("options", Map.of());
        oldPrompt.put("attributes", Map.of("k", "v"));
        PromptRecord r = RecordCodec.decodePrompt(write(oldPrompt));
        assertEquals("written before labels", r.prompt);
        assertEquals(Map.of("k", "v"), r.attributes);
        assertEquals(null, r.labels);
        assertEquals(null, RequestBuilder.validate(r));
        var oldCompletion = new GenericData.Record(withoutLabels(RecordCodec.COMPLETION_SCHEMA));
        for (var f : oldCompletion.getSchema().getFields()) {
            oldCompletion.put(f.name(), switch (f.schema().getType()) {
                case STRING -> "s";
                case INT -> 1;
                case LONG -> 2L;
                case BOOLEAN -> true;
                case MAP -> Map.of();
                default -> null;
            });
        }
        CompletionRecord c = RecordCodec.decodeCompletionAvro(write(oldCompletion));
        assertEquals("s", c.answer);
        assertEquals(null, c.label);
        assertEquals(null, c.labelProbabilities);
    }

    private static byte[] write(GenericData.Record record) throws Exception {
        var out = new java.io.ByteArrayOutputStream();
        var encoder = EncoderFactory.get().binaryEncoder(out, null);
        new GenericDatumWriter<GenericData.Record>(record.getSchema()).write(record, encoder);
        encoder.flush();
        return out.toByteArray();
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void validationNamesEachProblem() {
        assertEquals(null, RequestBuilder.validate(PromptRecord.of("a", "hi")));
        assertTrue(RequestBuilder.validate(PromptRecord.of("a", null)).startsWith("missing prompt"));
        assertTrue(RequestBuilder.validate(PromptRecord.of("a", "hi").withSlaMs(-1)).startsWith("negative sla_ms"));
        var unknown = PromptRecord.of("a", "hi");
        unknown.options = Map.of("temprature", "0.1");
        assertTrue(RequestBuilder.validate(unknown).startsWith("unknown option 'temprature'"));
        var role = PromptRecord.of("a", null);
        role.messages = List.of(new ChatTurn("robot", "x"), new ChatTurn("user", "y"));
        assertEquals(null, RequestBuilder.validate(role), "roles the template does not know are skipped, as the template does");
    }

    /** Decodes and validates as the source and the operator do: the dead-letter reason, or null when accepted. */
    static String reasonFor(byte[] value) {
        PromptRecord r;
        try {
            r = RecordCodec.decodePrompt(value);
        } catch (IllegalArgumentException e) {
            return e.getMessage();
        }
        return RequestBuilder.validate(r);
    }

    @Test
    void everyPoisonPillGetsAReasonNamingTheFieldAndWhatWasExpected() {
        List<String> wrong = new ArrayList<>();
        for (var pill : PoisonPills.all()) {
            String reason = reasonFor(pill.value());
            if (pill.needsEngine() ? reason != null : reason == null || !reason.contains(pill.reason())) {
                wrong.add(pill.id() + ": expected '" + (pill.needsEngine() ? null : pill.reason()) + "', got '" + reason + "'");
            }
        }
        assertEquals(List.of(), wrong);
    }

    @Test
    void lengthsAndCountsAreCheckedBeforeAllocating() {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        reasonFor(PoisonPills.avroStringLength()); // load the classes on the way
        for (byte[] pill : List.of(PoisonPills.avroArrayCount(), PoisonPills.avroStringLength(), PoisonPills.avroMapCount())) {
            long before = threads.getCurrentThreadAllocatedBytes();
            var e = assertThrows(IllegalArgumentException.class, () -> RecordCodec.decodePrompt(pill));
            long allocated = threads.getCurrentThreadAllocatedBytes() - before;
            assertTrue(allocated < 1 << 20, allocated + " bytes allocated to reject " + pill.length + " bytes: " + e.getMessage());
            assertTrue(e.getMessage().contains("2147483639"), e.getMessage());
        }
        assertEquals(10, PoisonPills.avroArrayCount().length);
    }

    @Test
    void anyJsonTextIsReadAsJsonAndAnyAvroPromptAsAvro() {
        for (String text : List.of("\uFEFF{\"id\":\"x\",\"prompt\":\"hi\"}", " {\"id\":\"x\",\"prompt\":\"hi\"}",
                "\n\r\t{\"id\":\"x\",\"prompt\":\"hi\"} \n")) {
            assertEquals("x", RecordCodec.decodePrompt(text.getBytes(StandardCharsets.UTF_8)).id, text);
        }
        // RFC 8259: a JSON text is any value; those that are not objects get a JSON error, never an Avro one
        for (String text : List.of("null", "true", "false", "-1", "0", "7.5e3", "\"s\"", "[]", "\uFEFF[]", " null")) {
            var e = assertThrows(IllegalArgumentException.class, () -> RecordCodec.decodePrompt(text.getBytes(StandardCharsets.UTF_8)));
            assertTrue(e.getMessage().startsWith("invalid JSON prompt: expected an object"), text + ": " + e.getMessage());
        }
        // every Avro prompt starts with the union index of 'id': 0x00 (null) or 0x02 (a string), never a JSON byte
        for (PromptRecord r : List.of(PromptRecord.of(null, "x"), PromptRecord.of("{", "x"), PromptRecord.of("", null), full())) {
            byte[] avro = RecordCodec.encodePromptAvro(r);
            assertTrue(avro[0] == 0 || avro[0] == 2, Arrays.toString(avro));
            assertTrue(!RecordCodec.startsJson(avro[0]));
        }
    }

    @Test
    void whateverIsAcceptedCanBeSnapshottedEmittedAndWritten() throws Exception {
        var serializer = new StreamElementSerializer<>(
                TypeInformation.of(PromptRecord.class).createSerializer(new SerializerConfigImpl()));
        var requests = new RequestBuilder(new Configuration(), GenerationConfig.EMPTY);
        for (var good : PoisonPills.extremes()) {
            PromptRecord r = RecordCodec.decodePrompt(good.value());
            assertEquals(null, RequestBuilder.validate(r), good.id());
            // the operator's checkpoint: Flink's serializer, timestamp included
            var out = new DataOutputSerializer(256);
            serializer.serialize(new StreamRecord<>(r, 42L), out);
            StreamRecord<PromptRecord> back = serializer.deserialize(new DataInputDeserializer(out.getCopyOfBuffer())).asRecord();
            assertEquals(r, back.getValue(), good.id());
            assertEquals(42L, back.getTimestamp());
            // the wire formats, both ways
            byte[] avro = RecordCodec.encodePromptAvro(r);
            assertEquals(null, RequestBuilder.validate(RecordCodec.decodePrompt(avro)), good.id());
            PromptRecord fromAvro = RecordCodec.decodePrompt(avro);
            assertEquals(fromAvro, RecordCodec.decodePrompt(RecordCodec.encodePromptAvro(fromAvro)), good.id());
            assertEquals(null, RequestBuilder.validate(RecordCodec.decodePrompt(RecordCodec.toJson(r))), good.id());
            // the request, and what the sinks write
            assertTrue(requests.build(r, GenerationRequest.UNLIMITED).maxTokens() >= 1);
            assertTrue(requests.build(r, 0).maxTokens() >= 1);
            var c = new CompletionRecord();
            c.id = r.id;
            c.answer = c.reasoning = c.finishReason = c.model = "";
            c.attributes = r.attributes == null ? Map.of() : r.attributes;
            assertEquals(r.id, RecordCodec.decodeCompletionAvro(RecordCodec.encodeCompletionAvro(c)).id);
            assertTrue(RecordCodec.toJson(c).length > 0);
        }
    }

    @Test
    void numbersAtTheExtremesGiveSaneRequests() {
        var requests = new RequestBuilder(new Configuration(), GenerationConfig.EMPTY);
        var tiny = PromptRecord.of("t", "hi");
        tiny.options = Map.of("temperature", "1e-30", "top_p", "1e-30", "top_k", "2147483647", "seed", "-9223372036854775808");
        var s = requests.build(tiny, 0).sampling();
        assertEquals(0f, s.temperature(), "a temperature too small to divide by is greedy, its limit");
        assertEquals(Integer.MAX_VALUE, s.topK());
        assertEquals(Long.MIN_VALUE, s.seed());
        assertTrue(s.topP() > 0);
        var big = PromptRecord.of("b", "hi");
        big.maxTokens = Integer.MAX_VALUE;
        big.thinkingBudget = Integer.MAX_VALUE;
        assertEquals(Integer.MAX_VALUE, requests.build(big, big.thinkingBudget).maxTokens(), "the engine stops at the context length");
    }

    @Test
    void operatorOptionsAreCheckedWhenTheJobIsBuilt() {
        List<Qwen3Inference.Builder> bad = List.of(
                Qwen3Inference.builder().model("m").maxInFlight(0),
                Qwen3Inference.builder().model("m").defaultMaxTokens(-1),
                Qwen3Inference.builder().model("m").threads(0),
                Qwen3Inference.builder().model("m").maxContext(-1),
                Qwen3Inference.builder().model("m").defaultSla(Duration.ofMillis(-1)),
                Qwen3Inference.builder().model("m").option(Qwen3Options.TEMPERATURE, Double.NaN),
                Qwen3Inference.builder().model("m").option(Qwen3Options.TOP_P, 0.0),
                Qwen3Inference.builder().model("m").option(Qwen3Options.TOP_K, -1),
                Qwen3Inference.builder().model("m").option(Qwen3Options.PRESENCE_PENALTY, Double.POSITIVE_INFINITY),
                Qwen3Inference.builder().model("m").option(Qwen3Options.THINKING_BUDGET, -2),
                Qwen3Inference.builder().model("m").option(Qwen3Options.QUANTIZE, "q3"),
                Qwen3Inference.builder().model("m").minConfidence(1.5),
                Qwen3Inference.builder().model("m").minConfidence(Double.NaN),
                Qwen3Inference.builder().model("m").kvCacheMemory(MemorySize.ZERO));
        List<String> keys = List.of("qwen3.operator.max-in-flight", "qwen3.generation.max-tokens", "qwen3.engine.threads",
                "qwen3.engine.max-context", "qwen3.sla.default", "qwen3.generation.temperature", "qwen3.generation.top-p",
                "qwen3.generation.top-k", "qwen3.generation.presence-penalty", "qwen3.thinking.budget", "q3",
                "qwen3.generation.min-confidence", "qwen3.generation.min-confidence", "qwen3.engine.kv-cache-memory");
        for (int i = 0; i < bad.size(); i++) {
            var e = assertThrows(IllegalArgumentException.class, bad.get(i)::build, keys.get(i));
            assertTrue(e.getMessage().contains(keys.get(i)), e.getMessage());
        }
        Qwen3Inference.builder().model("m").maxInFlight(1).ordered(true).defaultSla(Duration.ZERO).minConfidence(1)
                .kvCacheMemory(MemorySize.parse("64 mb")).build();
        var kv = new Configuration();
        assertEquals(0, Qwen3Options.engineOptions(kv).kvCacheMemory(), "unset: the engine's default from the model");
        kv.set(Qwen3Options.KV_CACHE_MEMORY, MemorySize.parse("64 mb"));
        assertEquals(64L << 20, Qwen3Options.engineOptions(kv).kvCacheMemory());
    }

    @Test
    void aConfigurationTakesGroupedKeysAndTheOldShortOnesAndRefusesUnknownOrSqlOnlyKeys() {
        var grouped = Configuration.fromMap(Map.of("qwen3.model.location", "m", "qwen3.operator.max-in-flight", "0"));
        var e = assertThrows(IllegalArgumentException.class, () -> Qwen3Inference.builder().options(grouped).build());
        assertEquals("option 'qwen3.operator.max-in-flight' must be >= 1, got 0", e.getMessage());
        // the keys before the groups still work, as deprecated keys
        var old = Configuration.fromMap(Map.of("model", "m", "max-in-flight", "3", "default-sla", "2s"));
        assertEquals(3, old.get(Qwen3Options.MAX_IN_FLIGHT));
        assertEquals(Duration.ofSeconds(2), old.get(Qwen3Options.DEFAULT_SLA));
        Qwen3Inference.builder().options(old).build();

        var typo = Configuration.fromMap(Map.of("qwen3.model.location", "m", "qwen3.engine.thread", "2"));
        e = assertThrows(IllegalArgumentException.class, () -> Qwen3Inference.builder().options(typo).build());
        assertTrue(e.getMessage().startsWith("unknown option 'qwen3.engine.thread' (known: [qwen3.engine.expert-shards, "), e.getMessage());
        assertTrue(e.getMessage().contains("qwen3.engine.threads"), e.getMessage());

        e = assertThrows(IllegalArgumentException.class,
                () -> Qwen3Inference.builder().model("m").option(Qwen3Options.SYSTEM_PROMPT, "Be brief.").build());
        assertTrue(e.getMessage().startsWith("option 'qwen3.generation.system-prompt' applies to SQL only"), e.getMessage());
    }

    @Test
    void sinkEncodersWorkAfterJavaSerializationInBothFormats() throws Exception {
        var c = new CompletionRecord();
        c.id = "c";
        c.answer = c.reasoning = c.finishReason = c.model = "x";
        var d = new DeadLetter("d", "why", new byte[] {1});
        for (var format : Qwen3Kafka.Format.values()) {
            // as Flink ships them to the task managers
            var completions = InstantiationUtil.clone(new Qwen3Kafka.CompletionEncoder(format));
            var deadLetters = InstantiationUtil.clone(new Qwen3Kafka.DeadLetterEncoder(format));
            byte[] cBytes = completions.serialize(c);
            byte[] dBytes = deadLetters.serialize(d);
            assertEquals("c", format == Qwen3Kafka.Format.AVRO ? RecordCodec.decodeCompletionAvro(cBytes).id
                    : RecordCodec.JSON.readValue(cBytes, CompletionRecord.class).id);
            assertEquals("why", format == Qwen3Kafka.Format.AVRO ? RecordCodec.decodeDeadLetterAvro(dBytes).reason
                    : RecordCodec.JSON.readValue(dBytes, DeadLetter.class).reason);
        }
    }

    @Test
    void aFailureDownstreamOfTheSourceFailsTheTaskInsteadOfBecomingADeadLetter() {
        for (RuntimeException downstream : List.of(new IllegalStateException("injected"), new IllegalArgumentException("injected"))) {
            Collector<PromptRecord> failing = new Collector<>() {
                @Override
                public void collect(PromptRecord record) {
                    throw downstream;
                }

                @Override
                public void close() {}
            };
            var record = new ConsumerRecord<>("prompts", 0, 7L, "k".getBytes(StandardCharsets.UTF_8),
                    RecordCodec.encodePromptAvro(PromptRecord.of("k", "hi")));
            var e = assertThrows(RuntimeException.class, () -> new Qwen3Kafka.PromptDeserializer().deserialize(record, failing));
            assertSame(downstream, e);
        }
    }
}
