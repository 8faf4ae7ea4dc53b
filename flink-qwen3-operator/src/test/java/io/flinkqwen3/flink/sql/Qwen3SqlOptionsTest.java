package io.flinkqwen3.flink.sql;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.flink.Qwen3Options;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.configuration.ConfigOption;
import org.junit.jupiter.api.Test;

class Qwen3SqlOptionsTest {
    /** A new operator option must be offered in SQL or refused there with what to use instead. */
    @Test
    void everyOperatorOptionIsEitherAcceptedOrRefusedWithAReason() throws Exception {
        List<String> unclassified = new ArrayList<>();
        for (var field : Qwen3Options.class.getFields()) {
            if (Modifier.isStatic(field.getModifiers()) && field.get(null) instanceof ConfigOption<?> option
                    && !Qwen3SqlOptions.OPTIONS.contains(option) && !Qwen3SqlOptions.DATASTREAM_ONLY.containsKey(option.key())) {
                unclassified.add(option.key());
            }
        }
        assertTrue(unclassified.isEmpty(), "Qwen3Options neither accepted nor refused in SQL: " + unclassified);
    }
}
