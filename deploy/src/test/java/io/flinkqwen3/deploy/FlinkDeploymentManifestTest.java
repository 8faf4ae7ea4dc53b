package io.flinkqwen3.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.networknt.schema.Error;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Every FlinkDeployment under deploy/kubernetes/ against the CRD's openAPIV3Schema published in
 * org.apache.flink:flink-kubernetes-operator-api (META-INF/fabric8), as the API server validates it,
 * with unknown fields rejected as {@code kubectl apply --validate=strict} rejects them (the schema
 * alone would let the server drop a misspelt field silently).
 *
 * <p>The newest release of that artifact on Maven Central here, 1.10.0, predates Flink 2: its
 * flinkVersion enum ends at v1_20. The operator added v2_0 in 1.11, v2_1 in 1.13 (and v2_2 since);
 * those names are added to the enum, the rest of the schema is used as published.
 */
class FlinkDeploymentManifestTest {
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
    private static final Path MANIFESTS = Path.of("kubernetes");
    private static Schema schema;

    @BeforeAll
    static void loadCrd() throws IOException {
        JsonNode crd;
        try (var in = FlinkDeploymentManifestTest.class.getResourceAsStream("/META-INF/fabric8/flinkdeployments.flink.apache.org-v1.yml")) {
            crd = YAML.readTree(in);
        }
        assertEquals("FlinkDeployment", crd.path("spec").path("names").path("kind").asText());
        JsonNode version = null;
        for (JsonNode v : crd.path("spec").path("versions")) {
            if (v.path("name").asText().equals("v1beta1")) {
                version = v;
            }
        }
        ObjectNode openApi = (ObjectNode) version.path("schema").path("openAPIV3Schema").deepCopy();
        ArrayNode flinkVersions = (ArrayNode) openApi.path("properties").path("spec").path("properties").path("flinkVersion").path("enum");
        flinkVersions.add("v2_0").add("v2_1").add("v2_2");
        // what the API server checks itself, outside the CRD's schema
        var top = (ObjectNode) openApi.path("properties");
        top.putObject("apiVersion").put("type", "string").putArray("enum").add("flink.apache.org/v1beta1");
        top.putObject("kind").put("type", "string").putArray("enum").add("FlinkDeployment");
        top.putObject("metadata").put("type", "object").putArray("required").add("name");
        closeObjects(openApi);
        schema = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_4).getSchema(openApi);
    }

    /** Objects with declared properties accept no other field (strict field validation), unless the CRD says otherwise. */
    private static void closeObjects(JsonNode node) {
        if (node instanceof ObjectNode o && o.has("properties") && !o.has("additionalProperties")
                && !o.path("x-kubernetes-preserve-unknown-fields").asBoolean(false)) {
            o.put("additionalProperties", false);
        }
        node.forEach(FlinkDeploymentManifestTest::closeObjects);
    }

    private static List<JsonNode> documents(Path file) throws IOException {
        try (var parser = YAML.getFactory().createParser(file.toFile())) {
            List<JsonNode> docs = new ArrayList<>();
            YAML.readValues(parser, JsonNode.class).forEachRemaining(docs::add);
            return docs;
        }
    }

    private static List<String> errors(JsonNode manifest) {
        return schema.validate(manifest).stream().map(Error::toString).toList();
    }

    @Test
    void everyManifestIsValid() throws IOException {
        List<Path> files;
        try (Stream<Path> s = Files.list(MANIFESTS)) {
            files = s.filter(f -> f.toString().endsWith(".yaml")).sorted().toList();
        }
        int flinkDeployments = 0;
        for (Path file : files) {
            for (JsonNode doc : documents(file)) {
                String kind = doc.path("kind").asText();
                if (kind.equals("FlinkDeployment")) {
                    assertEquals(List.of(), errors(doc), file.toString());
                    flinkDeployments++;
                } else {
                    assertTrue(Set.of("PersistentVolumeClaim").contains(kind), file + ": unexpected kind '" + kind + "'");
                }
            }
        }
        assertEquals(2, flinkDeployments, "application mode (Kafka job) and session mode (SQL)");
    }

    @Test
    void aMisspeltFieldFails() throws IOException {
        ObjectNode manifest = (ObjectNode) documents(MANIFESTS.resolve("kafka-inference-job.yaml")).getFirst();
        var taskManager = (ObjectNode) manifest.path("spec").path("taskManager");
        taskManager.set("replica", taskManager.remove("replicas"));
        List<String> errors = errors(manifest);
        assertEquals(1, errors.size(), errors.toString());
        assertTrue(errors.getFirst().startsWith("/spec/taskManager: property 'replica' is not defined in the schema"), errors.toString());

        // inside the pod template too (a Kubernetes PodSpec)
        manifest = (ObjectNode) documents(MANIFESTS.resolve("kafka-inference-job.yaml")).getFirst();
        var container = (ObjectNode) manifest.path("spec").path("taskManager").path("podTemplate").path("spec").path("containers").get(0);
        container.set("volumeMount", container.remove("volumeMounts"));
        errors = errors(manifest);
        assertEquals(1, errors.size(), errors.toString());
        assertTrue(errors.getFirst().startsWith("/spec/taskManager/podTemplate/spec/containers/0: property 'volumeMount' is not defined"),
                errors.toString());
    }

    @Test
    void aWrongTypeOrValueFails() throws IOException {
        ObjectNode manifest = (ObjectNode) documents(MANIFESTS.resolve("sql-session-cluster.yaml")).getFirst();
        ((ObjectNode) manifest.path("spec").path("taskManager")).put("replicas", "two");
        ((ObjectNode) manifest.path("spec")).put("flinkVersion", "v2_9");
        List<String> errors = errors(manifest);
        assertEquals(2, errors.size(), errors.toString());
        assertTrue(errors.stream().anyMatch(e -> e.equals("/spec/taskManager/replicas: string found, integer expected")), errors.toString());
        assertTrue(errors.stream().anyMatch(e -> e.startsWith("/spec/flinkVersion: does not have a value in the enumeration")), errors.toString());
    }
}
