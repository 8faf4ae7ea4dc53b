package io.flinkqwen3.flink;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;

/**
 * Wire formats of the records: Avro binary (schemas in src/main/avro) and JSON (snake_case field
 * names, same as the Avro fields). Decoding a prompt accepts either: JSON starts with '{', which
 * can never start an Avro PromptRecord.
 */
public final class RecordCodec {
    public static final Schema PROMPT_SCHEMA = schema("/PromptRecord.avsc");
    public static final Schema COMPLETION_SCHEMA = schema("/CompletionRecord.avsc");
    public static final Schema DEAD_LETTER_SCHEMA = schema("/DeadLetter.avsc");
    public static final ObjectMapper JSON = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

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

    /** Decodes Avro binary or JSON; throws IllegalArgumentException saying what is wrong. */
    public static PromptRecord decodePrompt(byte[] bytes) {
        if (bytes == null || bytes.length == 0) {
            throw new IllegalArgumentException("empty record");
        }
        if (bytes[0] == '{') {
            try {
                return JSON.readValue(bytes, PromptRecord.class);
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new IllegalArgumentException("invalid JSON prompt: " + e.getOriginalMessage());
            } catch (IOException e) {
                throw new IllegalArgumentException("invalid JSON prompt: " + e.getMessage());
            }
        }
        GenericRecord g;
        try {
            var decoder = DecoderFactory.get().binaryDecoder(bytes, null);
            g = new GenericDatumReader<GenericRecord>(PROMPT_SCHEMA).read(null, decoder);
            if (!decoder.isEnd()) {
                throw new IllegalArgumentException("invalid Avro prompt: " + bytes.length + " bytes but the record ends earlier");
            }
        } catch (IOException | RuntimeException e) {
            if (e instanceof IllegalArgumentException iae && iae.getMessage().startsWith("invalid Avro")) {
                throw iae;
            }
            throw new IllegalArgumentException("invalid Avro prompt (schema " + PROMPT_SCHEMA.getFullName() + "): " + e);
        }
        var r = new PromptRecord();
        r.id = str(g.get("id"));
        r.prompt = str(g.get("prompt"));
        if (g.get("messages") != null) {
            r.messages = new ArrayList<>();
            for (Object o : (List<?>) g.get("messages")) {
                GenericRecord t = (GenericRecord) o;
                r.messages.add(new ChatTurn(str(t.get("role")), str(t.get("content"))));
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
        return r;
    }

    public static byte[] encodePromptAvro(PromptRecord r) {
        var g = new GenericData.Record(PROMPT_SCHEMA);
        g.put("id", r.id);
        g.put("prompt", r.prompt);
        if (r.messages != null) {
            Schema turn = PROMPT_SCHEMA.getField("messages").schema().getTypes().get(1).getElementType();
            List<GenericRecord> turns = new ArrayList<>();
            for (ChatTurn t : r.messages) {
                var gt = new GenericData.Record(turn);
                gt.put("role", t.role);
                gt.put("content", t.content);
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
        return write(COMPLETION_SCHEMA, g);
    }

    public static CompletionRecord decodeCompletionAvro(byte[] bytes) {
        try {
            GenericRecord g = new GenericDatumReader<GenericRecord>(COMPLETION_SCHEMA)
                    .read(null, DecoderFactory.get().binaryDecoder(bytes, null));
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
            return c;
        } catch (IOException e) {
            throw new IllegalArgumentException("invalid Avro completion: " + e.getMessage(), e);
        }
    }

    public static byte[] encodeDeadLetterAvro(DeadLetter d) {
        var g = new GenericData.Record(DEAD_LETTER_SCHEMA);
        g.put("id", d.id);
        g.put("reason", d.reason);
        g.put("payload", ByteBuffer.wrap(d.payload == null ? new byte[0] : d.payload));
        return write(DEAD_LETTER_SCHEMA, g);
    }

    public static DeadLetter decodeDeadLetterAvro(byte[] bytes) {
        try {
            GenericRecord g = new GenericDatumReader<GenericRecord>(DEAD_LETTER_SCHEMA)
                    .read(null, DecoderFactory.get().binaryDecoder(bytes, null));
            ByteBuffer payload = (ByteBuffer) g.get("payload");
            byte[] raw = new byte[payload.remaining()];
            payload.get(raw);
            return new DeadLetter(str(g.get("id")), str(g.get("reason")), raw);
        } catch (IOException e) {
            throw new IllegalArgumentException("invalid Avro dead letter: " + e.getMessage(), e);
        }
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
