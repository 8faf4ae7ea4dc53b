package io.flinkqwen3.runtime;

/** What the engine measured about the cost of its work right now: what a scheduling policy needs. */
public interface StepCosts {
    /** Seconds per decode step at this batch size (NaN when not measured yet). */
    double decodeStepSeconds(int batchSize);

    /** Seconds of prefill per prompt token (NaN when not measured yet). */
    double prefillSecondsPerToken();

    /** Requests waiting to start. */
    int queued();

    /** Requests running now. */
    int active();

    /** Requests the engine runs in one batch. */
    int maxSequences();

    /** Sequences the engine runs in one step now: the SLA policy's batch limit (at most {@link #maxSequences}). */
    int batchLimit();

    /** Newcomers think only while the batch stays at or below this size (the SLA policy's last plan). */
    int thinkingBatchLimit();
}
