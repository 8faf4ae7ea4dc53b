package io.flinkqwen3.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.jar.JarFile;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** What flink-qwen3-plugin carries: our classes, relocated dependencies and picocli, nothing that could clash in Flink's lib/. */
class PluginJarTest {
    @Test
    void everyClassIsOursOrRelocatedUnderOurPackage() throws Exception {
        Path jar;
        try (Stream<Path> files = Files.list(Path.of("../flink-qwen3-plugin/target"))) {
            jar = files.filter(f -> f.getFileName().toString().matches("flink-qwen3-plugin-.*\\.jar")).findFirst().orElseThrow();
        }
        try (var zip = new JarFile(jar.toFile())) {
            List<String> classes = zip.stream().map(e -> e.getName()).filter(n -> n.endsWith(".class")).toList();
            // picocli keeps its name: the example jobs' option annotations (in the job jar) are read by
            // io.flinkqwen3.cli.Commands (here), so both must see one picocli, this one
            List<String> foreign = classes.stream().filter(n -> !n.startsWith("io/flinkqwen3/") && !n.startsWith("picocli/")).toList();
            assertEquals(List.of(), foreign, "classes outside io/flinkqwen3/");
            for (String shaded : List.of("com/fasterxml/jackson/databind/ObjectMapper", "org/apache/avro/Schema",
                    "org/apache/commons/compress/utils/IOUtils")) {
                assertTrue(classes.contains("io/flinkqwen3/shaded/" + shaded + ".class"), shaded + " relocated");
            }
            assertTrue(classes.contains("io/flinkqwen3/flink/Qwen3InferenceOperator.class"));
            assertTrue(classes.stream().noneMatch(n -> n.startsWith("io/flinkqwen3/shaded/org/apache/flink")
                    || n.contains("/kafka/")), "Flink and Kafka stay out: lib/ has them");
            // the SQL provider is discoverable, and only through our factory
            String factories = new String(zip.getInputStream(zip.getEntry("META-INF/services/org.apache.flink.table.factories.Factory"))
                    .readAllBytes(), StandardCharsets.UTF_8).strip();
            assertEquals("io.flinkqwen3.flink.sql.Qwen3ModelProviderFactory", factories);
            // the Kafka code is linked against flink-sql-connector-kafka's relocated kafka-clients
            String kafka = new String(zip.getInputStream(zip.getEntry("io/flinkqwen3/flink/Qwen3Kafka$PromptDeserializer.class"))
                    .readAllBytes(), StandardCharsets.ISO_8859_1);
            assertTrue(kafka.contains("org/apache/flink/kafka/shaded/org/apache/kafka/clients/consumer/ConsumerRecord"));
            assertTrue(!kafka.contains("Lorg/apache/kafka/"), "no reference to unrelocated kafka-clients");
        }
    }
}
