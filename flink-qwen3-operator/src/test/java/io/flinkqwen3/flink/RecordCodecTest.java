package io.flinkqwen3.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class RecordCodecTest {
    static PromptRecord full() {
        var r = PromptRecord.of("r-1", null);
        r.messages = List.of(new ChatTurn("system", "Be brief."), new ChatTurn("user", "Hi"));
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
    void validationNamesEachProblem() {
        assertEquals(null, RequestBuilder.validate(PromptRecord.of("a", "hi")));
        assertTrue(RequestBuilder.validate(PromptRecord.of("a", null)).startsWith("missing prompt"));
        assertTrue(RequestBuilder.validate(PromptRecord.of("a", "hi").withSlaMs(-1)).startsWith("negative sla_ms"));
        var unknown = PromptRecord.of("a", "hi");
        unknown.options = Map.of("temprature", "0.1");
        assertTrue(RequestBuilder.validate(unknown).startsWith("unknown option 'temprature'"));
        var role = PromptRecord.of("a", null);
        role.messages = List.of(new ChatTurn("robot", "x"));
        assertTrue(RequestBuilder.validate(role).contains("'robot'"));
    }
}
