package io.flinkqwen3.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flinkqwen3.testing.Fixtures;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The heap-based BPE gives exactly the ids of the quadratic reference algorithm (the one the
 * tokenizer used before), in bounded time for huge words, with a bounded word cache; malformed
 * tokenizer.json files are refused at load with the file and the field.
 */
class BpeTest {
    static final Path TOKENIZER_JSON = Fixtures.SHARED.resolve("qwen3-tokenizer/tokenizer.json");
    static Qwen3Tokenizer tokenizer;
    static Reference reference;
    static ObjectNode json;

    @BeforeAll
    static void load() throws Exception {
        tokenizer = Qwen3Tokenizer.load(TOKENIZER_JSON);
        json = (ObjectNode) new ObjectMapper().readTree(Files.readAllBytes(TOKENIZER_JSON));
        reference = new Reference(json.path("model"));
    }

    /** The previous implementation: rescan all pairs, merge the lowest (rank, merged id), leftmost on ties. */
    static final class Reference {
        final Map<String, Integer> vocab = new HashMap<>();
        final Map<Long, Long> merges = new HashMap<>();

        Reference(JsonNode model) {
            model.path("vocab").properties().forEach(e -> vocab.put(e.getKey(), e.getValue().asInt()));
            int rank = 0;
            for (JsonNode m : model.path("merges")) {
                String[] p = m.isArray() ? new String[] {m.get(0).asText(), m.get(1).asText()} : m.asText().split(" ", 2);
                Integer a = vocab.get(p[0]), b = vocab.get(p[1]), merged = vocab.get(p[0] + p[1]);
                if (a != null && b != null && merged != null) {
                    merges.putIfAbsent(((long) a << 32) | (b & 0xFFFFFFFFL), ((long) rank << 32) | merged);
                }
                rank++;
            }
        }

        int[] bpe(String word) {
            String spelled = ByteLevel.encode(word.getBytes(StandardCharsets.UTF_8));
            Integer whole = vocab.get(spelled);
            if (whole != null) {
                return new int[] {whole};
            }
            int n = spelled.length();
            int[] parts = new int[n];
            for (int i = 0; i < n; i++) {
                parts[i] = vocab.get(String.valueOf(spelled.charAt(i)));
            }
            while (n > 1) {
                long best = Long.MAX_VALUE;
                int bestAt = -1;
                for (int i = 0; i + 1 < n; i++) {
                    Long merge = merges.get(((long) parts[i] << 32) | (parts[i + 1] & 0xFFFFFFFFL));
                    if (merge != null && merge < best) {
                        best = merge;
                        bestAt = i;
                    }
                }
                if (bestAt < 0) {
                    break;
                }
                parts[bestAt] = (int) best;
                System.arraycopy(parts, bestAt + 2, parts, bestAt + 1, n - bestAt - 2);
                n--;
            }
            return Arrays.copyOf(parts, n);
        }
    }

    static final String[] ALPHABETS = {
        "abcdefghijklmnopqrstuvwxyz",
        "etaoinshrdlu",                       // frequent letters: long merge chains
        "ab",                                 // many equal pairs side by side: ties decide
        "a",                                  // one repeated symbol: overlapping pairs
        "的一是不了人我在有他这为之大来以个中上们",   // CJK
        "абвгдежзийклмнопрстуфхцчшщъыьэюя",   // Cyrillic
        "0123456789 .,;:!?-_()[]{}'\"",
        "é ü ñ ß ø å ç 🙂 😀 👍 — … «»",
    };

    static String randomWord(Random random, int length) {
        StringBuilder sb = new StringBuilder();
        String alphabet = ALPHABETS[random.nextInt(ALPHABETS.length)];
        boolean mixed = random.nextInt(4) == 0;
        while (sb.length() < length) {
            if (mixed) {
                alphabet = ALPHABETS[random.nextInt(ALPHABETS.length)];
            }
            int cp = alphabet.codePointAt(alphabet.offsetByCodePoints(0, random.nextInt(alphabet.codePointCount(0, alphabet.length()))));
            int repeat = random.nextInt(3) == 0 ? 1 + random.nextInt(6) : 1;
            for (int r = 0; r < repeat; r++) {
                sb.appendCodePoint(cp);
            }
        }
        return sb.toString();
    }

    @Test
    void givesTheIdsOfTheReferenceAlgorithmOnRandomWords() {
        Random random = new Random(42);
        int compared = 0, multiToken = 0;
        for (int i = 0; i < 600; i++) {
            int length = i < 560 ? 1 + random.nextInt(60) : 100 + random.nextInt(700);
            String word = randomWord(random, length);
            int[] expected = reference.bpe(word);
            assertArrayEquals(expected, tokenizer.bpe(word), () -> "ids of '" + word + "'");
            compared++;
            multiToken += expected.length > 1 ? 1 : 0;
        }
        for (String word : new String[] {"a".repeat(1000), "ab".repeat(700), "aab".repeat(300), "的".repeat(500),
                " hello", "Ġ", "🙂".repeat(100), "x"}) {
            assertArrayEquals(reference.bpe(word), tokenizer.bpe(word), () -> "ids of '" + word + "'");
        }
        assertEquals(600, compared);
        assertTrue(multiToken > 400, "the random words exercise merging: " + multiToken);
    }

    @Test
    void aHundredKilobyteWordTokenizesInBoundedTime() {
        Random random = new Random(7);
        StringBuilder letters = new StringBuilder();
        while (letters.length() < 100_000) {
            letters.append((char) ('a' + random.nextInt(26)));
        }
        String cjk = cjkWord(random, 34_000); // ~100 KB of UTF-8
        for (String word : new String[] {letters.toString(), "a".repeat(100_000), cjk}) {
            assertTrue(word.getBytes(StandardCharsets.UTF_8).length >= 100_000);
            long start = System.nanoTime();
            int[] ids = tokenizer.encode(word);
            double seconds = (System.nanoTime() - start) / 1e9;
            assertTrue(seconds < 5, "tokenizing " + word.length() + " chars took " + seconds + " s");
            assertEquals(word, tokenizer.decode(ids), "round trip");
            assertTrue(ids.length < word.getBytes(StandardCharsets.UTF_8).length, "merges happened: " + ids.length);
        }
    }

    static String cjkWord(Random random, int chars) {
        String alphabet = ALPHABETS[4];
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < chars; i++) {
            sb.append(alphabet.charAt(random.nextInt(alphabet.length())));
        }
        return sb.toString();
    }

    @Test
    void theWordCacheIsBounded() {
        var fresh = Qwen3Tokenizer.load(TOKENIZER_JSON);
        StringBuilder text = new StringBuilder();
        int words = 3 * Qwen3Tokenizer.CACHE_GENERATION_ENTRIES;
        for (int i = 0; i < words; i++) {
            text.append(' ');
            for (int v = i + 26 * 26; v > 0; v /= 26) {
                text.append((char) ('a' + v % 26)); // distinct words of letters only
            }
        }
        fresh.encode(text.toString());
        assertTrue(fresh.cachedWords() <= 2 * Qwen3Tokenizer.CACHE_GENERATION_ENTRIES + 8, "cached " + fresh.cachedWords());
        assertTrue(fresh.cachedWords() >= Qwen3Tokenizer.CACHE_GENERATION_ENTRIES, "the cache is used: " + fresh.cachedWords());
        fresh.encode("x".repeat(Qwen3Tokenizer.MAX_CACHED_WORD_CHARS + 1) + " y");
        // a long word is not cached; ids stay identical with and without the cache
        assertArrayEquals(tokenizer.encode(text.substring(0, 2000)), fresh.encode(text.substring(0, 2000)));
    }

    /** Writes the fixture tokenizer.json with one change, and expects load to name the file and the field. */
    static void assertRefused(Path dir, java.util.function.Consumer<ObjectNode> change, String... expected) throws Exception {
        ObjectNode copy = json.deepCopy();
        change.accept(copy);
        Path file = dir.resolve("tokenizer.json");
        new ObjectMapper().writeValue(file.toFile(), copy);
        var e = assertThrows(IllegalArgumentException.class, () -> Qwen3Tokenizer.load(file));
        assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
        for (String part : expected) {
            assertTrue(e.getMessage().contains(part), "'" + part + "' missing from: " + e.getMessage());
        }
    }

    static ObjectNode vocab(ObjectNode json) {
        return (ObjectNode) json.path("model").path("vocab");
    }

    static ArrayNode merges(ObjectNode json) {
        return (ArrayNode) json.path("model").path("merges");
    }

    static ObjectNode firstAdded(ObjectNode json) {
        return (ObjectNode) json.path("added_tokens").get(0);
    }

    @Test
    void malformedTokenizerJsonIsRefusedAtLoad(@TempDir Path dir) throws Exception {
        assertRefused(dir, j -> vocab(j).put("!", 2_000_000_000), "model.vocab['!']", "2000000000");
        assertRefused(dir, j -> vocab(j).put("!", -3), "model.vocab['!']", "-3");
        assertRefused(dir, j -> vocab(j).put("!", "zero"), "model.vocab['!']", "expected an integer id");
        assertRefused(dir, j -> vocab(j).put("!", 1.5), "model.vocab['!']", "expected an integer id");
        assertRefused(dir, j -> vocab(j).put("!", 1), "model.vocab", "id 1", "'!'", "'\"'");
        assertRefused(dir, j -> vocab(j).remove("!"), "byte 0x21");
        assertRefused(dir, j -> firstAdded(j).put("id", 2_000_000_000), "added_tokens[0].id", "2000000000");
        assertRefused(dir, j -> firstAdded(j).put("id", -1), "added_tokens[0].id", "-1");
        assertRefused(dir, j -> firstAdded(j).put("content", ""), "added_tokens[0].content");
        assertRefused(dir, j -> merges(j).set(0, merges(j).arrayNode().add("Ġ")), "model.merges[0]");
        assertRefused(dir, j -> merges(j).set(0, merges(j).textNode("ĠĠ")), "model.merges[0]", "\"ĠĠ\"");
        assertRefused(dir, j -> merges(j).set(3, merges(j).arrayNode().add("Ġ").add(7)), "model.merges[3]");
        assertRefused(dir, j -> merges(j).set(5, merges(j).arrayNode().add("Ġ").add("nosuchtoken")),
                "model.merges[5]", "'nosuchtoken'", "not in the vocabulary");
        assertRefused(dir, j -> ((ObjectNode) j.path("model")).putObject("merges"), "model.merges", "expected a list");
        assertRefused(dir, j -> ((ObjectNode) j.path("model")).put("vocab", 3), "model.vocab", "expected an object");
    }
}
