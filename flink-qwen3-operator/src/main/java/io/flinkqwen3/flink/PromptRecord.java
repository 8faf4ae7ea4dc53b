package io.flinkqwen3.flink;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.databind.annotation.JsonDeserialize;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A prompt to answer (schema: src/main/avro/PromptRecord.avsc). A Flink POJO; nullable fields mean
 * "use the operator's default". A record that could not be decoded from its source carries
 * {@link #decodeError} and its raw bytes, and goes to the dead-letter output.
 */
public class PromptRecord {
    public String id;
    public String prompt;
    public List<ChatTurn> messages;
    public String systemPrompt;
    public Boolean enableThinking;
    public Integer thinkingBudget;
    public Long slaMs;
    public Long deadlineMs;
    public Integer maxTokens;
    public Map<String, String> options = new HashMap<>();
    public Map<String, String> attributes = new HashMap<>();
    /** Function definitions for the chat template's system turn, each as JSON text (JSON records may give objects). */
    @JsonDeserialize(contentUsing = JsonText.class)
    public List<String> tools;
    /** A JSON Schema the answer must satisfy, as JSON text (JSON records may give the object). */
    @JsonDeserialize(using = JsonText.class)
    public String jsonSchema;
    /**
     * Classify instead of generating: 2 to 512 distinct non-empty labels (see
     * {@link io.flinkqwen3.runtime.Labels}); the completion gets the most probable one and every
     * label's probability. Null: free generation.
     */
    public List<String> labels;
    /** Set by the source when the bytes could not be decoded; then {@link #raw} holds them. */
    @JsonIgnore
    public String decodeError;
    @JsonIgnore
    public byte[] raw;

    public PromptRecord() {}

    public static PromptRecord of(String id, String prompt) {
        var r = new PromptRecord();
        r.id = id;
        r.prompt = prompt;
        return r;
    }

    public static PromptRecord undecodable(byte[] raw, String error) {
        var r = new PromptRecord();
        r.raw = raw;
        r.decodeError = error;
        return r;
    }

    public PromptRecord withSlaMs(long sla) {
        this.slaMs = sla;
        return this;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof PromptRecord p && Objects.equals(id, p.id) && Objects.equals(prompt, p.prompt)
                && Objects.equals(messages, p.messages) && Objects.equals(systemPrompt, p.systemPrompt)
                && Objects.equals(enableThinking, p.enableThinking) && Objects.equals(thinkingBudget, p.thinkingBudget)
                && Objects.equals(slaMs, p.slaMs) && Objects.equals(deadlineMs, p.deadlineMs)
                && Objects.equals(maxTokens, p.maxTokens) && Objects.equals(options, p.options)
                && Objects.equals(attributes, p.attributes) && Objects.equals(tools, p.tools)
                && Objects.equals(jsonSchema, p.jsonSchema) && Objects.equals(labels, p.labels);
    }

    @Override
    public int hashCode() {
        return Objects.hash(id, prompt, slaMs);
    }

    @Override
    public String toString() {
        return "PromptRecord{id=" + id + ", prompt=" + prompt + ", slaMs=" + slaMs + "}";
    }
}
