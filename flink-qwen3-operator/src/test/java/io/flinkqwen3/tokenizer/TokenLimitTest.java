package io.flinkqwen3.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.flinkqwen3.testing.Fixtures;
import java.nio.file.Files;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Tokenizing with a limit (the context length): the same ids when the text fits, null as soon as
 * it cannot, and never more work than the limit calls for, however long the text.
 */
class TokenLimitTest {
    static JsonNode golden;

    @BeforeAll
    static void load() throws Exception {
        golden = new ObjectMapper().readTree(Files.readAllBytes(Fixtures.FIXTURES.resolve("tokenizer-golden.json")));
    }

    static Qwen3Tokenizer fresh() {
        return Qwen3Tokenizer.load(Fixtures.SHARED.resolve("qwen3-tokenizer/tokenizer.json"));
    }

    @Test
    void aLimitAtOrAboveTheCountGivesTheSameIdsAndBelowItNull() {
        var tokenizer = fresh();
        int checked = 0;
        for (JsonNode c : golden.path("encode")) {
            String text = c.path("text").asText();
            int[] all = tokenizer.encode(text);
            assertEquals(c.path("ids").size(), all.length, text);
            if (all.length == 0) {
                continue;
            }
            assertArrayEquals(all, tokenizer.encode(text, all.length), text);
            assertArrayEquals(all, tokenizer.encode(text, all.length + 1), text);
            assertNull(tokenizer.encode(text, all.length - 1), text);
            checked++;
        }
        assertTrue(checked >= 10, "golden cases checked: " + checked);
    }

    @Test
    void qwensLongestTokenIsTheBoundOnCharactersPerToken() {
        var tokenizer = fresh();
        assertEquals(128, tokenizer.longestTokenChars(), "128 spaces (byte-level 'Ġ' x 128) is Qwen3's longest token");
        assertTrue(tokenizer.tokenId("\u0120".repeat(128)) >= 0);
        assertEquals(1, tokenizer.encode("x" + " ".repeat(128)).length - tokenizer.encode("x").length,
                "128 trailing spaces are one token");
        assertEquals(4L * 128 * 4095, tokenizer.maxCharsFor(4095));
    }

    @Test
    void textTooLongForTheLimitIsRefusedWithoutBeingTokenized() {
        var tokenizer = fresh();
        // 2.2 million distinct words: more characters than 4,095 tokens of any text can have
        var text = new StringBuilder();
        for (int i = 0; text.length() <= tokenizer.maxCharsFor(4095); i++) {
            text.append(" w").append(i);
        }
        assertNull(tokenizer.encode(text.toString(), 4095));
        assertEquals(0, tokenizer.cachedWords(), "not a single word was tokenized");
    }

    @Test
    void tokenizingStopsAtTheLimit() {
        var tokenizer = fresh();
        // 200,000 distinct words (1.6 million characters): 4,095 tokens are exceeded after about 4,095 of them
        var text = new StringBuilder();
        for (int i = 0; i < 200_000; i++) {
            text.append(" w").append(i * 7919L % 1_000_003);
        }
        assertTrue(text.length() < tokenizer.maxCharsFor(4095), "long, but not refused by its length alone");
        assertNull(tokenizer.encode(text.toString(), 4095));
        assertTrue(tokenizer.cachedWords() <= 4096, "words tokenized before stopping: " + tokenizer.cachedWords());
        // one huge word: refused by the lower bound of its token count (its length over 128), not merged
        var word = "x".repeat(128 * 100 + 1);
        assertNull(tokenizer.encode(word, 100));
        assertTrue(tokenizer.encode(word).length > 100, "the whole word does have more than 100 tokens");
    }

    @Test
    void addedTokensCountTowardsTheLimit() {
        var tokenizer = fresh();
        String text = "<|im_start|>user\nhi<|im_end|>\n".repeat(50);
        int[] all = tokenizer.encode(text);
        assertArrayEquals(all, tokenizer.encode(text, all.length));
        assertNull(tokenizer.encode(text, all.length - 1));
        assertNull(tokenizer.encode("<|im_start|><|im_end|>", 1), "two special tokens exceed a limit of one");
    }
}
