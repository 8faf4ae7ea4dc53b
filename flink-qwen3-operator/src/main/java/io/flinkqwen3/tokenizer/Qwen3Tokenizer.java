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
import java.util.Arrays;
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

    /** Ids may leave gaps, but not beyond this many above the number of tokens (bounds the id tables). */
    static final int MAX_ID_GAP = 65_536;
    /** tokenizer.json files are ~11 MB; reading a larger one would only exhaust the heap. */
    static final long MAX_TOKENIZER_JSON_BYTES = 256L << 20;
    /** Words longer than this are tokenized every time instead of being cached (as Hugging Face tokenizers does). */
    static final int MAX_CACHED_WORD_CHARS = 64;
    /** Entries per cache generation: the cache holds at most two generations. */
    static final int CACHE_GENERATION_ENTRIES = 16_384;

    private final Map<String, Integer> vocab;
    private final String[] idToToken;
    /** (left id, right id) -> rank << 32 | merged id. */
    private final Map<Long, Long> merges;
    /** The id of the single-byte token of each byte value. */
    private final int[] byteIds = new int[256];
    private final Map<String, AddedToken> added = new HashMap<>();
    private final AddedToken[] addedById;
    private final Pattern addedPattern;
    private final WordCache wordCache = new WordCache(CACHE_GENERATION_ENTRIES);
    /** The longest token in characters: byte-level symbols (one per byte) or an added token's text. */
    private final int longestToken;
    private volatile TokenTrie trie;

    /**
     * Builds a tokenizer from its vocabulary, merges (in rank order) and added tokens. Throws
     * {@link IllegalArgumentException} naming the offending entry when an id is negative or far
     * beyond the number of tokens, a merge names a token missing from the vocabulary, an added
     * token is empty, or a byte has no single-byte token.
     */
    public Qwen3Tokenizer(Map<String, Integer> vocab, List<String[]> mergePairs, List<AddedToken> addedTokens) {
        this.vocab = vocab;
        long idLimit = (long) vocab.size() + addedTokens.size() + MAX_ID_GAP;
        int size = 0;
        for (var e : vocab.entrySet()) {
            size = Math.max(size, checkId(e.getValue(), idLimit, "vocab token '" + e.getKey() + "'") + 1);
        }
        for (AddedToken t : addedTokens) {
            size = Math.max(size, checkId(t.id(), idLimit, "added token '" + t.content() + "'") + 1);
            if (t.content() == null || t.content().isEmpty()) {
                throw new IllegalArgumentException("added token " + t.id() + " has empty content");
            }
        }
        idToToken = new String[size];
        vocab.forEach((token, id) -> idToToken[id] = token);
        addedById = new AddedToken[size];
        for (AddedToken t : addedTokens) {
            added.put(t.content(), t);
            addedById[t.id()] = t;
            idToToken[t.id()] = t.content();
        }
        for (int b = 0; b < 256; b++) {
            Integer id = vocab.get(String.valueOf(ByteLevel.spell(b)));
            if (id == null) {
                throw new IllegalArgumentException(String.format(
                        "the vocabulary has no token for byte 0x%02x (byte-level symbol '%c'): text containing it could not be encoded",
                        b, ByteLevel.spell(b)));
            }
            byteIds[b] = id;
        }
        merges = new HashMap<>(mergePairs.size() * 2);
        for (int rank = 0; rank < mergePairs.size(); rank++) {
            String[] p = mergePairs.get(rank);
            if (p == null || p.length != 2 || p[0] == null || p[1] == null || p[0].isEmpty() || p[1].isEmpty()) {
                throw new IllegalArgumentException("merges[" + rank + "] is " + (p == null ? null : Arrays.toString(p))
                        + ", expected two non-empty tokens");
            }
            Integer a = vocab.get(p[0]), b = vocab.get(p[1]), merged = vocab.get(p[0] + p[1]);
            String missing = a == null ? p[0] : b == null ? p[1] : merged == null ? p[0] + p[1] : null;
            if (missing != null) {
                throw new IllegalArgumentException("merges[" + rank + "] ('" + p[0] + "', '" + p[1] + "'): token '"
                        + missing + "' is not in the vocabulary");
            }
            merges.putIfAbsent(pairKey(a, b), ((long) rank << 32) | merged);
        }
        int longest = 1;
        for (String token : vocab.keySet()) {
            longest = Math.max(longest, token.length());
        }
        for (AddedToken t : addedTokens) {
            longest = Math.max(longest, t.content().length());
        }
        longestToken = longest;
        addedPattern = addedTokens.isEmpty() ? null : Pattern.compile(addedTokens.stream()
                .map(AddedToken::content)
                .sorted(Comparator.comparingInt(String::length).reversed())
                .map(Pattern::quote)
                .reduce((x, y) -> x + "|" + y).orElseThrow());
    }

    private static int checkId(Integer id, long limit, String what) {
        if (id == null || id < 0 || id >= limit) {
            throw new IllegalArgumentException(what + " has id " + id + ", expected 0 <= id < " + limit
                    + " (the number of tokens plus " + MAX_ID_GAP + ")");
        }
        return id;
    }

    /**
     * Loads {@code tokenizer.json} (Hugging Face tokenizers format). Every malformed field is an
     * {@link IllegalArgumentException} naming the file and the field.
     */
    public static Qwen3Tokenizer load(Path tokenizerJson) {
        JsonNode root;
        try {
            long bytes = Files.size(tokenizerJson);
            if (bytes > MAX_TOKENIZER_JSON_BYTES) {
                throw new IllegalArgumentException(tokenizerJson + ": " + bytes + " bytes, a tokenizer.json larger than "
                        + MAX_TOKENIZER_JSON_BYTES + " bytes is not accepted");
            }
            root = new ObjectMapper().readTree(Files.readAllBytes(tokenizerJson));
        } catch (IOException e) {
            throw new IllegalArgumentException(tokenizerJson + ": cannot read tokenizer (" + e.getMessage() + ")", e);
        }
        if (root == null || !root.isObject()) {
            throw new IllegalArgumentException(tokenizerJson + ": expected a JSON object");
        }
        JsonNode model = root.path("model");
        if (!"BPE".equals(model.path("type").asText())) {
            throw new IllegalArgumentException(tokenizerJson + ": model.type is '" + model.path("type").asText() + "', expected 'BPE'");
        }
        JsonNode vocabNode = model.path("vocab"), mergesNode = model.path("merges"), addedNode = root.path("added_tokens");
        if (!vocabNode.isObject() || vocabNode.isEmpty()) {
            throw new IllegalArgumentException(tokenizerJson + ": model.vocab is " + brief(vocabNode)
                    + ", expected an object of token -> id");
        }
        if (!mergesNode.isArray() && !mergesNode.isMissingNode()) {
            throw new IllegalArgumentException(tokenizerJson + ": model.merges is " + brief(mergesNode) + ", expected a list");
        }
        if (!addedNode.isArray() && !addedNode.isMissingNode() && !addedNode.isNull()) {
            throw new IllegalArgumentException(tokenizerJson + ": added_tokens is " + brief(addedNode) + ", expected a list");
        }
        long idLimit = (long) vocabNode.size() + addedNode.size() + MAX_ID_GAP;
        Map<String, Integer> vocab = new HashMap<>(vocabNode.size() * 2);
        Map<Integer, String> seen = new HashMap<>(vocabNode.size() * 2);
        for (var e : vocabNode.properties()) {
            int id = jsonId(e.getValue(), idLimit, tokenizerJson, "model.vocab['" + e.getKey() + "']");
            String other = seen.putIfAbsent(id, e.getKey());
            if (other != null) {
                throw new IllegalArgumentException(tokenizerJson + ": model.vocab gives id " + id + " to both '" + other
                        + "' and '" + e.getKey() + "'");
            }
            vocab.put(e.getKey(), id);
        }
        List<String[]> merges = new ArrayList<>(mergesNode.size());
        for (int i = 0; i < mergesNode.size(); i++) {
            JsonNode m = mergesNode.get(i);
            // Older files store "a b", newer ones ["a", "b"].
            String[] pair = m.isTextual() ? m.asText().split(" ", -1)
                    : m.isArray() && m.size() == 2 && m.get(0).isTextual() && m.get(1).isTextual()
                    ? new String[] {m.get(0).asText(), m.get(1).asText()} : null;
            if (pair == null || pair.length != 2 || pair[0].isEmpty() || pair[1].isEmpty()) {
                throw new IllegalArgumentException(tokenizerJson + ": model.merges[" + i + "] is " + brief(m)
                        + ", expected \"left right\" or [\"left\", \"right\"]");
            }
            merges.add(pair);
        }
        List<AddedToken> addedTokens = new ArrayList<>();
        for (int i = 0; i < addedNode.size(); i++) {
            JsonNode t = addedNode.get(i);
            String field = "added_tokens[" + i + "]";
            int id = jsonId(t.path("id"), idLimit, tokenizerJson, field + ".id");
            JsonNode content = t.path("content");
            if (!content.isTextual() || content.asText().isEmpty()) {
                throw new IllegalArgumentException(tokenizerJson + ": " + field + ".content is " + brief(content)
                        + ", expected a non-empty string");
            }
            addedTokens.add(new AddedToken(id, content.asText(), t.path("special").asBoolean()));
        }
        try {
            return new Qwen3Tokenizer(vocab, merges, addedTokens);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(tokenizerJson + ": model." + e.getMessage(), e);
        }
    }

    private static int jsonId(JsonNode v, long limit, Path file, String field) {
        if (!v.canConvertToInt() || !v.isIntegralNumber() || v.asInt() < 0 || v.asInt() >= limit) {
            throw new IllegalArgumentException(file + ": " + field + " is " + brief(v) + ", expected an integer id in [0, "
                    + limit + ") (the number of tokens plus " + MAX_ID_GAP + ")");
        }
        return v.asInt();
    }

    private static String brief(JsonNode v) {
        if (v == null || v.isMissingNode()) {
            return "missing";
        }
        String s = v.toString();
        return s.length() > 80 ? s.substring(0, 77) + "..." : s;
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
        return encode(text, Integer.MAX_VALUE);
    }

    /**
     * The ids of text, or null as soon as it is certain to have more than maxTokens: the work is
     * bounded by maxTokens, not by the length of the text. Text longer than {@link #maxCharsFor}
     * is refused without being looked at; otherwise tokenizing stops once the ids counted so far
     * plus a lower bound for the next word (its length over the longest token's) exceed maxTokens,
     * so at most about maxTokens times the longest token's bytes are ever merged.
     */
    public int[] encode(String text, int maxTokens) {
        if (text.length() > maxCharsFor(maxTokens)) {
            return null;
        }
        var ids = new IdBuffer(maxTokens);
        int last = 0;
        if (addedPattern != null) {
            Matcher m = addedPattern.matcher(text);
            while (m.find()) {
                if (!encodeOrdinary(text.substring(last, m.start()), ids) || !ids.add(added.get(m.group()).id())) {
                    return null;
                }
                last = m.end();
            }
        }
        return encodeOrdinary(text.substring(last), ids) ? ids.toArray() : null;
    }

    /**
     * The most characters a text of maxTokens tokens can have: each token stands for at most
     * {@link #longestTokenChars()} characters of the NFC-normalized text, and NFC composes at most 4
     * characters into one. Longer text certainly has more tokens.
     */
    public long maxCharsFor(int maxTokens) {
        return (long) maxTokens * longestToken * 4;
    }

    /** The longest token's length in characters (byte-level symbols, or an added token's text). */
    public int longestTokenChars() {
        return longestToken;
    }

    /** False when the ids would exceed the buffer's limit (the rest is then not tokenized). */
    private boolean encodeOrdinary(String text, IdBuffer ids) {
        if (text.isEmpty()) {
            return true;
        }
        Matcher m = PRE_TOKENIZE.matcher(Normalizer.normalize(text, Normalizer.Form.NFC));
        while (m.find()) {
            // a word of n characters (UTF-8 bytes >= n) has at least n / longestToken tokens
            int chars = m.end() - m.start();
            if (!ids.hasRoomFor((chars + longestToken - 1) / longestToken)) {
                return false;
            }
            for (int id : wordIds(m.group())) {
                if (!ids.add(id)) {
                    return false;
                }
            }
        }
        return true;
    }

    /** Token ids up to a limit. */
    private static final class IdBuffer {
        private final int limit;
        private int[] ids = new int[64];
        private int size;

        IdBuffer(int limit) {
            this.limit = limit;
        }

        boolean hasRoomFor(int more) {
            return (long) size + more <= limit;
        }

        boolean add(int id) {
            if (size >= limit) {
                return false;
            }
            if (size == ids.length) {
                ids = Arrays.copyOf(ids, (int) Math.min((long) size * 2, Integer.MAX_VALUE - 8));
            }
            ids[size++] = id;
            return true;
        }

        int[] toArray() {
            return Arrays.copyOf(ids, size);
        }
    }

    private int[] wordIds(String word) {
        int[] ids = wordCache.get(word);
        if (ids == null) {
            ids = bpe(word);
            if (word.length() <= MAX_CACHED_WORD_CHARS) {
                wordCache.put(word, ids);
            }
        }
        return ids;
    }

    /** Entries in the per-word cache (for tests: it is bounded). */
    int cachedWords() {
        return wordCache.size();
    }

    /**
     * Byte-level BPE of one pre-tokenized word in O(n log n): the symbols form a linked list and a
     * heap holds (rank, position) of every adjacent pair that has a merge, as Hugging Face
     * tokenizers does. Each step merges the lowest rank, leftmost first; entries made stale by an
     * earlier merge are skipped when they surface.
     */
    int[] bpe(String word) {
        byte[] bytes = word.getBytes(StandardCharsets.UTF_8);
        Integer whole = vocab.get(ByteLevel.encode(bytes));
        if (whole != null) {
            return new int[] {whole};
        }
        int n = bytes.length;
        int[] ids = new int[n], prev = new int[n], next = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = byteIds[bytes[i] & 0xFF];
            prev[i] = i - 1;
            next[i] = i + 1;
        }
        var heap = new LongHeap(n);
        for (int i = 0; i + 1 < n; i++) {
            pushPair(heap, ids, i, ids[i + 1]);
        }
        while (!heap.isEmpty()) {
            long top = heap.pop();
            int i = (int) top, j = next[i];
            if (ids[i] < 0 || j >= n) {
                continue; // merged away, or now the last symbol
            }
            Long merge = merges.get(pairKey(ids[i], ids[j]));
            if (merge == null || (merge >>> 32) != (top >>> 32)) {
                continue; // stale: a neighbour changed since this pair was queued
            }
            ids[i] = (int) merge.longValue();
            ids[j] = -1;
            next[i] = next[j];
            if (next[i] < n) {
                prev[next[i]] = i;
                pushPair(heap, ids, i, ids[next[i]]);
            }
            if (prev[i] >= 0) {
                pushPair(heap, ids, prev[i], ids[i]);
            }
        }
        int count = 0;
        for (int i = 0; i < n; i = next[i]) {
            ids[count++] = ids[i];
        }
        return Arrays.copyOf(ids, count);
    }

    private void pushPair(LongHeap heap, int[] ids, int left, int rightId) {
        Long merge = merges.get(pairKey(ids[left], rightId));
        if (merge != null) {
            heap.push((merge >>> 32) << 32 | left); // rank, then position: lowest rank, leftmost first
        }
    }

    /** A binary min-heap of longs. */
    private static final class LongHeap {
        private long[] items;
        private int size;

        LongHeap(int capacity) {
            items = new long[Math.max(capacity, 4)];
        }

        boolean isEmpty() {
            return size == 0;
        }

        void push(long v) {
            if (size == items.length) {
                items = Arrays.copyOf(items, size * 2);
            }
            int i = size++;
            while (i > 0) {
                int parent = (i - 1) >>> 1;
                if (items[parent] <= v) {
                    break;
                }
                items[i] = items[parent];
                i = parent;
            }
            items[i] = v;
        }

        long pop() {
            long top = items[0], last = items[--size];
            int i = 0;
            while (true) {
                int child = 2 * i + 1;
                if (child >= size) {
                    break;
                }
                if (child + 1 < size && items[child + 1] < items[child]) {
                    child++;
                }
                if (last <= items[child]) {
                    break;
                }
                items[i] = items[child];
                i = child;
            }
            items[i] = last;
            return top;
        }
    }

    /**
     * A bounded cache of word ids in two generations: lookups hit either, inserts go to the young
     * one, and when the young one is full it becomes the old one (the previous old one is dropped).
     * At most two generations of entries, each of a word of at most {@link #MAX_CACHED_WORD_CHARS}.
     */
    private static final class WordCache {
        private final int generationEntries;
        private volatile ConcurrentHashMap<String, int[]> young = new ConcurrentHashMap<>();
        private volatile ConcurrentHashMap<String, int[]> old = new ConcurrentHashMap<>();

        WordCache(int generationEntries) {
            this.generationEntries = generationEntries;
        }

        int[] get(String word) {
            int[] ids = young.get(word);
            if (ids == null) {
                ids = old.get(word);
                if (ids != null) {
                    put(word, ids); // still in use: keep it through the next rotation
                }
            }
            return ids;
        }

        void put(String word, int[] ids) {
            var current = young;
            if (current.size() >= generationEntries) {
                synchronized (this) {
                    if (young == current) {
                        old = current;
                        young = new ConcurrentHashMap<>();
                    }
                }
            }
            young.put(word, ids);
        }

        int size() {
            return young.size() + old.size();
        }
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

    /**
     * The bytes of an ordinary vocabulary token (its byte-level spelling decoded), or null for an
     * added token (special or not: {@code <think>}, {@code <|im_end|>} ...) and for ids without a token.
     */
    public byte[] ordinaryTokenBytes(int id) {
        if (id < 0 || id >= idToToken.length || idToToken[id] == null || addedById[id] != null) {
            return null;
        }
        var out = new ByteArrayOutputStream(idToToken[id].length());
        return ByteLevel.decode(idToToken[id], out) ? out.toByteArray() : null;
    }

    /** The byte trie of the ordinary tokens, built on first use (for constrained decoding). */
    public TokenTrie trie() {
        TokenTrie t = trie;
        if (t == null) {
            synchronized (this) {
                if (trie == null) {
                    trie = TokenTrie.of(this);
                }
                t = trie;
            }
        }
        return t;
    }

    public StreamingDecoder streamingDecoder(boolean skipSpecial) {
        return new StreamingDecoder(this, skipSpecial);
    }
}
