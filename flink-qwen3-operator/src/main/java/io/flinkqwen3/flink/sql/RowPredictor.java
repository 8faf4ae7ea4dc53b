package io.flinkqwen3.flink.sql;

import io.flinkqwen3.flink.PromptRecord;
import io.flinkqwen3.flink.Qwen3Options;
import io.flinkqwen3.flink.RequestBuilder;
import io.flinkqwen3.runtime.GenerationRequest;
import io.flinkqwen3.runtime.GenerationResult;
import io.flinkqwen3.runtime.Qwen3Engine;
import io.flinkqwen3.runtime.SlaBudgetPolicy;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.flink.configuration.ReadableConfig;

/**
 * What ML_PREDICT and the QWEN3_* functions share: a row's text becomes a request on the task
 * manager's engine, as the SQL options say.
 *
 * <ul>
 *   <li>The row's text is the user turn, after 'system-prompt' if set; with 'json-schema' the
 *       answer is JSON under that schema; with 'labels' the row is classified (its label is NULL
 *       when less probable than 'min-confidence').</li>
 *   <li>Deadline: with 'default-sla', arrival + SLA, so rows are batched by earliest deadline with
 *       the DataStream records of the same engine; without, rows have none and go behind them.</li>
 *   <li>Thinking budget: 0 with 'thinking' = false; else 'thinking-budget' if set; else, with
 *       'default-sla', what the SLA leaves ({@link SlaBudgetPolicy}, as for DataStream records);
 *       else 0.</li>
 *   <li>Sampling seed: from the row's text (see {@link RequestBuilder}), so a replayed row gets the
 *       same answer.</li>
 * </ul>
 */
final class RowPredictor {
    private final Qwen3Engine engine;
    private final ReadableConfig options;
    private final RequestBuilder requests;
    private final SlaBudgetPolicy policy;
    /** The SLA of every row in milliseconds, or null: rows have none. */
    private final Long slaMillis;
    /** The options' 'labels', or null. */
    private final List<String> labels;

    /**
     * What a row got: the result (null when it has none, see finishReason), latency from submission, SLA met (null: no SLA),
     * the label of a classification (null: none, or less probable than 'min-confidence').
     */
    record Outcome(GenerationResult result, String finishReason, long latencyMs, Boolean slaMet, int thinkingBudget, String label) {}

    /** A submitted row: the engine's future (cancel it to free its batch slot) and the row's outcome. */
    record Submitted(CompletableFuture<GenerationResult> generation, CompletableFuture<Outcome> outcome, long startNanos) {
        /** Stops the generation; the outcome of a row that got none in time. */
        Outcome abandon(String finishReason, Long slaMillis) {
            generation.cancel(false);
            long latency = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos);
            return new Outcome(null, finishReason, latency, slaMillis == null ? null : false, 0, null);
        }
    }

    RowPredictor(Qwen3Engine engine, ReadableConfig options) {
        this.engine = engine;
        this.options = options;
        this.requests = new RequestBuilder(options, engine.model().checkpoint().generationConfig());
        this.policy = new SlaBudgetPolicy();
        this.slaMillis = options.getOptional(Qwen3Options.DEFAULT_SLA)
                .map(d -> d.compareTo(Duration.ofMillis(Long.MAX_VALUE)) >= 0 ? Long.MAX_VALUE : d.toMillis()).orElse(null);
        this.labels = Qwen3Options.labels(options);
    }

    Long slaMillis() {
        return slaMillis;
    }

    /**
     * Queues the row's text, with the options' 'json-schema' or 'labels'. IllegalArgumentException
     * with the reason (which field, what was expected) for a row that cannot be answered: no text,
     * a prompt longer than the context.
     */
    Submitted submit(String text) {
        return submit(text, options.getOptional(Qwen3Options.JSON_SCHEMA).orElse(null), labels);
    }

    /** As {@link #submit(String)}, classifying over these labels (checked by the caller) instead of the options'. */
    Submitted classify(String text, List<String> labels) {
        return submit(text, null, labels);
    }

    private Submitted submit(String text, String jsonSchema, List<String> labels) {
        long start = System.nanoTime();
        var record = PromptRecord.of(null, text);
        record.systemPrompt = options.getOptional(Qwen3Options.SYSTEM_PROMPT).orElse(null);
        record.jsonSchema = jsonSchema;
        record.labels = labels;
        String invalid = RequestBuilder.validate(record);
        if (invalid != null) {
            throw new IllegalArgumentException(invalid);
        }
        int budget = thinkingBudget(record);
        // a budget the SLA policy chose is re-decided by the engine every step; the 'thinking-budget' option is kept
        GenerationRequest request = requests.build(record, budget, slaBudget());
        long deadline = slaMillis == null ? Long.MAX_VALUE : deadlineNanos(start, slaMillis);
        CompletableFuture<GenerationResult> generation = engine.submit(request, deadline);
        CompletableFuture<Outcome> outcome = generation.thenApply(r -> {
            long latency = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            String label = Qwen3Options.lowConfidence(r, options) ? null : r.label();
            return new Outcome(r, r.finishReason().wireName(), latency, slaMillis == null ? null : latency <= slaMillis, budget, label);
        });
        return new Submitted(generation, outcome, start);
    }

    /** Whether rows get their budget from the SLA policy (thinking on, no fixed 'thinking-budget', an SLA). */
    private boolean slaBudget() {
        return options.get(Qwen3Options.THINKING) && options.getOptional(Qwen3Options.THINKING_BUDGET).isEmpty() && slaMillis != null;
    }

    private int thinkingBudget(PromptRecord record) {
        if (!options.get(Qwen3Options.THINKING)) {
            return 0;
        }
        var fixed = options.getOptional(Qwen3Options.THINKING_BUDGET);
        if (fixed.isPresent() || slaMillis == null) {
            return fixed.orElse(0);
        }
        int promptTokens = engine.promptTokens(requests.build(record, GenerationRequest.UNLIMITED)).length;
        return policy.decide(slaMillis, promptTokens, options.get(Qwen3Options.DEFAULT_MAX_TOKENS),
                options.get(Qwen3Options.ANSWER_RESERVE_TOKENS), null, null, engine.metrics()).thinkingBudget();
    }

    /** On the System.nanoTime() clock; an SLA too long to add is no deadline. */
    private static long deadlineNanos(long startNanos, long slaMillis) {
        try {
            return Math.addExact(startNanos, TimeUnit.MILLISECONDS.toNanos(slaMillis));
        } catch (ArithmeticException e) {
            return Long.MAX_VALUE;
        }
    }
}
