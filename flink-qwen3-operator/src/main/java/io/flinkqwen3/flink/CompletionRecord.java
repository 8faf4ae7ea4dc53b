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

    public CompletionRecord() {}

    @Override
    public String toString() {
        return "CompletionRecord{id=" + id + ", finishReason=" + finishReason + ", thinkingBudget=" + thinkingBudget
                + ", latencyMs=" + latencyMs + ", slaMet=" + slaMet + ", answer=" + answer + "}";
    }
}
