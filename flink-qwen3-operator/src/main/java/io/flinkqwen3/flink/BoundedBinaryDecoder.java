package io.flinkqwen3.flink;

import java.io.ByteArrayInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.Decoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.util.Utf8;

/**
 * Avro's binary decoder over one record's bytes, with every length and item count checked against
 * the bytes that remain <em>before</em> anything is allocated. Avro's own limits
 * ({@code org.apache.avro.limits.*} system properties) are JVM-wide and default to 2^31-9, so a
 * 10-byte record claiming a string of 2^31-9 bytes or an array of 2^31-9 items would make the
 * plain decoder allocate gigabytes first; here it fails at once, saying how much was claimed and
 * how much is left.
 *
 * <p>The bytes are read through Avro's {@link DecoderFactory#directBinaryDecoder direct decoder},
 * which never reads ahead, so the stream's {@code available()} is exactly what is left. Every item
 * of the record schemas this is used with (PromptRecord, CompletionRecord, DeadLetter) takes at
 * least one byte, which bounds the item counts.
 */
final class BoundedBinaryDecoder extends Decoder {
    private final ByteArrayInputStream in;
    private final BinaryDecoder decoder;

    BoundedBinaryDecoder(byte[] bytes) {
        this.in = new ByteArrayInputStream(bytes);
        this.decoder = DecoderFactory.get().directBinaryDecoder(in, null);
    }

    /** Bytes not read yet. */
    int remaining() {
        return in.available();
    }

    private int length(String what) throws IOException {
        long length = decoder.readLong();
        if (length < 0) {
            throw new IOException("negative " + what + " length " + length);
        }
        if (length > remaining()) {
            throw new EOFException(what + " of " + length + " bytes, but only " + remaining() + " bytes are left");
        }
        return (int) length;
    }

    private long items(long count, String what) throws IOException {
        if (count > remaining()) {
            throw new EOFException(what + " of " + count + " items, but only " + remaining()
                    + " bytes are left (each item takes at least one byte)");
        }
        return count;
    }

    @Override
    public void readNull() throws IOException {
        decoder.readNull();
    }

    @Override
    public boolean readBoolean() throws IOException {
        return decoder.readBoolean();
    }

    @Override
    public int readInt() throws IOException {
        return decoder.readInt();
    }

    @Override
    public long readLong() throws IOException {
        return decoder.readLong();
    }

    @Override
    public float readFloat() throws IOException {
        return decoder.readFloat();
    }

    @Override
    public double readDouble() throws IOException {
        return decoder.readDouble();
    }

    @Override
    public Utf8 readString(Utf8 old) throws IOException {
        int length = length("string");
        Utf8 result = old != null ? old : new Utf8();
        result.setByteLength(length);
        decoder.readFixed(result.getBytes(), 0, length);
        return result;
    }

    @Override
    public String readString() throws IOException {
        return readString(null).toString();
    }

    @Override
    public void skipString() throws IOException {
        decoder.skipFixed(length("string"));
    }

    @Override
    public ByteBuffer readBytes(ByteBuffer old) throws IOException {
        byte[] bytes = new byte[length("bytes")];
        decoder.readFixed(bytes);
        return ByteBuffer.wrap(bytes);
    }

    @Override
    public void skipBytes() throws IOException {
        decoder.skipFixed(length("bytes"));
    }

    @Override
    public void readFixed(byte[] bytes, int start, int length) throws IOException {
        decoder.readFixed(bytes, start, length);
    }

    @Override
    public void skipFixed(int length) throws IOException {
        decoder.skipFixed(length);
    }

    @Override
    public int readEnum() throws IOException {
        return decoder.readEnum();
    }

    @Override
    public long readArrayStart() throws IOException {
        return items(decoder.readArrayStart(), "array");
    }

    @Override
    public long arrayNext() throws IOException {
        return items(decoder.arrayNext(), "array block");
    }

    @Override
    public long skipArray() throws IOException {
        return items(decoder.skipArray(), "array");
    }

    @Override
    public long readMapStart() throws IOException {
        return items(decoder.readMapStart(), "map");
    }

    @Override
    public long mapNext() throws IOException {
        return items(decoder.mapNext(), "map block");
    }

    @Override
    public long skipMap() throws IOException {
        return items(decoder.skipMap(), "map");
    }

    @Override
    public int readIndex() throws IOException {
        return decoder.readIndex();
    }
}
