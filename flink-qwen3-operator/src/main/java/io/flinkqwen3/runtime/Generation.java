package io.flinkqwen3.runtime;

import io.flinkqwen3.tokenizer.ChatTemplate;
import io.flinkqwen3.tokenizer.Qwen3Tokenizer;
import io.flinkqwen3.tokenizer.StreamingDecoder;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * One request's state machine: prompt -> (thinking -> [budget early-stop text]) -> answer -> done.
 * It says which tokens the model must consume next and takes each sampled token; it does no math.
 */
final class Generation {
    /** Qwen's early-stop text (QWEN3-SPEC.md section 6, the form Qwen's example code ships). */
    static final String EARLY_STOP_TEXT =
            "\n\nConsidering the limited time by the user, I have to give the solution based on the thinking directly now.\n</think>\n\n";

    private final GenerationRequest request;
    private final SpecialTokens special;
    private final Qwen3Tokenizer tokenizer;
    private final Sampler sampler;
    /** Null until the engine admits the request and gives it a place in the KV cache. */
    KvCache cache;
    final int[] prompt;
    final long deadlineNanos;
    final long submittedNanos;

    private int[] output = new int[64];
    private int outputLength;
    private int[] pending;
    private int pendingFed;

    private boolean thinking;
    private int thinkingTokens;
    private boolean budgetExhausted;
    private final StringBuilder answer = new StringBuilder();
    private final StreamingDecoder answerDecoder;
    private FinishReason finish;
    private boolean stoppedByString;
    /** The prompt pre-fills an open think block (as Qwen3-Thinking-2507's template does). */
    private final boolean thinkOpenInPrompt;

    /** Label scoring: each label's token ids (null: free generation) and the tokens the template renders after {@code </think>}. */
    private int[][] labels;
    private int[] afterThinkClose;
    /** Summed log-probability of each label's tokens so far; set once the answer would start. */
    private double[] labelScores;
    /** Labels of two or more tokens still to run (as forks of this sequence), from this index on. */
    private int nextLabel;

    /** The ids that steer a generation: end-of-turn tokens and the think tags (-1 when the vocabulary has none). */
    record SpecialTokens(Set<Integer> stop, int thinkOpen, int thinkClose, int[] earlyStop) {}

    Generation(GenerationRequest request, int[] prompt, KvCache cache, SpecialTokens special, Qwen3Tokenizer tokenizer,
               SamplingParams sampling, long submittedNanos, long deadlineNanos) {
        this.request = request;
        this.prompt = prompt;
        this.cache = cache;
        this.special = special;
        this.tokenizer = tokenizer;
        this.sampler = new Sampler(sampling);
        this.submittedNanos = submittedNanos;
        this.deadlineNanos = deadlineNanos;
        this.pending = prompt;
        this.thinkOpenInPrompt = lastIndexOf(prompt, special.thinkOpen()) > lastIndexOf(prompt, special.thinkClose());
        this.thinking = request.thinks() && special.thinkOpen() >= 0;
        this.answerDecoder = tokenizer == null ? null : tokenizer.streamingDecoder(true);
    }

    GenerationRequest request() {
        return request;
    }

    /** Gives the request its cache; prompt tokens the cache already holds (a cached prefix) are not run again. */
    void attach(KvCache admitted) {
        this.cache = admitted;
        this.pendingFed = admitted.length();
    }

    boolean done() {
        return finish != null;
    }

    /** Tokens still to be run through the model before the next sample. */
    int pendingCount() {
        return pending.length - pendingFed;
    }

    boolean prefilling() {
        return outputLength == 0 && pendingFed < pending.length;
    }

    /** The next {@code count} pending tokens; they are considered fed after this call. */
    int[] takePending(int count) {
        int[] slice = Arrays.copyOfRange(pending, pendingFed, pendingFed + count);
        pendingFed += count;
        return slice;
    }

    int nextPosition() {
        return cache.length();
    }

    int generatedTokens() {
        return outputLength;
    }

    /**
     * Makes this a classification: instead of sampling an answer, the logits where the answer would
     * start score every label ({@code labelTokens}: each label's ids); thinking, if any, comes first
     * and ends with {@code </think>} and {@code afterThinkClose} (the template's "\n\n").
     */
    void classify(int[][] labelTokens, int[] afterThinkClose) {
        this.labels = labelTokens;
        this.afterThinkClose = afterThinkClose;
    }

    /** Whether the prompt (and thinking) are done and labels are being scored. */
    boolean scoring() {
        return labelScores != null && finish == null;
    }

    /** The next label to run as a fork (two or more tokens), or -1 when none is left. */
    int nextLabelToRun() {
        while (nextLabel < labels.length && labels[nextLabel].length < 2) {
            nextLabel++;
        }
        return nextLabel < labels.length ? nextLabel : -1;
    }

    int[] labelTokens(int label) {
        return labels[label];
    }

    /** Marks label {@code label} (from {@link #nextLabelToRun}) as running in the current step. */
    void labelTaken(int label) {
        nextLabel = label + 1;
    }

    /**
     * Adds the log-probabilities of label tokens 1.. of {@code label}: rows[j] of {@code logits}
     * ([rows, vocab] from row first) are the logits after its token j.
     */
    void scoreLabel(int label, float[] logits, int firstRow, int vocab) {
        int[] tokens = labels[label];
        for (int j = 1; j < tokens.length; j++) {
            int off = (firstRow + j - 1) * vocab;
            labelScores[label] += logits[off + tokens[j]] - logSumExp(logits, off, vocab);
        }
    }

    /** Once no label is left to run and every label's score is complete: the result is ready. */
    void labelsScored() {
        if (nextLabelToRun() < 0) {
            finish(FinishReason.STOP);
        }
    }

    /** The answer would start after these logits: every label's first token is scored from them. */
    private void startScoring(float[] logits, int off, int vocab) {
        double logZ = logSumExp(logits, off, vocab);
        labelScores = new double[labels.length];
        for (int i = 0; i < labels.length; i++) {
            labelScores[i] = logits[off + labels[i][0]] - logZ;
        }
        pending = new int[0];
        pendingFed = 0;
        labelsScored();
    }

    /** log(sum(exp(x))) over x[off, off + n), in double. */
    static double logSumExp(float[] x, int off, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, x[off + i]);
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += Math.exp(x[off + i] - max);
        }
        return max + Math.log(sum);
    }

    /** Samples from the logits after the last fed token and advances the state machine. */
    void sampleFrom(float[] logits, int off, int vocab) {
        if (labels != null && !thinking) {
            startScoring(logits, off, vocab);
            return;
        }
        int token = sampler.sample(logits, off, vocab);
        if (labels != null && outputLength == 0 && !thinkOpenInPrompt && token != special.thinkOpen()) {
            thinking = false; // the model would answer without a think block: the labels start here
            startScoring(logits, off, vocab);
            return;
        }
        if (labels != null && (special.stop().contains(token) || token == special.thinkClose()
                || outputLength + 1 >= request.maxTokens() || prompt.length + outputLength + 2 + afterThinkClose.length >= cache.maxPositions())) {
            closeThinking(special.stop().contains(token) ? -1 : token);
            return;
        }
        append(token);
        pending = new int[] {token};
        pendingFed = 0;
        if (special.stop().contains(token)) {
            finish(budgetExhausted ? FinishReason.BUDGET : FinishReason.STOP);
            return;
        }
        if (thinking) {
            onThinkingToken(token);
        } else {
            onAnswerToken(token);
        }
        if (finish == null && (outputLength >= request.maxTokens() || prompt.length + outputLength >= cache.maxPositions())) {
            finish(FinishReason.LENGTH);
        }
    }

    /**
     * Ends the thinking of a classification: {@code token} (unless -1: an end of turn, dropped),
     * then {@code </think>} if the token was not that, and the template's text after it; the labels
     * are scored after them.
     */
    private void closeThinking(int token) {
        int[] close = token == special.thinkClose() ? new int[] {token}
                : token >= 0 ? new int[] {token, special.thinkClose()} : new int[] {special.thinkClose()};
        pending = new int[close.length + afterThinkClose.length];
        System.arraycopy(close, 0, pending, 0, close.length);
        System.arraycopy(afterThinkClose, 0, pending, close.length, afterThinkClose.length);
        pendingFed = 0;
        for (int t : pending) {
            append(t);
        }
        thinkingTokens += pending.length;
        thinking = false;
    }

    private void onThinkingToken(int token) {
        if (outputLength == 1 && !thinkOpenInPrompt && token != special.thinkOpen()) {
            thinking = false; // the model answered without a think block
            onAnswerToken(token);
            return;
        }
        thinkingTokens++;
        if (token == special.thinkClose()) {
            thinking = false;
        } else if (request.thinkingBudget() > 0 && thinkingTokens >= request.thinkingBudget()) {
            // Budget spent without </think>: append Qwen's early-stop text and let the model answer.
            int[] forced = special.earlyStop();
            pending = new int[1 + forced.length];
            pending[0] = token;
            System.arraycopy(forced, 0, pending, 1, forced.length);
            for (int t : forced) {
                append(t);
            }
            thinkingTokens += forced.length;
            budgetExhausted = true;
            thinking = false;
        }
    }

    private void onAnswerToken(int token) {
        if (answerDecoder == null) {
            return;
        }
        int before = answer.length();
        answer.append(answerDecoder.accept(token));
        for (String stop : request.stopStrings()) {
            int at = answer.indexOf(stop, Math.max(0, before - stop.length()));
            if (at >= 0) {
                answer.setLength(at);
                stoppedByString = true;
                finish(FinishReason.STOP);
                return;
            }
        }
    }

    private void append(int token) {
        if (outputLength == output.length) {
            output = Arrays.copyOf(output, output.length * 2);
        }
        output[outputLength++] = token;
        sampler.observe(token);
    }

    void finish(FinishReason reason) {
        if (finish == null) {
            finish = reason;
        }
    }

    GenerationResult result() {
        int[] tokens = Arrays.copyOf(output, outputLength);
        int close = lastIndexOf(tokens, special.thinkClose());
        int thinkingEnd = close >= 0 ? close + 1 : thinking ? tokens.length : 0;
        int answerTokens = tokens.length - thinkingEnd;
        if (answerTokens > 0 && special.stop().contains(tokens[tokens.length - 1])) {
            answerTokens--;
        }
        String reasoning = "";
        String answerText = "";
        if (tokenizer != null) {
            int from = thinkingEnd > 0 && tokens[0] == special.thinkOpen() ? 1 : 0;
            int to = close >= 0 ? close : thinkingEnd;
            reasoning = ChatTemplate.strip(tokenizer.decode(Arrays.copyOfRange(tokens, from, Math.max(from, to)), true));
            answerText = ChatTemplate.strip(stoppedByString ? answer.toString() : answer + answerDecoder.flush());
        }
        if (labelScores != null) {
            return classification(reasoning, tokens);
        }
        return new GenerationResult(answerText, reasoning, prompt.length, thinkingEnd, answerTokens,
                finish == null ? FinishReason.LENGTH : finish, budgetExhausted, request.thinkingBudget(), tokens);
    }

    /** The result of a classification: the labels' softmax over their summed log-probabilities. */
    private GenerationResult classification(String reasoning, int[] tokens) {
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        int best = 0;
        for (int i = 0; i < labelScores.length; i++) {
            if (labelScores[i] > max) {
                max = labelScores[i];
                best = i;
            }
        }
        for (double score : labelScores) {
            sum += Math.exp(score - max);
        }
        var probabilities = new java.util.LinkedHashMap<String, Double>();
        List<String> names = request.labels();
        for (int i = 0; i < labelScores.length; i++) {
            probabilities.put(names.get(i), Math.exp(labelScores[i] - max) / sum);
        }
        String label = names.get(best);
        return new GenerationResult(label, reasoning, prompt.length, tokens.length, 0, FinishReason.STOP, budgetExhausted,
                request.thinkingBudget(), tokens, label, java.util.Collections.unmodifiableMap(probabilities));
    }

    private static int lastIndexOf(int[] tokens, int token) {
        for (int i = tokens.length - 1; i >= 0 && token >= 0; i--) {
            if (tokens[i] == token) {
                return i;
            }
        }
        return -1;
    }
}
