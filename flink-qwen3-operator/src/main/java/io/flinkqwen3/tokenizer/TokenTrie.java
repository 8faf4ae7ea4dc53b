package io.flinkqwen3.tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The ordinary tokens of a vocabulary as a byte trie, stored flat in depth-first (pre-)order: node
 * i's children follow it, and {@link #subtreeEnd} says where its subtree ends. A walk over all
 * tokens against a byte automaton is then a single forward loop that skips a whole subtree as soon
 * as the automaton rejects its first byte ({@link #walk}).
 *
 * <p>Qwen3's 151,643 ordinary tokens give about 0.5 M nodes (a few MB). Added tokens ({@code
 * <think>}, {@code <|im_end|>} ...) are not in the trie: they are not text a grammar can match.
 */
public final class TokenTrie {
    /** Node 0 is the root (no byte, no token). */
    private final byte[] label;
    private final short[] depth;
    private final int[] subtreeEnd;
    private final int[] token;
    private final int nodes;
    private final int maxDepth;
    private final int vocabSize;

    private TokenTrie(byte[] label, short[] depth, int[] subtreeEnd, int[] token, int nodes, int maxDepth, int vocabSize) {
        this.label = label;
        this.depth = depth;
        this.subtreeEnd = subtreeEnd;
        this.token = token;
        this.nodes = nodes;
        this.maxDepth = maxDepth;
        this.vocabSize = vocabSize;
    }

    static TokenTrie of(Qwen3Tokenizer tokenizer) {
        List<byte[]> spellings = new ArrayList<>();
        List<Integer> ids = new ArrayList<>();
        for (int id = 0; id < tokenizer.vocabSize(); id++) {
            byte[] b = tokenizer.ordinaryTokenBytes(id);
            if (b != null && b.length > 0 && b.length < Short.MAX_VALUE) {
                spellings.add(b);
                ids.add(id);
            }
        }
        Integer[] order = new Integer[spellings.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Arrays.compareUnsigned(spellings.get(a), spellings.get(b)));
        // Sorted spellings share their prefix with the previous one: add only the rest, in pre-order.
        int capacity = 1 << 16;
        byte[] label = new byte[capacity];
        short[] depth = new short[capacity];
        int[] token = new int[capacity];
        int[] end = new int[capacity];
        int n = 1;
        token[0] = -1;
        int[] path = new int[Short.MAX_VALUE + 1]; // path[d]: the node at depth d on the current branch
        byte[] previous = new byte[0];
        int maxDepth = 0;
        for (int k : order) {
            byte[] s = spellings.get(k);
            int common = Arrays.mismatch(previous, s);
            common = common < 0 ? s.length : Math.min(common, Math.min(previous.length, s.length));
            for (int d = common; d < s.length; d++) {
                if (n == label.length) {
                    capacity *= 2;
                    label = Arrays.copyOf(label, capacity);
                    depth = Arrays.copyOf(depth, capacity);
                    token = Arrays.copyOf(token, capacity);
                    end = Arrays.copyOf(end, capacity);
                }
                label[n] = s[d];
                depth[n] = (short) (d + 1);
                token[n] = -1;
                path[d + 1] = n++;
            }
            token[path[s.length]] = ids.get(k);
            maxDepth = Math.max(maxDepth, s.length);
            previous = s;
        }
        // subtree end: the next node whose depth is not greater
        int[] stack = new int[maxDepth + 2];
        int top = 0;
        for (int i = 0; i < n; i++) {
            while (top > 0 && depth[stack[top - 1]] >= depth[i]) {
                end[stack[--top]] = i;
            }
            stack[top++] = i;
        }
        while (top > 0) {
            end[stack[--top]] = n;
        }
        return new TokenTrie(Arrays.copyOf(label, n), Arrays.copyOf(depth, n), Arrays.copyOf(end, n),
                Arrays.copyOf(token, n), n, maxDepth, tokenizer.vocabSize());
    }

    /** A byte automaton: the state after a byte, or a negative number when the byte is rejected. */
    @FunctionalInterface
    public interface Automaton {
        int step(int state, int b);
    }

    /** Receives each token the automaton accepts as a whole, with the state after its last byte. */
    @FunctionalInterface
    public interface Visitor {
        void accept(int token, int endState);
    }

    /**
     * Runs the automaton from {@code start} over every token's bytes, sharing the work of common
     * prefixes, and reports each token it does not reject. Visits only the nodes whose prefix the
     * automaton accepts.
     */
    public void walk(Automaton automaton, int start, Visitor visitor) {
        int[] stateAt = new int[maxDepth + 1];
        stateAt[0] = start;
        int i = 1;
        while (i < nodes) {
            int d = depth[i];
            int s = automaton.step(stateAt[d - 1], label[i] & 0xFF);
            if (s < 0) {
                i = subtreeEnd[i];
                continue;
            }
            stateAt[d] = s;
            if (token[i] >= 0) {
                visitor.accept(token[i], s);
            }
            i++;
        }
    }

    public int nodes() {
        return nodes;
    }

    /** The tokenizer's id range: tokens are in [0, vocabSize). */
    public int vocabSize() {
        return vocabSize;
    }
}
