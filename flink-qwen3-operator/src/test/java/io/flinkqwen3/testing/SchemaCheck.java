package io.flinkqwen3.testing;

import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Checks answers with libraries independent of the grammar: strict Jackson parsing, then networknt's validator. */
public final class SchemaCheck {
    private static final ObjectMapper STRICT = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();
    private static final SchemaRegistry REGISTRY = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12);

    private SchemaCheck() {}

    /** The test resource src/test/resources/schemas/NAME. */
    public static String schema(String name) {
        try {
            return Files.readString(Path.of("src/test/resources/schemas", name));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Why the text is not valid JSON for the schema, or null when it is. */
    public static String problem(String schemaJson, String text) {
        JsonNode value;
        try {
            value = STRICT.readTree(text);
        } catch (IOException e) {
            return "does not parse: " + e.getMessage();
        }
        if (value == null) {
            return "empty";
        }
        Schema schema = REGISTRY.getSchema(schemaJson);
        List<com.networknt.schema.Error> errors = schema.validate(value);
        return errors.isEmpty() ? null : "does not validate: " + errors;
    }
}
