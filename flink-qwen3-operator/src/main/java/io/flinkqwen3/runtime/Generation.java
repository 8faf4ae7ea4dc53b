package io.flinkqwen3.runtime;

import io.flinkqwen3.tokenizer.ChatTemplate;
import io.flinkqwen3.tokenizer.Qwen3Tokenizer;
import io.flinkqwen3.tokenizer.StreamingDecoder;
import java.util.Arrays;
import java.util.Set;

/**
 * One request's state machine: prompt -> (thinking -> [budget early-stop text]) -> answer -> done.
 * It says which tokens the model must consume next and takes each sampled token; it does no math.
 */
final class Generation implements SlaBudgetPolicy.Sequence {
    /** Qwen's early-stop text (QWEN3-SPEC.md section 6, the form Qwen's example code ships). */
    static final String EARLY_STOP_TEXT =
            "\n\nConsidering the limited time by the user, I have to give the solution based on the thinking directly now.\n</think>\n\n";

    private final GenerationRequest request;
    private final SpecialTokens special;
    private final Qwen3Tokenizer tokenizer;
    private final Sampler sampler;
    final KvCache cache;
    final int[] prompt;
    final long deadlineNanos;
    final long submittedNanos;

    private int[] output = new int[64];
    private int outputLength;
    private int[] pending;
    private int pendingFed;

    private boolean thinking;
    private int thinkingTokens;
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
        this.thinkingLimit = request.thinkingBudget() > 0 ? request.thinkingBudget() : Integer.MAX_VALUE;
        this.answerDecoder = tokenizer == null ? null : tokenizer.streamingDecoder(true);
    }

    GenerationRequest request() {
        return request;
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
        int left = request.maxTokens() - outputLength;
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
    public void limitThinking(int limit) {
        thinkingLimit = Math.max(0, limit);
        if (thinking() && outputLength > 0 && thinkingTokens >= thinkingLimit && pendingFed == 0 && pending.length == 1) {
            stopThinking(pending[0]);
        }
    }
    /** Samples from the logits after the last fed token and advances the state machine. */
    void sampleFrom(float[] logits, int off, int vocab) {
        int token = sampler.sample(logits, off, vocab);
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

    private void onThinkingToken(int token) {
        if (outputLength == 1 && !thinkOpenInPrompt && token != special.thinkOpen()) {
            thinking = false; // the model answered without a think block
            onAnswerToken(token);
            return;
        }
        thinkingTokens++;
        if (token == special.thinkClose()) {
            thinking = false;
        } else if (thinkingTokens >= thinkingLimit) {
            stopThinking(token);
        }
    }

    /** Budget spent without </think>: Qwen's early-stop text follows the last sampled token and the model answers. */
    private void stopThinking(int lastToken) {
        int[] forced = special.earlyStop();
        pending = new int[1 + forced.length];
        pending[0] = lastToken;
        System.arraycopy(forced, 0, pending, 1, forced.length);
        for (int t : forced) {
            append(t);
        }
        thinkingTokens += forced.length;
        budgetExhausted = true;
        thinking = false;
    }

    private void onAnswerToken(int token) {
        answerTokens++;
        if (request.maxAnswerTokens() > 0 && answerTokens >= request.maxAnswerTokens()) {
            finish(FinishReason.LENGTH);
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
        return new GenerationResult(answerText, reasoning, prompt.length, thinkingEnd, answerTokens,
                finish == null ? FinishReason.LENGTH : finish, budgetExhausted, request.thinkingBudget(), tokens);
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
