package io.flinkqwen3.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.testing.SchemaCheck;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The schema automaton on its own: what it accepts, what it refuses, and that everything it accepts validates. */
class JsonSchemaGrammarTest {
    static final String PERSON = SchemaCheck.schema("person.json");
    static final String ORDER = SchemaCheck.schema("order.json");
    static final String TAGS = SchemaCheck.schema("tags.json");

    @Test
    void acceptsTheFormsItWritesAndNothingElse() {
        var g = JsonSchemaGrammar.compile(PERSON);
        assertTrue(g.matches("{\"name\":\"Ann\",\"age\":30}"));
        assertTrue(g.matches("\n\n{\"name\": \"Ann\", \"age\": -3, \"height_m\": 1.5e-3, \"employed\": true}"));
        assertTrue(g.matches("{\"name\":\"\\u00e9\\n\\\"é€😀\",\"age\":0,\"employed\":false}"));
        assertFalse(g.matches("{\"age\":30,\"name\":\"Ann\"}"), "properties in schema order");
        assertFalse(g.matches("{\"name\":\"Ann\"}"), "required age missing");
        assertFalse(g.matches("{\"name\":\"Ann\",\"age\":3.5}"), "integer");
        assertFalse(g.matches("{\"name\":\"Ann\",\"age\":03}"), "leading zero");
        assertFalse(g.matches("{\"name\":\"Ann\",\"age\":3,\"x\":1}"), "no other properties");
        assertFalse(g.matches("{\"name\":\"A\tb\",\"age\":3}"), "raw control character");
        assertFalse(g.matches("{\"name\":\"\\ud800\",\"age\":3}"), "lone surrogate escape");
        assertFalse(g.matches("{\"name\":\"\\x\",\"age\":3}"), "bad escape");
        assertFalse(g.matches("{\"name\":\"Ann\",\"age\":3} "), "nothing after the value");
        assertFalse(g.matches("{ \"name\":\"Ann\",\"age\":3}"), "no space after {");
        byte[] overlong = {'{', '"', 'n', 'a', 'm', 'e', '"', ':', '"', (byte) 0xC0, (byte) 0x80, '"', ',', '"', 'a', 'g', 'e', '"', ':', '1', '}'};
        int s = g.walk(g.start(), overlong);
        assertTrue(s < 0 || !g.accepting(s), "overlong UTF-8");
        assertEquals("{\"name\":\"\",\"age\":0}".length(), g.distance(g.start()));
    }

    @Test
    void enumsConstsArraysAndNullableTypes() {
        var g = JsonSchemaGrammar.compile(ORDER);
        String ok = "{\"order_id\":\"A1\",\"status\":\"shipped\",\"priority\":2,\"customer\":{\"email\":\"a@b\"},"
                + "\"items\":[{\"sku\":\"x\",\"qty\":1},{\"sku\":\"y\",\"qty\":2}],\"note\":null}";
        assertTrue(g.matches(ok));
        assertNull(SchemaCheck.problem(ORDER, ok));
        assertFalse(g.matches(ok.replace("shipped", "lost")));
        assertFalse(g.matches(ok.replace("\"priority\":2", "\"priority\":4")));
        assertFalse(g.matches(ok.replace("]", ",{\"sku\":\"z\",\"qty\":1},{\"sku\":\"w\",\"qty\":1}]")), "maxItems 3");
        var t = JsonSchemaGrammar.compile(TAGS);
        assertTrue(t.matches("{\"tags\":[\"a\"],\"scores\":[],\"language\":\"en\"}"));
        assertFalse(t.matches("{\"tags\":[],\"language\":\"en\"}"), "minItems 1");
        assertFalse(t.matches("{\"tags\":[\"a\"],\"language\":\"fr\"}"), "const");
    }

    @Test
    void everyTextTheAutomatonCanWriteValidates() {
        var random = new SplittableRandom(7);
        for (String schema : List.of(PERSON, ORDER, TAGS)) {
            var g = JsonSchemaGrammar.compile(schema);
            for (int seed = 0; seed < 300; seed++) {
                String text = randomText(g, random, 20 + random.nextInt(200));
                assertNull(SchemaCheck.problem(schema, text), text);
            }
        }
    }

    /** A random walk over allowed bytes that heads for completion once the length is spent. */
    static String randomText(JsonSchemaGrammar g, SplittableRandom random, int length) {
        var out = new ByteArrayOutputStream();
        int s = g.start();
        while (true) {
            List<Integer> choices = new ArrayList<>();
            for (int b = 0; b < 256; b++) {
                int t = g.step(s, b);
                if (t >= 0 && g.distance(t) < Integer.MAX_VALUE && (out.size() < length || g.distance(t) < g.distance(s))) {
                    choices.add(b);
                }
            }
            if (g.accepting(s) && (choices.isEmpty() || out.size() >= length || random.nextInt(4) == 0)) {
                return out.toString(StandardCharsets.UTF_8);
            }
            int b = choices.get(random.nextInt(choices.size()));
            out.write(b);
            s = g.step(s, b);
        }
    }

    @Test
    void unsupportedSchemasAreRefusedWithTheirPath() {
        assertEquals("json_schema /properties/age: keyword 'minimum' is not supported (supported: [additionalProperties, "
                + "const, enum, items, maxItems, minItems, properties, required, type]; annotations are ignored: [$comment, $id, "
                + "$schema, default, deprecated, description, examples, readOnly, title, writeOnly])", message(
                "{\"type\":\"object\",\"properties\":{\"age\":{\"type\":\"integer\",\"minimum\":0}}}"));
        assertEquals("json_schema /: keyword '$ref' is not supported", message("{\"$ref\":\"#/x\"}").substring(0, 46));
        assertEquals("json_schema /properties/a/items: type \"date\" is not supported (supported: [array, boolean, integer, "
                + "null, number, object, string])", message(
                "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"array\",\"items\":{\"type\":\"date\"}}}}"));
        assertEquals("json_schema /: required property \"b\" has no schema in 'properties'",
                message("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}},\"required\":[\"b\"]}"));
        assertEquals("json_schema /: an object needs a non-empty 'properties' map (the model only writes the properties it lists)",
                message("{\"type\":\"object\"}"));
        assertEquals("json_schema /: an array needs an 'items' schema", message("{\"type\":\"array\"}"));
        assertEquals("json_schema /: needs 'type', 'enum' or 'const'", message("{}"));
        assertTrue(message("{\"type\":").startsWith("json_schema is not JSON: "));
        assertEquals("json_schema /: expected a schema object, got array", message("[1]"));
        assertEquals("json_schema /: no value satisfies 'enum'/'const' and 'type' together",
                message("{\"type\":\"string\",\"enum\":[1,2]}"));
        String deep = "{\"type\":\"string\"}";
        for (int i = 0; i < 20; i++) {
            deep = "{\"type\":\"array\",\"items\":" + deep + "}";
        }
        assertTrue(message(deep).endsWith("nested deeper than 10 levels"), message(deep));
        // the README's claim: 10 levels compile; a schema too large for the automaton gets the one size-limit message
        String ten = "{\"type\":\"string\"}", optional = ten;
        for (int i = 0; i < JsonSchemaGrammar.MAX_DEPTH; i++) {
            ten = "{\"type\":\"array\",\"items\":" + ten + "}";
        }
        JsonSchemaGrammar.compile(ten);
        for (int i = 0; i < 8; i++) {
            optional = "{\"type\":\"object\",\"properties\":{\"s\":{\"type\":\"string\"},\"n\":{\"type\":\"integer\"},"
                    + "\"e\":{\"enum\":[\"x\",\"y\",\"z\"]},\"c\":" + optional + "}}";
        }
        assertEquals(JsonSchemaGrammar.TOO_LARGE, message(optional));
        assertTrue(JsonSchemaGrammar.TOO_LARGE.contains("size limit (200000 NFA / 20000 DFA states)"));
    }

    private static String message(String schema) {
        return assertThrows(IllegalArgumentException.class, () -> JsonSchemaGrammar.compile(schema)).getMessage();
    }
}
