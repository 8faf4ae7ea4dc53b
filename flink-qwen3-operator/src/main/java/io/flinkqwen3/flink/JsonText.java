package io.flinkqwen3.flink;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.JsonDeserializer;
import java.io.IOException;

/**
 * Reads a JSON value into a String field as its JSON text, so that a JSON record may give
 * {@code json_schema}, {@code tools} and {@code tool_calls} as objects while the POJO and the Avro
 * schema hold strings. A JSON string is taken as the text itself (the form Avro records use).
 */
public final class JsonText extends JsonDeserializer<String> {
    @Override
    public String deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
        if (p.currentToken() == JsonToken.VALUE_STRING) {
            return p.getText();
        }
        return p.readValueAsTree().toString();
    }
}
