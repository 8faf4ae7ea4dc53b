package io.flinkqwen3.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import java.math.BigDecimal;
import java.util.Map;

/**
 * The {@code tojson} filter of Hugging Face chat templates: Python's {@code json.dumps(value,
 * ensure_ascii=False)} (transformers' chat_template_utils), so ", " and ": " separators, keys in
 * their order, non-ASCII text as is, control characters escaped with lowercase hex, floats as
 * Python's repr (1.0, 1e-05, 1e+16).
 */
public final class TemplateJson {
    private TemplateJson() {}

    public static String dumps(JsonNode value) {
        var out = new StringBuilder();
        write(value, out);
        return out.toString();
    }

    private static void write(JsonNode v, StringBuilder out) {
        switch (v.getNodeType()) {
            case OBJECT -> {
                out.append('{');
                boolean first = true;
                for (Map.Entry<String, JsonNode> e : v.properties()) {
                    out.append(first ? "" : ", ");
                    string(e.getKey(), out);
                    out.append(": ");
                    write(e.getValue(), out);
                    first = false;
                }
                out.append('}');
            }
            case ARRAY -> {
                out.append('[');
                for (int i = 0; i < v.size(); i++) {
                    out.append(i == 0 ? "" : ", ");
                    write(v.get(i), out);
                }
                out.append(']');
            }
            case STRING -> string(v.textValue(), out);
            case NUMBER -> out.append(v.isIntegralNumber() ? v.bigIntegerValue().toString() : pythonFloat(v.doubleValue()));
            case BOOLEAN -> out.append(v.booleanValue());
            default -> out.append("null");
        }
    }

    /** json.dumps of a str with ensure_ascii=False. */
    private static void string(String s, StringBuilder out) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }

    /** Python's repr(float): the shortest round-trip digits, positional for exponents -4..15, else d.ddde+XX. */
    static String pythonFloat(double d) {
        if (Double.isNaN(d)) {
            return "NaN";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "Infinity" : "-Infinity";
        }
        if (d == 0) {
            return 1 / d < 0 ? "-0.0" : "0.0";
        }
        BigDecimal b = new BigDecimal(Double.toString(Math.abs(d))).stripTrailingZeros(); // Java's shortest digits,
        if (b.precision() == 2) { // except that Java writes at least two (4.9E-324 where Python has 5e-324)
            BigDecimal one = b.round(new java.math.MathContext(1, java.math.RoundingMode.HALF_EVEN));
            if (one.doubleValue() == Math.abs(d)) {
                b = one.stripTrailingZeros();
            }
        }
        String digits = b.unscaledValue().toString();
        int exponent = digits.length() - 1 - b.scale(); // of the first digit
        String sign = d < 0 ? "-" : "";
        if (exponent >= -4 && exponent < 16) {
            String plain = b.toPlainString();
            return sign + (plain.contains(".") ? plain : plain + ".0");
        }
        String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
        return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + (Math.abs(exponent) < 10 ? "0" : "") + Math.abs(exponent);
    }
}
