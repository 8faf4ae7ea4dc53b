package io.flinkqwen3.flink;

import java.nio.charset.StandardCharsets;

/** An input that was not answered: its id (if known), why, and its raw payload. A Flink POJO. */
public class DeadLetter {
    public String id;
    public String reason;
    public byte[] payload;

    public DeadLetter() {}

    public DeadLetter(String id, String reason, byte[] payload) {
        this.id = id;
        this.reason = reason;
        this.payload = payload;
    }

    @Override
    public String toString() {
        return "DeadLetter{id=" + id + ", reason=" + reason + ", payload="
                + (payload == null ? "null" : new String(payload, StandardCharsets.UTF_8)) + "}";
    }
}
