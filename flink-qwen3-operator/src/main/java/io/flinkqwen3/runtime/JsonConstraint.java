package io.flinkqwen3.runtime;

import io.flinkqwen3.tokenizer.Qwen3Tokenizer;
import io.flinkqwen3.tokenizer.TokenTrie;
import java.util.Arrays;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A {@link JsonSchemaGrammar} applied to a tokenizer's vocabulary: which tokens may come next in
 * each grammar state, so that decoding can only write JSON that validates against the schema.
 *
 * <p>A token spans several grammar states (byte-level BPE: {@code "},"} is one token). The allowed
 * set of a state is found by walking the {@link TokenTrie} against the automaton (shared prefixes
 * walked once, rejected prefixes skipped with their subtree) and is cached per state, so each
 * state costs one walk (a few ms for a string state, where nearly every token is allowed) for the
 * life of the constraint; a decode step then only applies the cached mask.
 *
 * <p>Termination: {@link #mask(int, int)} takes the tokens still allowed to the request. When they
 * get short, only tokens after which the shortest completion (in bytes, each byte being a token)
 * plus the end token still fit are allowed. A request with at least {@link #minTokens()} tokens
 * therefore always ends with a complete text; one with fewer is refused before it runs. End
 * tokens are allowed exactly in accepting states.
 *
 * <p>Thread-safe: masks are cached in a concurrent map.
 */
public final class JsonConstraint {
    private final JsonSchemaGrammar grammar;
    private final TokenTrie trie;
    private final Qwen3Tokenizer tokenizer;
    private final int[] stop;
    /** (state << 32 | cap) -> mask; cap = Integer.MAX_VALUE for the unrestricted mask. */
    private final ConcurrentHashMap<Long, TokenMask> masks = new ConcurrentHashMap<>();
    /** Per state: the largest shortest-completion distance after any allowed token (-1: not computed yet). */
    private final int[] worst;

    public JsonConstraint(JsonSchemaGrammar grammar, Qwen3Tokenizer tokenizer, Set<Integer> stopTokens) {
        this.grammar = grammar;
        this.tokenizer = tokenizer;
        this.trie = tokenizer.trie();
        this.stop = stopTokens.stream().mapToInt(Integer::intValue).sorted().toArray();
        this.worst = new int[grammar.states()];
        Arrays.fill(worst, -1);
    }

    public JsonSchemaGrammar grammar() {
        return grammar;
    }

    public int start() {
        return grammar.start();
    }

    /** The fewest tokens of an answer: the shortest JSON text that validates, plus the end token. */
    public int minTokens() {
        return grammar.distance(grammar.start()) + 1;
    }

    /** The state after a token, or -1 when the grammar does not allow it there (end tokens leave the state as is). */
    public int advance(int state, int token) {
        if (Arrays.binarySearch(stop, token) >= 0) {
            return grammar.accepting(state) ? state : -1;
        }
        byte[] bytes = tokenizer.ordinaryTokenBytes(token);
        return bytes == null ? -1 : grammar.walk(state, bytes);
    }

    public boolean accepting(int state) {
        return grammar.accepting(state);
    }

    /**
     * The tokens allowed in a state when {@code remaining} tokens (this one included) may still be
     * generated: each must leave room for the shortest completion after it plus the end token.
     */
    public TokenMask mask(int state, int remaining) {
        int cap = remaining - 2; // after this token: remaining - 1 left, one of them for the end token
        TokenMask full = masks.computeIfAbsent(key(state, Integer.MAX_VALUE), k -> build(state, Integer.MAX_VALUE));
        if (cap >= worst[state]) {
            return full;
        }
        return masks.computeIfAbsent(key(state, cap), k -> build(state, cap));
    }

    private static long key(int state, int cap) {
        return ((long) state << 32) | (cap & 0xFFFFFFFFL);
    }

    private TokenMask build(int state, int cap) {
        boolean[] allowed = new boolean[trie.vocabSize()];
        int[] worstSeen = {0};
        trie.walk(grammar::step, state, (token, end) -> {
            int d = grammar.distance(end);
            if (d <= cap) { // an end state that cannot complete has distance MAX_VALUE: never allowed
                allowed[token] = true;
                worstSeen[0] = Math.max(worstSeen[0], d);
            }
        });
        if (cap == Integer.MAX_VALUE) {
            worst[state] = worstSeen[0];
        }
        if (grammar.accepting(state)) {
            for (int t : stop) {
                if (t < allowed.length) {
                    allowed[t] = true;
                }
            }
        }
        return TokenMask.of(allowed);
    }

    /** Masks built so far (for tests and metrics). */
    public int cachedMasks() {
        return masks.size();
    }
}
