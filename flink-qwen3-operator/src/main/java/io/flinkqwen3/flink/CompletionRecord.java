package io.flinkqwen3.flink;

import java.util.HashMap;
import java.util.Map;

/** The answer to a {@link PromptRecord} (schema: src/main/avro/CompletionRecord.avsc). A Flink POJO. */
public class CompletionRecord {
    public String id;
    public String answer;
    public String reasoning;
    public String finishReason;
    public int promptTokens;
    public int thinkingTokens;
    public int answerTokens;
    public int thinkingBudget;
    public Long slaMs;
    public long latencyMs;
    public boolean slaMet;
    public String model;
    public Map<String, String> attributes = new HashMap<>();
    /** Records with labels: the most probable label (also the answer); null for free generation. */
    public String label;
    /** Records with labels: each label's probability (they sum to 1); null for free generation. */
    public Map<String, Double> labelProbabilities;

    public CompletionRecord() {}

    @Override
    public String toString() {
        return "CompletionRecord{id=" + id + ", finishReason=" + finishReason + ", thinkingBudget=" + thinkingBudget
                + ", latencyMs=" + latencyMs + ", slaMet=" + slaMet + ", answer=" + answer
                + (label == null ? "" : ", label=" + label + ", labelProbabilities=" + labelProbabilities) + "}";
    }
}
