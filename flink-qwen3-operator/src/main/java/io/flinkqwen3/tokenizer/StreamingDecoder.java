package io.flinkqwen3.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Turns a stream of token ids into text pieces without ever splitting a UTF-8 character: bytes of
 * an incomplete trailing character are held back until the token that completes them arrives.
 */
public final class StreamingDecoder {
    private final Qwen3Tokenizer tokenizer;
    private final boolean skipSpecial;
    private byte[] pending = new byte[0];

    StreamingDecoder(Qwen3Tokenizer tokenizer, boolean skipSpecial) {
        this.tokenizer = tokenizer;
        this.skipSpecial = skipSpecial;
    }

    /** Returns the text that is complete after this token (possibly empty). */
    public String accept(int id) {
        var out = new ByteArrayOutputStream();
        out.writeBytes(pending);
        tokenizer.appendBytes(id, skipSpecial, out);
        byte[] bytes = out.toByteArray();
        int complete = completePrefix(bytes);
        pending = Arrays.copyOfRange(bytes, complete, bytes.length);
        return new String(bytes, 0, complete, StandardCharsets.UTF_8);
    }

    /** Whatever is still held back, decoded with replacement characters. */
    public String flush() {
        String rest = new String(pending, StandardCharsets.UTF_8);
        pending = new byte[0];
        return rest;
    }

    /** Length of the prefix that does not end inside a UTF-8 sequence that could still be completed. */
    static int completePrefix(byte[] b) {
        int n = b.length;
        // Look back at most 3 bytes for the lead byte of the last sequence.
        for (int back = 1; back <= Math.min(3, n); back++) {
            int c = b[n - back] & 0xFF;
            if ((c & 0xC0) == 0x80) {
                continue; // continuation byte: keep looking for the lead
            }
            int need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
            return back < need ? n - back : n;
        }
        return n;
    }
}
