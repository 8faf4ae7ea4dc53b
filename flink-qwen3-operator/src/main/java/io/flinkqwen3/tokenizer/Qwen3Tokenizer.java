package io.flinkqwen3.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Qwen3's byte-level BPE tokenizer, as defined by {@code tokenizer.json}: added tokens are split
 * out first (longest match), the rest is NFC-normalised, pre-split by Qwen's regex, mapped through
 * the byte-level alphabet and merged by rank. No BOS is prepended.
 */
public final class Qwen3Tokenizer {
    /** Qwen2/Qwen3 pre-tokenizer regex; UNICODE_CHARACTER_CLASS makes \s match Unicode white space as Rust's regex does. */
    private static final Pattern PRE_TOKENIZE = Pattern.compile(
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);

    public record AddedToken(int id, String content, boolean special) {}

    private final Map<String, Integer> vocab;
    private final String[] idToToken;
    /** (left id, right id) -> rank << 32 | merged id. */
    private final Map<Long, Long> merges;
    private final Map<String, AddedToken> added = new HashMap<>();
    private final AddedToken[] addedById;
    private final Pattern addedPattern;
    private final Map<String, int[]> wordCache = new ConcurrentHashMap<>();

    public Qwen3Tokenizer(Map<String, Integer> vocab, List<String[]> mergePairs, List<AddedToken> addedTokens) {
        this.vocab = vocab;
        int size = vocab.values().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
        for (AddedToken t : addedTokens) {
            size = Math.max(size, t.id() + 1);
        }
        idToToken = new String[size];
        vocab.forEach((token, id) -> idToToken[id] = token);
        addedById = new AddedToken[size];
        for (AddedToken t : addedTokens) {
            added.put(t.content(), t);
            addedById[t.id()] = t;
            idToToken[t.id()] = t.content();
        }
        merges = new HashMap<>(mergePairs.size() * 2);
        for (int rank = 0; rank < mergePairs.size(); rank++) {
            String[] p = mergePairs.get(rank);
            Integer a = vocab.get(p[0]), b = vocab.get(p[1]), merged = vocab.get(p[0] + p[1]);
            if (a != null && b != null && merged != null) {
                merges.putIfAbsent(pairKey(a, b), ((long) rank << 32) | merged);
            }
        }
        addedPattern = addedTokens.isEmpty() ? null : Pattern.compile(addedTokens.stream()
                .map(AddedToken::content)
                .sorted(Comparator.comparingInt(String::length).reversed())
                .map(Pattern::quote)
                .reduce((x, y) -> x + "|" + y).orElseThrow());
    }

    /** Loads {@code tokenizer.json} (Hugging Face tokenizers format). */
    public static Qwen3Tokenizer load(Path tokenizerJson) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readAllBytes(tokenizerJson));
        } catch (IOException e) {
            throw new IllegalArgumentException(tokenizerJson + ": cannot read tokenizer (" + e.getMessage() + ")", e);
        }
        JsonNode model = root.path("model");
        if (!"BPE".equals(model.path("type").asText())) {
            throw new IllegalArgumentException(tokenizerJson + ": model.type is '" + model.path("type").asText() + "', expected 'BPE'");
        }
        Map<String, Integer> vocab = new HashMap<>(200_000);
        model.path("vocab").properties().forEach(e -> vocab.put(e.getKey(), e.getValue().asInt()));
        List<String[]> merges = new ArrayList<>();
        for (JsonNode m : model.path("merges")) {
            // Older files store "a b", newer ones ["a", "b"].
            merges.add(m.isArray() ? new String[] {m.get(0).asText(), m.get(1).asText()} : m.asText().split(" ", 2));
        }
        List<AddedToken> addedTokens = new ArrayList<>();
        for (JsonNode t : root.path("added_tokens")) {
            addedTokens.add(new AddedToken(t.path("id").asInt(), t.path("content").asText(), t.path("special").asBoolean()));
        }
        return new Qwen3Tokenizer(vocab, merges, addedTokens);
    }

    public int vocabSize() {
        return idToToken.length;
    }

    /** The id of a vocabulary or added token spelled exactly so, or -1. */
    public int tokenId(String token) {
        AddedToken a = added.get(token);
        if (a != null) {
            return a.id();
        }
        return vocab.getOrDefault(token, -1);
    }

    public boolean isSpecial(int id) {
        return id >= 0 && id < addedById.length && addedById[id] != null && addedById[id].special();
    }

    public int[] encode(String text) {
        List<Integer> ids = new ArrayList<>();
        int last = 0;
        if (addedPattern != null) {
            Matcher m = addedPattern.matcher(text);
            while (m.find()) {
                encodeOrdinary(text.substring(last, m.start()), ids);
                ids.add(added.get(m.group()).id());
                last = m.end();
            }
        }
        encodeOrdinary(text.substring(last), ids);
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    private void encodeOrdinary(String text, List<Integer> ids) {
        if (text.isEmpty()) {
            return;
        }
        Matcher m = PRE_TOKENIZE.matcher(Normalizer.normalize(text, Normalizer.Form.NFC));
        while (m.find()) {
            for (int id : wordCache.computeIfAbsent(m.group(), this::bpe)) {
                ids.add(id);
            }
        }
    }

    private int[] bpe(String word) {
        String spelled = ByteLevel.encode(word.getBytes(StandardCharsets.UTF_8));
        Integer whole = vocab.get(spelled);
        if (whole != null) {
            return new int[] {whole};
        }
        int n = spelled.length();
        int[] parts = new int[n];
        for (int i = 0; i < n; i++) {
            Integer id = vocab.get(String.valueOf(spelled.charAt(i)));
            if (id == null) {
                throw new IllegalStateException("byte-level symbol '" + spelled.charAt(i) + "' missing from the vocabulary");
            }
            parts[i] = id;
        }
        while (n > 1) {
            long best = Long.MAX_VALUE;
            int bestAt = -1;
            for (int i = 0; i + 1 < n; i++) {
                Long merge = merges.get(pairKey(parts[i], parts[i + 1]));
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
        return java.util.Arrays.copyOf(parts, n);
    }

    private static long pairKey(int a, int b) {
        return ((long) a << 32) | (b & 0xFFFFFFFFL);
    }

    /** Decodes ids to text; invalid UTF-8 becomes U+FFFD as in Hugging Face's errors="replace". */
    public String decode(int[] ids, boolean skipSpecial) {
        var bytes = new ByteArrayOutputStream();
        for (int id : ids) {
            appendBytes(id, skipSpecial, bytes);
        }
        return bytes.toString(StandardCharsets.UTF_8);
    }

    public String decode(int[] ids) {
        return decode(ids, false);
    }

    /** The raw bytes of one token (added tokens as their UTF-8 text). */
    void appendBytes(int id, boolean skipSpecial, ByteArrayOutputStream out) {
        if (id < 0 || id >= idToToken.length || idToToken[id] == null) {
            return; // padding rows of the embedding are never produced by the model; nothing to print
        }
        AddedToken a = addedById[id];
        if (a != null) {
            if (!(skipSpecial && a.special())) {
                out.writeBytes(a.content().getBytes(StandardCharsets.UTF_8));
            }
            return;
        }
        if (!ByteLevel.decode(idToToken[id], out)) {
            out.writeBytes(idToToken[id].getBytes(StandardCharsets.UTF_8));
        }
    }

    public StreamingDecoder streamingDecoder(boolean skipSpecial) {
        return new StreamingDecoder(this, skipSpecial);
    }
}
