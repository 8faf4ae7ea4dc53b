package io.flinkqwen3.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Our rendering against the real chat_template: the goldens were rendered from
 * ../shared/qwen3-tokenizer/tokenizer_config.json by tools/chat-template-goldens (@huggingface/jinja;
 * the same cases render identically with Python's jinja2 and transformers' tojson).
 */
class ChatTemplateGoldenTest {
    static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void toolsToolCallsReasoningAndUnknownRolesRenderAsTheRealTemplate() throws IOException {
        JsonNode goldens = JSON.readTree(Path.of("src/test/resources/chat-template-goldens.json").toFile());
        int cases = 0;
        for (JsonNode c : goldens.get("cases")) {
            List<ChatMessage> messages = new ArrayList<>();
            for (int i = 0; i < c.get("messages").size(); i++) {
                messages.add(ChatMessage.fromJson(c.get("messages").get(i), "messages[" + i + "]"));
            }
            List<JsonNode> tools = new ArrayList<>();
            c.path("tools").forEach(tools::add);
            String rendered = ChatTemplate.render(messages, tools, c.get("add_generation_prompt").asBoolean(),
                    c.get("enable_thinking").asBoolean());
            assertEquals(c.get("rendered").asText(), rendered, c.get("name").asText());
            cases++;
        }
        assertTrue(cases >= 9, "goldens present: " + cases);
    }

    @Test
    void tojsonWritesFloatsAsPythonsRepr() throws IOException {
        // python3 -c 'import json; print(json.dumps([1.0, 1e-5, 1e16, 123456789012345678.0, 0.1, -0.0, 1e22, 5e-324, 1.5e300, 100.0, 1e15]))'
        assertEquals("[1.0, 1e-05, 1e+16, 1.2345678901234568e+17, 0.1, -0.0, 1e+22, 5e-324, 1.5e+300, 100.0, 1000000000000000.0]",
                TemplateJson.dumps(JSON.readTree("[1.0, 1e-5, 1e16, 123456789012345678.0, 0.1, -0.0, 1e22, 5e-324, 1.5e300, 100.0, 1e15]")));
        assertEquals("{\"a\\u001fb\": \"é\\n\", \"n\": [12345678901234567890, true, null]}",
                TemplateJson.dumps(JSON.readTree("{\"a\\u001Fb\": \"é\\n\", \"n\": [12345678901234567890, true, null]}")));
    }

    @Test
    void malformedToolCallsNameTheField() throws IOException {
        var e = assertThrows(IllegalArgumentException.class, () -> ChatMessage.fromJson(JSON.readTree(
                "{\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"function\": {\"name\": 3, \"arguments\": {}}}]}"), "messages[1]"));
        assertEquals("messages[1].tool_calls[0].function.name is 3, expected a string", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ChatMessage.fromJson(JSON.readTree(
                "{\"role\": \"assistant\", \"tool_calls\": [{\"name\": \"f\"}]}"), "messages[0]"));
        assertEquals("messages[0].tool_calls[0].arguments is missing, expected an object or a JSON string", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ChatMessage.fromJson(JSON.readTree("{\"content\": \"x\"}"), "messages[0]"));
        assertEquals("messages[0].role is missing, expected a string", e.getMessage());
    }
}
