package io.flinkqwen3.model;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Downloads a Hugging Face model repository into the standard cache layout that huggingface_hub
 * and transformers share: {@code $HF_HOME/hub/models--Org--Name/{blobs,snapshots/<commit>,refs}}.
 * Files already in the cache are reused, interrupted downloads resume from their
 * {@code .incomplete} blob with an HTTP range request, {@code HF_TOKEN} is sent as a bearer token
 * and {@code HF_HUB_OFFLINE=1} resolves from the cache without any network access.
 */
public final class HubDownloader {
    /** The files a Qwen3 checkpoint needs; weights are every *.safetensors of the snapshot. */
    private static final List<String> METADATA_FILES = List.of(
            "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors.index.json");

    public interface Progress {
        Progress NONE = (file, done, total) -> {};

        void update(String file, long bytesDone, long bytesTotal);
    }

    public record Settings(Path hubCache, URI endpoint, String token, boolean offline) {
        /** HF_HOME (default ~/.cache/huggingface), HF_HUB_CACHE, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE. */
        public static Settings fromEnvironment(Map<String, String> env) {
            Path home = env.containsKey("HF_HOME") ? Path.of(env.get("HF_HOME"))
                    : Path.of(System.getProperty("user.home"), ".cache", "huggingface");
            Path hub = env.containsKey("HF_HUB_CACHE") ? Path.of(env.get("HF_HUB_CACHE")) : home.resolve("hub");
            String offline = env.getOrDefault("HF_HUB_OFFLINE", "0").toLowerCase(Locale.ROOT);
            return new Settings(hub, URI.create(env.getOrDefault("HF_ENDPOINT", "https://huggingface.co")),
                    env.get("HF_TOKEN"), offline.equals("1") || offline.equals("true") || offline.equals("yes"));
        }
    }

    private final Settings settings;
    private final Progress progress;
    private final HttpClient http;

    public HubDownloader(Settings settings, Progress progress) {
        this.settings = settings;
        this.progress = progress;
        this.http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(30))
                .followRedirects(HttpClient.Redirect.NEVER).build();
    }

    public static boolean looksLikeRepoId(String location) {
        return location.matches("[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*") && !Files.exists(Path.of(location));
    }

    private Path repoDir(String repoId) {
        return settings.hubCache().resolve("models--" + repoId.replace("/", "--"));
    }

    /** Returns the snapshot directory of {@code repoId} at {@code revision}, downloading what is missing. */
    public Path download(String repoId, String revision) {
        Path repo = repoDir(repoId);
        if (settings.offline()) {
            return cachedSnapshot(repoId, revision, "HF_HUB_OFFLINE is set");
        }
        JsonNode info;
        try {
            info = ModelConfig.JSON.readTree(get(settings.endpoint() + "/api/models/" + repoId + "/revision/" + encode(revision)));
        } catch (IOException e) {
            return cachedSnapshot(repoId, revision, "the hub at " + settings.endpoint() + " is unreachable (" + e.getMessage() + ")");
        }
        String commit = info.path("sha").asText(null);
        if (commit == null) {
            throw new ModelFormatException(settings.endpoint() + ": model info of " + repoId + " has no 'sha'");
        }
        List<String> files = new ArrayList<>();
        for (JsonNode sibling : info.path("siblings")) {
            String name = sibling.path("rfilename").asText();
            if (METADATA_FILES.contains(name) || (name.endsWith(".safetensors") && !name.contains("/"))) {
                files.add(name);
            }
        }
        if (files.stream().noneMatch(f -> f.endsWith(".safetensors"))) {
            throw new ModelFormatException(repoId + "@" + revision + ": no *.safetensors weights in the repository (files: "
                    + files + "); for GGUF repositories download the .gguf file and pass its path");
        }
        Path snapshot = repo.resolve("snapshots").resolve(commit);
        try {
            Files.createDirectories(repo.resolve("blobs"));
            Files.createDirectories(snapshot);
            for (String file : files) {
                fetch(repoId, commit, file, repo, snapshot);
            }
            Files.createDirectories(repo.resolve("refs"));
            Files.writeString(repo.resolve("refs").resolve(revision), commit);
        } catch (IOException e) {
            throw new ModelFormatException("downloading " + repoId + " into " + repo + " failed: " + e.getMessage()
                    + " (run again to resume; set HF_TOKEN for gated repositories)", e);
        }
        return snapshot;
    }

    private Path cachedSnapshot(String repoId, String revision, String why) {
        Path repo = repoDir(repoId);
        Path ref = repo.resolve("refs").resolve(revision);
        try {
            String commit = Files.exists(ref) ? Files.readString(ref).trim() : revision;
            Path snapshot = repo.resolve("snapshots").resolve(commit);
            if (Files.isRegularFile(snapshot.resolve("config.json"))) {
                return snapshot;
            }
        } catch (IOException e) {
            // fall through to the error below
        }
        throw new ModelFormatException(repoId + "@" + revision + " is not in the cache " + settings.hubCache() + " and " + why
                + ": download it once with network access (unset HF_HUB_OFFLINE) or pass a local directory");
    }

    private void fetch(String repoId, String commit, String file, Path repo, Path snapshot) throws IOException {
        Path link = snapshot.resolve(file);
        if (Files.exists(link)) {
            return; // already in this snapshot
        }
        String url = settings.endpoint() + "/" + repoId + "/resolve/" + commit + "/" + encode(file);
        HttpResponse<Void> head = send(HttpRequest.newBuilder(URI.create(url)).method("HEAD", HttpRequest.BodyPublishers.noBody()),
                HttpResponse.BodyHandlers.discarding(), true);
        if (head.statusCode() >= 400) {
            throw new IOException("HEAD " + url + " returned HTTP " + head.statusCode() + hint(head.statusCode()));
        }
        String etag = head.headers().firstValue("X-Linked-Etag").or(() -> head.headers().firstValue("ETag"))
                .orElseThrow(() -> new IOException("HEAD " + url + " returned no ETag"))
                .replace("\"", "").replaceFirst("^W/", "");
        long size = head.headers().firstValueAsLong("X-Linked-Size")
                .orElse(head.headers().firstValueAsLong("Content-Length").orElse(-1));
        Path blob = repo.resolve("blobs").resolve(etag);
        if (!Files.exists(blob)) {
            downloadBlob(url, file, blob, size);
        }
        Files.createDirectories(link.getParent());
        Files.createSymbolicLink(link, link.getParent().relativize(blob));
    }

    private void downloadBlob(String url, String file, Path blob, long size) throws IOException {
        Path partial = blob.resolveSibling(blob.getFileName() + ".incomplete");
        long have = Files.exists(partial) ? Files.size(partial) : 0;
        var request = HttpRequest.newBuilder(URI.create(url)).GET();
        if (have > 0) {
            request.header("Range", "bytes=" + have + "-");
        }
        HttpResponse<InputStream> response = sendFollowingRedirects(request, url);
        int status = response.statusCode();
        if (status >= 400 && status != 416) {
            response.body().close();
            throw new IOException("GET " + url + " returned HTTP " + status + hint(status));
        }
        boolean append = status == 206;
        if (!append) {
            have = 0; // the server ignored the range: start over
        }
        if (status != 416) {
            try (InputStream in = response.body();
                 OutputStream out = Files.newOutputStream(partial, StandardOpenOption.CREATE,
                         append ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING)) {
                byte[] buffer = new byte[1 << 20];
                long done = have, lastReport = 0;
                for (int n; (n = in.read(buffer)) > 0; ) {
                    out.write(buffer, 0, n);
                    done += n;
                    if (done - lastReport >= (8 << 20)) {
                        progress.update(file, done, size);
                        lastReport = done;
                    }
                }
                progress.update(file, done, size);
            }
        }
        if (size >= 0 && Files.size(partial) != size) {
            throw new IOException(file + ": downloaded " + Files.size(partial) + " of " + size + " bytes");
        }
        Files.move(partial, blob, StandardCopyOption.ATOMIC_MOVE);
    }

    private HttpResponse<InputStream> sendFollowingRedirects(HttpRequest.Builder request, String url) throws IOException {
        String hubHost = URI.create(url).getHost();
        boolean withToken = true;
        for (int hops = 0; hops < 10; hops++) {
            HttpResponse<InputStream> response = send(request, HttpResponse.BodyHandlers.ofInputStream(), withToken);
            int status = response.statusCode();
            if (status < 300 || status >= 400) {
                return response;
            }
            response.body().close();
            String location = response.headers().firstValue("Location")
                    .orElseThrow(() -> new IOException("redirect without Location from " + url));
            URI next = response.uri().resolve(location);
            var redirected = HttpRequest.newBuilder(next).GET();
            request.build().headers().firstValue("Range").ifPresent(r -> redirected.header("Range", r));
            request = redirected;
            // the bearer token goes only to the hub itself, never to a CDN on another host
            withToken = hubHost != null && hubHost.equals(next.getHost());
        }
        throw new IOException("too many redirects from " + url);
    }

    private String get(String url) throws IOException {
        HttpResponse<String> response = send(HttpRequest.newBuilder(URI.create(url)).GET(), HttpResponse.BodyHandlers.ofString(), true);
        if (response.statusCode() >= 400) {
            throw new IOException("GET " + url + " returned HTTP " + response.statusCode() + hint(response.statusCode()));
        }
        return response.body();
    }

    private <T> HttpResponse<T> send(HttpRequest.Builder request, HttpResponse.BodyHandler<T> body, boolean withToken)
            throws IOException {
        if (withToken && settings.token() != null && !settings.token().isBlank()) {
            request.setHeader("Authorization", "Bearer " + settings.token());
        }
        try {
            return http.send(request.timeout(Duration.ofMinutes(30)).build(), body);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }

    private static String hint(int status) {
        return status == 401 || status == 403 ? " (set HF_TOKEN to a token with access to this repository)"
                : status == 404 ? " (check the repository id and revision)" : "";
    }

    private static String encode(String path) {
        return URLEncoder.encode(path, StandardCharsets.UTF_8).replace("+", "%20").replace("%2F", "/");
    }
}
