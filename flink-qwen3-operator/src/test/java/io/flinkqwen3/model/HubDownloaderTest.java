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
import java.time.Duration;
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
    /** What a hostile or broken mirror answers instead of the real values (null: the real ones). */
    volatile String shaOverride, etagOverride, cdnLocationOverride, extraSibling;
    /** Bytes of a /cdn/ body after which the server stops sending (and waits until the test ends); -1: never. */
    volatile int stallAfter = -1;
    final java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);

    @TempDir
    Path cache;

    @BeforeEach
    void start() throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/", this::handle);
        server.setExecutor(java.util.concurrent.Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "hub-test-server");
            t.setDaemon(true);
            return t;
        }));
        server.start();
    }

    @AfterEach
    void stop() {
        release.countDown();
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
                if (extraSibling != null) {
                    siblings += ",{\"rfilename\":\"" + extraSibling + "\"}";
                }
                String sha = shaOverride != null ? shaOverride : COMMIT;
                byte[] body = ("{\"id\":\"" + REPO + "\",\"sha\":\"" + sha + "\",\"siblings\":[" + siblings + "]}")
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
                ex.getResponseHeaders().add("X-Linked-Etag", "\"" + (etagOverride != null ? etagOverride : sha256(file)) + "\"");
                ex.getResponseHeaders().add("X-Linked-Size", String.valueOf(Files.size(file)));
                if (file.toString().endsWith(".safetensors")) {
                    // the CDN is another host name for the same server, as cdn-lfs.huggingface.co is for the hub
                    ex.getResponseHeaders().add("Location", cdnLocationOverride != null ? cdnLocationOverride
                            : "http://localhost:" + server.getAddress().getPort() + "/cdn/" + file.getFileName());
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
        int stall = stallAfter;
        if (stall >= 0 && ex.getRequestURI().getPath().startsWith("/cdn/") && from < stall) {
            ex.getResponseBody().write(all, from, stall - from);
            ex.getResponseBody().flush();
            try {
                release.await(); // the connection stays open, and silent
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return;
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

    HubDownloader downloader(URI endpoint, Duration timeout) {
        return new HubDownloader(new HubDownloader.Settings(cache.resolve("hub"), endpoint, null, false, timeout, timeout),
                HubDownloader.Progress.NONE);
    }

    /** Every file and directory the downloader made lies inside $HF_HOME/hub. */
    void assertNothingOutsideTheHubCache() throws IOException {
        try (Stream<Path> all = Files.walk(cache)) {
            List<Path> outside = all.filter(p -> !p.equals(cache) && !p.startsWith(cache.resolve("hub"))).toList();
            assertEquals(List.of(), outside);
        }
    }

    @Test
    void aMirrorCannotMakeTheDownloaderWriteOutsideTheCache() throws Exception {
        shaOverride = "../../../escaped";
        var e = assertThrows(ModelFormatException.class, () -> downloader(false, null).download(REPO, "main"));
        assertTrue(e.getMessage().contains("field 'sha' is '../../../escaped'") && e.getMessage().contains("40 hex digits"),
                e.getMessage());
        assertNothingOutsideTheHubCache();
        shaOverride = null;

        etagOverride = "../../../escaped-blob";
        e = assertThrows(ModelFormatException.class, () -> downloader(false, null).download(REPO, "main"));
        assertTrue(e.getMessage().contains("ETag '\"../../../escaped-blob\"' is not a git or sha256 hash"), e.getMessage());
        assertNothingOutsideTheHubCache();
        etagOverride = null;

        extraSibling = "..evil.safetensors";
        e = assertThrows(ModelFormatException.class, () -> downloader(false, null).download(REPO, "main"));
        assertTrue(e.getMessage().contains("file name '..evil.safetensors' in 'siblings' is not a plain file name"), e.getMessage());
        extraSibling = null;

        cdnLocationOverride = "file:///etc/passwd";
        e = assertThrows(ModelFormatException.class, () -> downloader(false, null).download(REPO, "main"));
        assertTrue(e.getMessage().contains("refusing to fetch file:///etc/passwd"), e.getMessage());
        assertTrue(requests.stream().noneMatch(r -> r.contains("passwd")));
        cdnLocationOverride = null;

        for (String revision : new String[] {"../../../escaped", "a/../../b", "..", "/abs", "main\u0000"}) {
            requests.clear();
            e = assertThrows(ModelFormatException.class, () -> downloader(false, null).download(REPO, revision));
            assertTrue(e.getMessage().contains("is not a revision"), e.getMessage());
            assertTrue(requests.isEmpty(), "no request for revision " + revision);
        }
        assertNothingOutsideTheHubCache();

        // a ref file that does not hold a commit (a tampered cache) is not followed
        Path refs = Files.createDirectories(cache.resolve("hub/models--Qwen--Qwen3-Tiny-Test/refs"));
        Files.writeString(refs.resolve("main"), "../../../../escaped");
        e = assertThrows(ModelFormatException.class, () -> downloader(true, null).download(REPO, "main"));
        assertTrue(e.getMessage().contains("not in the cache"), e.getMessage());

        // and the honest answer still downloads
        assertEquals(cache.resolve("hub/models--Qwen--Qwen3-Tiny-Test/snapshots/" + COMMIT), downloader(false, null).download(REPO, "main"));
        assertNothingOutsideTheHubCache();
    }

    /** Warnings logged by HubDownloader (through SLF4J, bound to log4j in the tests). */
    static List<String> captureWarnings() {
        List<String> warnings = new CopyOnWriteArrayList<>();
        var logger = (org.apache.logging.log4j.core.Logger) org.apache.logging.log4j.LogManager.getLogger(HubDownloader.class);
        org.apache.logging.log4j.core.config.Configurator.setLevel(HubDownloader.class.getName(), org.apache.logging.log4j.Level.WARN);
        var appender = new org.apache.logging.log4j.core.appender.AbstractAppender("capture-" + System.nanoTime(), null, null, true,
                org.apache.logging.log4j.core.config.Property.EMPTY_ARRAY) {
            @Override
            public void append(org.apache.logging.log4j.core.LogEvent event) {
                warnings.add(event.getLevel() + " " + event.getMessage().getFormattedMessage());
            }
        };
        appender.start();
        logger.get().addAppender(appender, org.apache.logging.log4j.Level.WARN, null);
        return warnings;
    }

    @Test
    void aHubThatAcceptsButNeverAnswersTimesOutAndFallsBackToTheCache() throws Exception {
        try (var silent = new java.net.ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
            // the kernel completes the handshakes; nobody ever reads or answers
            URI hub = URI.create("http://127.0.0.1:" + silent.getLocalPort());
            long start = System.nanoTime();
            var e = assertThrows(ModelFormatException.class, () -> downloader(hub, Duration.ofMillis(500)).download(REPO, "main"));
            double seconds = (System.nanoTime() - start) / 1e9;
            assertTrue(seconds < 10, "gave up after " + seconds + " s");
            assertTrue(e.getMessage().contains("is unreachable") && e.getMessage().contains("timed out")
                    && e.getMessage().contains("not in the cache"), e.getMessage());
            assertTrue(!e.getMessage().contains("(null)") && !e.getMessage().contains("HF_HUB_OFFLINE"), e.getMessage());

            Path online = downloader(false, null).download(REPO, "main");
            List<String> warnings = captureWarnings();
            start = System.nanoTime();
            assertEquals(online, downloader(hub, Duration.ofMillis(500)).download(REPO, "main"));
            seconds = (System.nanoTime() - start) / 1e9;
            assertTrue(seconds < 10, "fell back after " + seconds + " s");
            assertTrue(warnings.stream().anyMatch(w -> w.startsWith("WARN " + REPO + "@main: the hub at " + hub + " is unreachable")
                    && w.contains("using the cached snapshot " + online)), warnings.toString());
        }
    }

    @Test
    void aDownloadThatStallsMidBodyTimesOutAndResumesLater() throws Exception {
        byte[] full = Files.readAllBytes(SOURCE.resolve("model.safetensors"));
        stallAfter = full.length / 2;
        long start = System.nanoTime();
        var e = assertThrows(ModelFormatException.class, () -> downloader(endpoint(), Duration.ofMillis(700)).download(REPO, "main"));
        double seconds = (System.nanoTime() - start) / 1e9;
        assertTrue(seconds < 15, "gave up after " + seconds + " s");
        assertTrue(e.getMessage().contains("timed out") && e.getMessage().contains("run again to resume"), e.getMessage());
        Path partial = cache.resolve("hub/models--Qwen--Qwen3-Tiny-Test/blobs/" + sha256(SOURCE.resolve("model.safetensors")) + ".incomplete");
        assertEquals(full.length / 2, Files.size(partial), "the bytes received so far are kept");

        stallAfter = -1;
        Path snapshot = downloader(false, null).download(REPO, "main");
        assertEquals(List.of("bytes=" + full.length / 2 + "-"), rangeHeaders);
        assertArrayEquals(full, Files.readAllBytes(snapshot.resolve("model.safetensors")));
    }

    @Test
    void timeoutsComeFromTheEnvironment() {
        var s = HubDownloader.Settings.fromEnvironment(java.util.Map.of("HF_HUB_ETAG_TIMEOUT", "2.5", "HF_HUB_DOWNLOAD_TIMEOUT", "30"));
        assertEquals(Duration.ofMillis(2500), s.metadataTimeout());
        assertEquals(Duration.ofSeconds(30), s.downloadTimeout());
        assertEquals(Duration.ofSeconds(10), HubDownloader.Settings.fromEnvironment(java.util.Map.of()).metadataTimeout());
        for (String bad : new String[] {"abc", "-1", "0", "1e9"}) {
            var e = assertThrows(IllegalArgumentException.class,
                    () -> HubDownloader.Settings.fromEnvironment(java.util.Map.of("HF_HUB_DOWNLOAD_TIMEOUT", bad)));
            assertTrue(e.getMessage().startsWith("HF_HUB_DOWNLOAD_TIMEOUT='" + bad + "'"), e.getMessage());
        }
    }
}
