package io.flinkqwen3.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.flinkqwen3.testing.Fixtures;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Token ids, decoding and chat rendering identical to transformers (fixtures/tokenizer-golden.json). */
class Qwen3TokenizerTest {
    static Qwen3Tokenizer tokenizer;
    static JsonNode golden;

    @BeforeAll
    static void load() throws Exception {
        tokenizer = Qwen3Tokenizer.load(Fixtures.SHARED.resolve("qwen3-tokenizer/tokenizer.json"));
        golden = new ObjectMapper().readTree(Files.readString(Fixtures.FIXTURES.resolve("tokenizer-golden.json")));
    }

    static int[] ids(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asInt();
        }
        return out;
    }

    @Test
    void encodesEveryGoldenStringToTheReferenceIds() {
        assertTrue(golden.path("encode").size() >= 20);
        for (JsonNode c : golden.path("encode")) {
            String text = c.path("text").asText();
            assertArrayEquals(ids(c.path("ids")), tokenizer.encode(text), "ids of " + text);
            assertEquals(c.path("decoded").asText(), tokenizer.decode(ids(c.path("ids"))), "decoding of " + text);
        }
    }

    @Test
    void recognisesSpecialTokensInsideText() {
        int[] ids = tokenizer.encode("a<|im_end|>b<think>");
        assertArrayEquals(new int[] {64, 151645, 65, 151667}, ids);
        assertTrue(tokenizer.isSpecial(151645));
        assertTrue(!tokenizer.isSpecial(151667), "<think> is an added token but not special");
        assertEquals("ab<think>", tokenizer.decode(ids, true));
    }

    @Test
    void streamingDecoderNeverEmitsABrokenCharacter() {
        String text = "你好🙂 naïve — Привет";
        int[] ids = tokenizer.encode(text);
        var decoder = tokenizer.streamingDecoder(false);
        var pieces = new StringBuilder();
        for (int id : ids) {
            String piece = decoder.accept(id);
            assertTrue(!piece.contains("\uFFFD"), "broken character in piece '" + piece + "'");
            pieces.append(piece);
        }
        pieces.append(decoder.flush());
        assertEquals(text, pieces.toString());
        // the emoji alone is split over several byte-level tokens: nothing comes out until it is whole
        int[] emoji = tokenizer.encode("🙂");
        var d2 = tokenizer.streamingDecoder(false);
        var out = new ArrayList<String>();
        for (int id : emoji) {
            out.add(d2.accept(id));
        }
        assertEquals("🙂", String.join("", out));
        assertEquals(4, "🙂".getBytes(StandardCharsets.UTF_8).length);
    }

    @Test
    void chatTemplateRendersLikeTransformers() {
        assertTrue(golden.path("chat_template").size() >= 4);
        for (JsonNode c : golden.path("chat_template")) {
            List<ChatMessage> messages = new ArrayList<>();
            for (JsonNode m : c.path("messages")) {
                messages.add(new ChatMessage(m.path("role").asText(), m.path("content").asText()));
            }
            String rendered = ChatTemplate.render(messages, c.path("add_generation_prompt").asBoolean(),
                    c.path("enable_thinking").asBoolean(true));
            assertEquals(c.path("text").asText(), rendered, c.path("name").asText());
            assertArrayEquals(ids(c.path("ids")), tokenizer.encode(rendered), c.path("name").asText() + " ids");
        }
    }

    @Test
    void chatTemplateKeepsReasoningOnlyAfterTheLastUserQuery() {
        var messages = List.of(
                ChatMessage.user("q1"),
                ChatMessage.assistant("<think>\nr1\n</think>\n\na1"),
                ChatMessage.user("q2"),
                ChatMessage.assistant("<think>\nr2\n</think>\n\ncall"),
                ChatMessage.user("<tool_response>\nx\n</tool_response>"),
                new ChatMessage("assistant", "a3", "r3"));
        String rendered = ChatTemplate.render(messages, false, true);
        // r1 precedes the last real query (q2) and is dropped; r2 and r3 belong to the tool chain after it
        assertEquals("<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\na1<|im_end|>\n"
                + "<|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\n<think>\nr2\n</think>\n\ncall<|im_end|>\n"
                + "<|im_start|>user\n<tool_response>\nx\n</tool_response><|im_end|>\n"
                + "<|im_start|>assistant\n<think>\nr3\n</think>\n\na3<|im_end|>\n", rendered);
    }
}
