package io.flinkqwen3.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.flinkqwen3.testing.Fixtures;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Hugging Face download path against a local server speaking the hub's URL scheme: model info
 * API, /resolve/ with X-Repo-Commit and X-Linked-Etag, a redirect to a "CDN" path for weights, range
 * requests, and a bearer token.
 */
class HubDownloaderTest {
    static final String REPO = "Qwen/Qwen3-Tiny-Test";
    static final String COMMIT = "0123456789abcdef0123456789abcdef01234567";
    static final Path SOURCE = Fixtures.MOE;

    HttpServer server;
    final List<String> requests = new CopyOnWriteArrayList<>();
    final List<String> rangeHeaders = new CopyOnWriteArrayList<>();
    final List<String> authHeaders = new CopyOnWriteArrayList<>();
    volatile String requiredToken;

    @TempDir
    Path cache;

    @BeforeEach
    void start() throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/", this::handle);
        server.start();
    }

    @AfterEach
    void stop() {
        server.stop(0);
    }

    URI endpoint() {
        return URI.create("http://127.0.0.1:" + server.getAddress().getPort());
    }

    static String sha256(Path file) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
    }

    private void handle(HttpExchange ex) throws IOException {
        String path = ex.getRequestURI().getPath();
        requests.add(ex.getRequestMethod() + " " + path);
        authHeaders.add(String.valueOf(ex.getRequestHeaders().getFirst("Authorization")));
        try (ex) {
            if (requiredToken != null && !path.startsWith("/cdn/")
                    && !("Bearer " + requiredToken).equals(ex.getRequestHeaders().getFirst("Authorization"))) {
                ex.sendResponseHeaders(401, -1);
                return;
            }
            if (path.equals("/api/models/" + REPO + "/revision/main")) {
                String siblings;
                try (Stream<Path> files = Files.list(SOURCE)) {
                    siblings = files.map(f -> "{\"rfilename\":\"" + f.getFileName() + "\"}").collect(Collectors.joining(","));
                }
                byte[] body = ("{\"id\":\"" + REPO + "\",\"sha\":\"" + COMMIT + "\",\"siblings\":[" + siblings + "]}")
                        .getBytes(StandardCharsets.UTF_8);
                ex.sendResponseHeaders(200, body.length);
                ex.getResponseBody().write(body);
                return;
            }
            String resolve = "/" + REPO + "/resolve/" + COMMIT + "/";
            if (path.startsWith(resolve)) {
                Path file = SOURCE.resolve(path.substring(resolve.length()));
                if (!Files.exists(file)) {
                    ex.sendResponseHeaders(404, -1);
                    return;
                }
                ex.getResponseHeaders().add("X-Repo-Commit", COMMIT);
                ex.getResponseHeaders().add("X-Linked-Etag", "\"" + sha256(file) + "\"");
                ex.getResponseHeaders().add("X-Linked-Size", String.valueOf(Files.size(file)));
                if (file.toString().endsWith(".safetensors")) {
                    // the CDN is another host name for the same server, as cdn-lfs.huggingface.co is for the hub
                    ex.getResponseHeaders().add("Location", "http://localhost:" + server.getAddress().getPort() + "/cdn/" + file.getFileName());
                    ex.sendResponseHeaders(302, -1);
                    return;
                }
                serve(ex, file);
                return;
            }
            if (path.startsWith("/cdn/")) {
                serve(ex, SOURCE.resolve(path.substring(5)));
                return;
            }
            ex.sendResponseHeaders(404, -1);
        } catch (Exception e) {
            throw new IOException(e);
        }
    }

    private void serve(HttpExchange ex, Path file) throws IOException {
        byte[] all = Files.readAllBytes(file);
        if (ex.getRequestMethod().equals("HEAD")) {
            ex.getResponseHeaders().add("ETag", "\"" + all.length + "\"");
            ex.sendResponseHeaders(200, -1);
            return;
        }
        String range = ex.getRequestHeaders().getFirst("Range");
        int from = 0;
        if (range != null) {
            rangeHeaders.add(range);
            from = Integer.parseInt(range.replace("bytes=", "").replace("-", ""));
            ex.getResponseHeaders().add("Content-Range", "bytes " + from + "-" + (all.length - 1) + "/" + all.length);
            ex.sendResponseHeaders(206, all.length - from);
        } else {
            ex.sendResponseHeaders(200, all.length);
        }
        ex.getResponseBody().write(all, from, all.length - from);
    }

    HubDownloader downloader(boolean offline, String token) {
        return new HubDownloader(new HubDownloader.Settings(cache.resolve("hub"), endpoint(), token, offline), HubDownloader.Progress.NONE);
    }

    @Test
    void downloadsIntoTheHuggingFaceCacheLayoutAndLoads() throws Exception {
        Path snapshot = ModelLocator.resolve(REPO, downloader(false, null));
        Path repo = cache.resolve("hub/models--Qwen--Qwen3-Tiny-Test");
        assertEquals(repo.resolve("snapshots/" + COMMIT), snapshot);
        assertEquals(COMMIT, Files.readString(repo.resolve("refs/main")));
        Path weights = snapshot.resolve("model.safetensors");
        assertTrue(Files.isSymbolicLink(weights), "snapshot files link into blobs/");
        assertEquals(repo.resolve("blobs/" + sha256(SOURCE.resolve("model.safetensors"))), weights.toRealPath());
        assertArrayEquals(Files.readAllBytes(SOURCE.resolve("model.safetensors")), Files.readAllBytes(weights));
        assertTrue(requests.contains("GET /cdn/model.safetensors"), "weights came through the redirect");
        try (var ckpt = SafetensorsCheckpoint.open(snapshot)) {
            assertEquals(8, ckpt.config().numExperts());
        }

        // a second resolve reuses every file: only the metadata requests go out
        requests.clear();
        ModelLocator.resolve(REPO, downloader(false, null));
        assertTrue(requests.stream().noneMatch(r -> r.startsWith("GET /cdn/") || r.contains("/resolve/")), requests.toString());
    }

    @Test
    void resumesAPartialDownloadWithARangeRequest() throws Exception {
        Path blobs = Files.createDirectories(cache.resolve("hub/models--Qwen--Qwen3-Tiny-Test/blobs"));
        byte[] full = Files.readAllBytes(SOURCE.resolve("model.safetensors"));
        int have = full.length / 3;
        Files.write(blobs.resolve(sha256(SOURCE.resolve("model.safetensors")) + ".incomplete"),
                java.util.Arrays.copyOf(full, have));
        Path snapshot = downloader(false, null).download(REPO, "main");
        assertEquals(List.of("bytes=" + have + "-"), rangeHeaders);
        assertArrayEquals(full, Files.readAllBytes(snapshot.resolve("model.safetensors")));
    }

    @Test
    void offlineModeUsesTheCacheAndNeverTheNetwork() {
        var e = assertThrows(ModelFormatException.class, () -> downloader(true, null).download(REPO, "main"));
        assertTrue(e.getMessage().contains("HF_HUB_OFFLINE") && e.getMessage().contains("not in the cache"), e.getMessage());
        assertTrue(requests.isEmpty());

        Path online = downloader(false, null).download(REPO, "main");
        requests.clear();
        assertEquals(online, downloader(true, null).download(REPO, "main"));
        assertTrue(requests.isEmpty(), "offline resolution made requests: " + requests);
    }

    @Test
    void sendsTheTokenToTheHubButNotToTheCdn() {
        requiredToken = "hf_secret";
        var e = assertThrows(ModelFormatException.class, () -> downloader(false, null).download(REPO, "main"));
        assertTrue(e.getMessage().contains("401") || e.getMessage().contains("HF_TOKEN"), e.getMessage());
        requests.clear();
        authHeaders.clear();
        downloader(false, "hf_secret").download(REPO, "main");
        for (int i = 0; i < requests.size(); i++) {
            boolean cdn = requests.get(i).contains("/cdn/");
            assertEquals(cdn ? "null" : "Bearer hf_secret", authHeaders.get(i), requests.get(i));
        }
    }

    @Test
    void environmentSettingsFollowHuggingFaceConventions() {
        var s = HubDownloader.Settings.fromEnvironment(java.util.Map.of("HF_HOME", "/data/hf", "HF_HUB_OFFLINE", "1", "HF_TOKEN", "t"));
        assertEquals(Path.of("/data/hf/hub"), s.hubCache());
        assertTrue(s.offline());
        assertEquals("t", s.token());
        assertEquals(URI.create("https://huggingface.co"), HubDownloader.Settings.fromEnvironment(java.util.Map.of()).endpoint());
    }
}
