package io.flinkqwen3.runtime;

import io.flinkqwen3.tensor.Kernels;
import io.flinkqwen3.tokenizer.ChatTemplate;
import io.flinkqwen3.tokenizer.Qwen3Tokenizer;
import io.flinkqwen3.tokenizer.StreamingDecoder;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * One request's state machine: prompt -> (thinking -> [budget early-stop text]) -> answer -> done.
 * It says which tokens the model must consume next and takes each sampled token; it does no math.
 *
 * <p>Every generated token belongs to exactly one side: thinking (from {@code <think>} up to and
 * including the {@code </think>} that ended it, forced early-stop text included) or answer
 * (everything after, a stray {@code </think>} included); a final end-of-turn token belongs to
 * neither. The texts are decoded from exactly those tokens.
 *
 * <p>With a {@link JsonConstraint}, the answer's logits are masked before each sample: the
 * answer starts in the grammar's start state and ends only in an accepting one; while thinking,
 * end-of-turn tokens are masked (the think block must close), and thinking is cut with the
 * early-stop text once only the answer's minimum is left of the request's tokens.
 */
final class Generation implements SlaBudgetPolicy.Sequence {
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
    /** Output tokens that belong to thinking, fixed when thinking ends (-1 while it goes on). */
    private int thinkingEnd = -1;
    /** Thinking tokens after which the early-stop text goes in: the budget, lowered or raised by the SLA policy. */
    private int thinkingLimit;
    private int answerTokens;
    private boolean budgetExhausted;
    private final StringBuilder answer = new StringBuilder();
    private final StreamingDecoder answerDecoder;
    private FinishReason finish;
    private boolean stoppedByString;
    /** The prompt pre-fills an open think block (as Qwen3-Thinking-2507's template does). */
    private final boolean thinkOpenInPrompt;
    /** Tokens this request may generate: max tokens, or fewer where the context ends first. */
    private final int limit;
    private final JsonConstraint constraint;
    private int grammarState;

    /** Label scoring: each label's token ids (null: free generation) and the tokens the template renders after {@code </think>}. */
    private int[][] labels;
    private int[] afterThinkClose;
    /** Summed log-probability of each label's tokens so far; set once the answer would start. */
    private double[] labelScores;
    /** Labels of two or more tokens still to run (as forks of this sequence), from this index on. */
    private int nextLabel;

    /** The ids that steer a generation: end-of-turn tokens and the think tags (-1 when the vocabulary has none). */
    record SpecialTokens(Set<Integer> stop, int thinkOpen, int thinkClose, int[] earlyStop) {}

    /** A generation that runs in {@code cache} from the start. */
    Generation(GenerationRequest request, int[] prompt, KvCache cache, SpecialTokens special, Qwen3Tokenizer tokenizer,
               SamplingParams sampling, long submittedNanos, long deadlineNanos) {
        this(request, prompt, cache.maxPositions(), special, tokenizer, sampling, submittedNanos, deadlineNanos, null);
        attach(cache);
    }

    /**
     * A generation whose sequence may hold maxPositions positions; its cache comes with
     * {@link #attach}. constraint: null for free text. Throws IllegalArgumentException when the
     * constrained answer cannot fit the tokens this request may generate.
     */
    Generation(GenerationRequest request, int[] prompt, int maxPositions, SpecialTokens special, Qwen3Tokenizer tokenizer,
               SamplingParams sampling, long submittedNanos, long deadlineNanos, JsonConstraint constraint) {
        this.request = request;
        this.prompt = prompt;
        this.special = special;
        this.tokenizer = tokenizer;
        this.sampler = new Sampler(sampling);
        this.submittedNanos = submittedNanos;
        this.deadlineNanos = deadlineNanos;
        this.pending = prompt;
        this.thinkOpenInPrompt = lastIndexOf(prompt, special.thinkOpen()) > lastIndexOf(prompt, special.thinkClose());
        this.thinking = request.thinks() && special.thinkOpen() >= 0;
        this.thinkingLimit = request.thinkingBudget() > 0 ? request.thinkingBudget() : Integer.MAX_VALUE;
        this.answerDecoder = tokenizer == null ? null : tokenizer.streamingDecoder(true);
        this.limit = Math.min(request.maxTokens(), maxPositions - prompt.length);
        this.constraint = constraint;
        this.grammarState = constraint == null ? -1 : constraint.start();
        if (constraint != null) {
            int needed = constraint.minTokens() + (thinking ? 1 + special.earlyStop().length : 0);
            if (limit < needed) {
                throw new IllegalArgumentException("max_tokens " + request.maxTokens()
                        + (limit < request.maxTokens() ? " (" + limit + " left in the context)" : "")
                        + " is too small for the JSON schema: its shortest answer takes " + constraint.minTokens()
                        + " tokens with the end token" + (thinking ? ", plus " + (1 + special.earlyStop().length)
                        + " to open and close the thinking" : "") + " (at least " + needed + ")");
            }
        }
    }
    GenerationRequest request() {
        return request;
    }

    /** Gives the request its cache; prompt tokens the cache already holds (a cached prefix) are not run again. */
    void attach(KvCache admitted) {
        this.cache = admitted;
        this.pendingFed = admitted.length();
    }

    /**
     * Before the prompt's next chunk: prompt blocks that entered the prefix cache since the request
     * was admitted replace running them ({@link KvCache#adoptCachedPrefix}).
     */
    void adoptCachedPrefix() {
        if (outputLength == 0 && pending == prompt && pendingFed == cache.length() && cache.adoptCachedPrefix(prompt) > 0) {
            pendingFed = cache.length();
        }
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
            labelScores[label] += logits[off + tokens[j]] - Kernels.logSumExp(logits, off, vocab);
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
        double logZ = Kernels.logSumExp(logits, off, vocab);
        labelScores = new double[labels.length];
        for (int i = 0; i < labels.length; i++) {
            labelScores[i] = logits[off + labels[i][0]] - logZ;
        }
        pending = new int[0];
        pendingFed = 0;
        labelsScored();
    }

    @Override
    public long deadlineNanos() {
        return deadlineNanos;
    }

    @Override
    public long submittedNanos() {
        return submittedNanos;
    }

    @Override
    public boolean adaptive() {
        return request.adaptiveBudget();
    }

    @Override
    public boolean thinking() {
        return thinking && finish == null;
    }

    @Override
    public int thinkingTokens() {
        return thinkingTokens;
    }

    @Override
    public int thinkingLimit() {
        return thinkingLimit;
    }

    @Override
    public int prefillLeft() {
        return outputLength == 0 ? pending.length - pendingFed : 0;
    }

    @Override
    public int answerTokensLeft() {
        int left = limit - outputLength;
        if (!thinking) {
            return request.maxAnswerTokens() > 0 ? Math.min(left, request.maxAnswerTokens() - answerTokens) : left;
        }
        return Math.max(0, Math.min(left - SlaBudgetPolicy.EARLY_STOP_TOKENS, request.plannedAnswerTokens()));
    }

    @Override
    public int plannedAnswerTokens() {
        return Math.min(request.plannedAnswerTokens(), request.maxTokens());
    }

    @Override
    public int maxThinkingTokens() {
        return request.maxTokens() - Math.min(request.plannedAnswerTokens(), request.maxTokens() / 2) - SlaBudgetPolicy.EARLY_STOP_TOKENS;
    }

    /**
     * Sets the thinking limit; a limit already reached while the model is thinking cuts the thought
     * at once: the early-stop text goes in with the token just sampled, before the next step.
     */
    @Override
    public void limitThinking(int tokens) {
        thinkingLimit = Math.max(0, tokens);
        if (thinking() && outputLength > 0 && thinkingTokens >= thinkingLimit && pendingFed == 0 && pending.length == 1) {
            stopThinking(pending[0]);
        }
    }

    /** Samples from the logits after the last fed token and advances the state machine. */
    void sampleFrom(float[] logits, int off, int vocab) {
        if (labels != null && !thinking) {
            startScoring(logits, off, vocab);
            return;
        }
        if (constraint != null) {
            constrain(logits, off, vocab);
        }
        int token = sampler.sample(logits, off, vocab);
        if (constraint != null && logits[off + token] == Float.NEGATIVE_INFINITY) {
            token = Sampler.argmax(logits, off, vocab); // a draw can land on a zero-weight candidate by rounding
        }
        if (labels != null && outputLength == 0 && !thinkOpenInPrompt && token != special.thinkOpen()) {
            thinking = false; // the model would answer without a think block: the labels start here
            startScoring(logits, off, vocab);
            return;
        }
        if (labels != null && (special.stop().contains(token) || token == special.thinkClose()
                || outputLength + 2 + afterThinkClose.length >= limit)) {
            closeThinking(special.stop().contains(token) ? -1 : token);
            return;
        }
        append(token);
        pending = new int[] {token};
        pendingFed = 0;
        if (special.stop().contains(token)) {
            if (thinking) {
                thinkingEnd = outputLength - 1; // the turn ended inside the think block: all of it is thinking
            }
            finish(budgetExhausted ? FinishReason.BUDGET : FinishReason.STOP);
            return;
        }
        if (thinking) {
            onThinkingToken(token);
        } else {
            onAnswerToken(token);
        }
        if (finish == null && outputLength >= limit) {
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
        for (int i = 0; i < pending.length; i++) {
            append(pending[i]);
            if (i == close.length - 1) {
                thinkingEnd = outputLength; // the reasoning is the text before this </think>
            }
        }
        thinkingTokens += pending.length;
        thinking = false;
    }

    /** Masks what the JSON constraint forbids now. */
    private void constrain(float[] logits, int off, int vocab) {
        if (!thinking) {
            constraint.mask(grammarState, limit - outputLength).apply(logits, off, vocab);
        } else if (outputLength == 0 && !thinkOpenInPrompt) {
            // the first token either opens the think block or starts the answer
            float open = logits[off + special.thinkOpen()];
            constraint.mask(grammarState, limit - outputLength - 1 - special.earlyStop().length).apply(logits, off, vocab);
            logits[off + special.thinkOpen()] = open;
        } else {
            for (int t : special.stop()) {
                if (t < vocab) {
                    logits[off + t] = Float.NEGATIVE_INFINITY;
                }
            }
        }
    }

    private void onThinkingToken(int token) {
        if (outputLength == 1 && !thinkOpenInPrompt && token != special.thinkOpen()) {
            thinking = false; // the model answered without a think block
            thinkingEnd = 0;
            onAnswerToken(token);
            return;
        }
        thinkingTokens++;
        if (token == special.thinkClose()) {
            thinking = false;
            thinkingEnd = outputLength;
        } else if (thinkingTokens >= thinkingLimit || answerWouldNotFit()) {
            stopThinking(token);
        }
    }

    /** Budget spent without </think>: Qwen's early-stop text follows the last sampled token and the model answers. */
    private void stopThinking(int lastToken) {
        int[] forced = special.earlyStop();
        pending = new int[1 + forced.length];
        pending[0] = lastToken;
        System.arraycopy(forced, 0, pending, 1, forced.length);
        int close = lastIndexOf(forced, special.thinkClose());
        for (int i = 0; i < forced.length; i++) {
            append(forced[i]);
            if (i == close) {
                thinkingEnd = outputLength;
                thinking = false;
            } else if (i > close) {
                onAnswerToken(forced[i]);
            }
        }
        thinkingTokens += close + 1;
        budgetExhausted = true;
        thinking = false;
        if (thinkingEnd < 0) {
            thinkingEnd = outputLength;
        }
    }

    /** With a schema: the early-stop text plus the shortest answer take all that is left. */
    private boolean answerWouldNotFit() {
        return constraint != null && limit - outputLength - special.earlyStop().length <= constraint.minTokens();
    }

    private void onAnswerToken(int token) {
        answerTokens++;
        if (request.maxAnswerTokens() > 0 && answerTokens >= request.maxAnswerTokens()) {
            finish(FinishReason.LENGTH);
        }
        if (constraint != null) {
            grammarState = constraint.advance(grammarState, token);
            if (grammarState < 0) {
                throw new IllegalStateException("token " + token + " left the JSON schema's grammar"); // masking rules this out
            }
        }
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
        int end = tokens.length > 0 && special.stop().contains(tokens[tokens.length - 1]) ? tokens.length - 1 : tokens.length;
        int split = thinkingEnd >= 0 ? Math.min(thinkingEnd, end) : thinking ? end : 0;
        String reasoning = "";
        String answerText = "";
        if (tokenizer != null) {
            int from = split > 0 && tokens[0] == special.thinkOpen() ? 1 : 0;
            int to = split > from && tokens[split - 1] == special.thinkClose() ? split - 1 : split;
            reasoning = ChatTemplate.strip(tokenizer.decode(Arrays.copyOfRange(tokens, from, Math.max(from, to)), true));
            answerText = ChatTemplate.strip(stoppedByString ? answer.toString()
                    : tokenizer.decode(Arrays.copyOfRange(tokens, split, end), true));
        }
        if (labelScores != null) {
            return classification(reasoning, tokens);
        }
        FinishReason reason = finish == null ? FinishReason.LENGTH : finish;
        if (constraint != null && (grammarState < 0 || !constraint.accepting(grammarState))) {
            // only a request cut short from outside (the context, a cancel) gets here: never call it valid
            throw new IllegalStateException("the answer ended (" + reason.wireName() + ") before completing the JSON schema");
        }
        return new GenerationResult(answerText, reasoning, prompt.length, split, end - split,
                reason, budgetExhausted, request.thinkingBudget(), tokens);
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
