package io.flinkqwen3.model;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Downloads a Hugging Face model repository into the standard cache layout that huggingface_hub
 * and transformers share: {@code $HF_HOME/hub/models--Org--Name/{blobs,snapshots/<commit>,refs}}.
 * Files already in the cache are reused, interrupted downloads resume from their
 * {@code .incomplete} blob with an HTTP range request, {@code HF_TOKEN} is sent as a bearer token
 * and {@code HF_HUB_OFFLINE=1} resolves from the cache without any network access.
 *
 * <p>What the server says is never trusted with the file system: the commit must be 40 hex
 * digits, an ETag a git or sha256 hash, file names plain names, redirects http(s), and every path
 * is checked to lie inside the cache before anything is created. Every connect and every read
 * has a timeout of seconds; when the hub cannot be reached (or stops answering) and a complete
 * snapshot of the revision is cached, that snapshot is used and a warning is logged.
 */
public final class HubDownloader {
    private static final Logger LOG = LoggerFactory.getLogger(HubDownloader.class);

    /** The files a Qwen3 checkpoint needs; weights are every *.safetensors of the snapshot. */
    private static final List<String> METADATA_FILES = List.of(
            "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors.index.json");
    private static final Pattern REPO_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*");
    private static final Pattern COMMIT = Pattern.compile("[0-9a-f]{40}");
    /** git blob sha1 (regular files) or sha256 (LFS files), as the hub sends them. */
    private static final Pattern ETAG = Pattern.compile("[0-9a-f]{40}|[0-9a-f]{64}");
    private static final Pattern FILE_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*");
    /** A branch, tag, commit or refs/pr/N: path segments of safe characters, no "." or ".." segment. */
    private static final Pattern REVISION = Pattern.compile("(?!.*(^|/)\\.{1,2}(/|$))[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*");
    /** The model info of a repository with thousands of files is a few MB. */
    private static final int MAX_INFO_BYTES = 32 << 20;

    public interface Progress {
        Progress NONE = (file, done, total) -> {};

        void update(String file, long bytesDone, long bytesTotal);
    }

    /**
     * Where the cache is, which hub, the token, offline mode, and the timeouts of the metadata
     * requests (model info, HEAD) and of downloads; each bounds a connect and every single read.
     */
    public record Settings(Path hubCache, URI endpoint, String token, boolean offline, Duration metadataTimeout,
                           Duration downloadTimeout) {
        /** huggingface_hub's defaults for HF_HUB_ETAG_TIMEOUT and HF_HUB_DOWNLOAD_TIMEOUT. */
        public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(10);

        public Settings {
            for (Duration d : new Duration[] {metadataTimeout, downloadTimeout}) {
                if (d == null || d.isNegative() || d.isZero() || d.toMillis() > Integer.MAX_VALUE) {
                    throw new IllegalArgumentException("hub timeouts must be positive durations, got " + d);
                }
            }
        }

        public Settings(Path hubCache, URI endpoint, String token, boolean offline) {
            this(hubCache, endpoint, token, offline, DEFAULT_TIMEOUT, DEFAULT_TIMEOUT);
        }

        /**
         * HF_HOME (default ~/.cache/huggingface), HF_HUB_CACHE, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE,
         * HF_HUB_ETAG_TIMEOUT and HF_HUB_DOWNLOAD_TIMEOUT (seconds, default 10).
         */
        public static Settings fromEnvironment(Map<String, String> env) {
            Path home = env.containsKey("HF_HOME") ? Path.of(env.get("HF_HOME"))
                    : Path.of(System.getProperty("user.home"), ".cache", "huggingface");
            Path hub = env.containsKey("HF_HUB_CACHE") ? Path.of(env.get("HF_HUB_CACHE")) : home.resolve("hub");
            String offline = env.getOrDefault("HF_HUB_OFFLINE", "0").toLowerCase(Locale.ROOT);
            return new Settings(hub, URI.create(env.getOrDefault("HF_ENDPOINT", "https://huggingface.co")),
                    env.get("HF_TOKEN"), offline.equals("1") || offline.equals("true") || offline.equals("yes"),
                    seconds(env, "HF_HUB_ETAG_TIMEOUT"), seconds(env, "HF_HUB_DOWNLOAD_TIMEOUT"));
        }

        private static Duration seconds(Map<String, String> env, String name) {
            String value = env.get(name);
            if (value == null || value.isBlank()) {
                return DEFAULT_TIMEOUT;
            }
            try {
                double s = Double.parseDouble(value.trim());
                if (s > 0 && s <= 86_400) {
                    return Duration.ofMillis(Math.max(1, Math.round(s * 1000)));
                }
            } catch (NumberFormatException e) {
                // refused below
            }
            throw new IllegalArgumentException(name + "='" + value + "': expected a number of seconds in (0, 86400]");
        }
    }

    /** An HTTP error status: the hub answered, so a cached snapshot is not silently used instead. */
    private static final class StatusException extends IOException {
        final int status;

        StatusException(String message, int status) {
            super(message);
            this.status = status;
        }
    }

    private final Settings settings;
    private final Progress progress;

    public HubDownloader(Settings settings, Progress progress) {
        this.settings = settings;
        this.progress = progress;
    }

    public static boolean looksLikeRepoId(String location) {
        if (!REPO_ID.matcher(location).matches()) {
            return false;
        }
        try {
            return !Files.exists(Path.of(location));
        } catch (InvalidPathException e) {
            return true;
        }
    }

    private Path cacheRoot() {
        return settings.hubCache().toAbsolutePath().normalize();
    }

    /** {@code path}, which must lie inside {@code root} (both normalized), or a ModelFormatException. */
    private static Path inside(Path root, Path path, String what) {
        Path p = path.toAbsolutePath().normalize();
        if (!p.startsWith(root) || p.equals(root)) {
            throw new ModelFormatException("refusing " + what + " " + path + ": it is outside " + root);
        }
        return p;
    }

    private Path repoDir(String repoId) {
        return inside(cacheRoot(), cacheRoot().resolve("models--" + repoId.replace("/", "--")), "the repository directory");
    }

    private Path refFile(Path repo, String revision) {
        return inside(repo.resolve("refs"), repo.resolve("refs").resolve(revision), "the ref");
    }

    private static void checkRequest(String repoId, String revision) {
        if (repoId == null || !REPO_ID.matcher(repoId).matches()) {
            throw new ModelFormatException("'" + repoId + "' is not a Hugging Face repo id like Qwen/Qwen3-0.6B");
        }
        if (revision == null || revision.length() > 256 || !REVISION.matcher(revision).matches()) {
            throw new ModelFormatException(repoId + "@" + revision + ": '" + revision + "' is not a revision"
                    + " (a branch, tag or commit: letters, digits, '.', '_', '-' and '/' between names)");
        }
    }

    /** Returns the snapshot directory of {@code repoId} at {@code revision}, downloading what is missing. */
    public Path download(String repoId, String revision) {
        checkRequest(repoId, revision);
        Path repo = repoDir(repoId);
        if (settings.offline()) {
            return cachedSnapshot(repoId, revision, "HF_HUB_OFFLINE is set", null);
        }
        String infoUrl = settings.endpoint() + "/api/models/" + repoId + "/revision/" + encode(revision);
        JsonNode info;
        try {
            info = ModelConfig.JSON.readTree(get(infoUrl));
        } catch (StatusException e) {
            if (e.status < 500) {
                throw new ModelFormatException(repoId + "@" + revision + ": " + e.getMessage(), e);
            }
            return cachedSnapshot(repoId, revision, "the hub at " + settings.endpoint() + " failed (" + e.getMessage() + ")", e);
        } catch (IOException e) {
            return cachedSnapshot(repoId, revision, "the hub at " + settings.endpoint() + " is unreachable (" + describe(e) + ")", e);
        }
        String commit = info == null ? null : info.path("sha").asText(null);
        if (commit == null || !COMMIT.matcher(commit).matches()) {
            throw new ModelFormatException(infoUrl + ": field 'sha' is " + (commit == null ? "missing" : "'" + commit + "'")
                    + ", expected a commit hash of 40 hex digits");
        }
        List<String> files = new ArrayList<>();
        for (JsonNode sibling : info.path("siblings")) {
            String name = sibling.path("rfilename").asText();
            if (METADATA_FILES.contains(name) || (name.endsWith(".safetensors") && !name.contains("/"))) {
                if (!FILE_NAME.matcher(name).matches()) {
                    throw new ModelFormatException(infoUrl + ": file name '" + name + "' in 'siblings' is not a plain file name");
                }
                files.add(name);
            }
        }
        if (files.stream().noneMatch(f -> f.endsWith(".safetensors"))) {
            throw new ModelFormatException(repoId + "@" + revision + ": no *.safetensors weights in the repository (files: "
                    + files + "); for GGUF repositories download the .gguf file and pass its path");
        }
        Path snapshot = inside(repo.resolve("snapshots"), repo.resolve("snapshots").resolve(commit), "the snapshot");
        try {
            Files.createDirectories(repo.resolve("blobs"));
            Files.createDirectories(snapshot);
            for (String file : files) {
                fetch(repoId, commit, file, repo, snapshot);
            }
            Path ref = refFile(repo, revision);
            Files.createDirectories(ref.getParent());
            Files.writeString(ref, commit);
        } catch (IOException e) {
            if (!(e instanceof StatusException s && s.status < 500)) {
                Path cached = completeCachedSnapshot(repoId, revision);
                if (cached != null) {
                    warnFallback(repoId, revision, cached, "downloading from " + settings.endpoint() + " failed (" + describe(e) + ")");
                    return cached;
                }
            }
            throw new ModelFormatException("downloading " + repoId + " into " + repo + " failed: " + describe(e)
                    + " (run again to resume; set HF_TOKEN for gated repositories)", e);
        }
        return snapshot;
    }

    private void warnFallback(String repoId, String revision, Path snapshot, String why) {
        LOG.warn("{}@{}: {}; using the cached snapshot {}", repoId, revision, why, snapshot);
    }

    /** The cached snapshot of the revision when it looks complete (config and weights), else null. */
    private Path completeCachedSnapshot(String repoId, String revision) {
        Path repo = repoDir(repoId);
        Path ref = refFile(repo, revision);
        try {
            String commit = Files.isRegularFile(ref) ? Files.readString(ref).trim() : revision;
            if (!COMMIT.matcher(commit).matches()) {
                return null; // a branch without a ref, or a ref file that is not a commit: nothing trustworthy cached
            }
            Path snapshot = inside(repo.resolve("snapshots"), repo.resolve("snapshots").resolve(commit), "the snapshot");
            boolean weights = Files.isRegularFile(snapshot.resolve("model.safetensors"))
                    || Files.isRegularFile(snapshot.resolve("model.safetensors.index.json"));
            return Files.isRegularFile(snapshot.resolve("config.json")) && weights ? snapshot : null;
        } catch (IOException e) {
            return null;
        }
    }

    private Path cachedSnapshot(String repoId, String revision, String why, IOException cause) {
        Path snapshot = completeCachedSnapshot(repoId, revision);
        if (snapshot != null) {
            if (cause != null) {
                warnFallback(repoId, revision, snapshot, why);
            }
            return snapshot;
        }
        String advice = settings.offline()
                ? "download it once with network access (unset HF_HUB_OFFLINE) or pass a local directory"
                : "check the network or HF_ENDPOINT, or pass a local directory";
        throw new ModelFormatException(repoId + "@" + revision + " is not in the cache " + settings.hubCache() + " and "
                + why + ": " + advice, cause);
    }

    private void fetch(String repoId, String commit, String file, Path repo, Path snapshot) throws IOException {
        Path link = inside(snapshot, snapshot.resolve(file), "the file");
        if (Files.exists(link)) {
            return; // already in this snapshot
        }
        String url = settings.endpoint() + "/" + repoId + "/resolve/" + commit + "/" + encode(file);
        String etag;
        long size;
        HttpURLConnection head = open(URI.create(url), "HEAD", settings.metadataTimeout(), true, null);
        try {
            int status = head.getResponseCode();
            if (status >= 400) {
                throw new StatusException("HEAD " + url + " returned HTTP " + status + hint(status), status);
            }
            String header = head.getHeaderField("X-Linked-Etag") != null ? head.getHeaderField("X-Linked-Etag")
                    : head.getHeaderField("ETag");
            if (header == null) {
                throw new IOException("HEAD " + url + " returned no ETag");
            }
            etag = header.trim().replaceFirst("^W/", "").replace("\"", "");
            if (!ETAG.matcher(etag).matches()) {
                throw new ModelFormatException("HEAD " + url + ": ETag '" + header + "' is not a git or sha256 hash"
                        + " (40 or 64 hex digits); refusing to name a cache file after it");
            }
            size = headerLong(head, "X-Linked-Size", headerLong(head, "Content-Length", -1));
        } finally {
            head.disconnect();
        }
        Path blob = inside(repo.resolve("blobs"), repo.resolve("blobs").resolve(etag), "the blob");
        if (!Files.exists(blob)) {
            downloadBlob(url, file, blob, size);
        }
        Files.createDirectories(link.getParent());
        Files.createSymbolicLink(link, link.getParent().relativize(blob));
    }

    private static long headerLong(HttpURLConnection c, String name, long fallback) {
        String v = c.getHeaderField(name);
        try {
            return v == null ? fallback : Math.max(-1, Long.parseLong(v.trim()));
        } catch (NumberFormatException e) {
            return fallback;
        }
    }

    private void downloadBlob(String url, String file, Path blob, long size) throws IOException {
        Path partial = blob.resolveSibling(blob.getFileName() + ".incomplete");
        long have = Files.exists(partial) ? Files.size(partial) : 0;
        if (size >= 0 && have > size) {
            Files.delete(partial); // longer than the file: not a prefix of it
            have = 0;
        }
        HttpURLConnection response = sendFollowingRedirects(URI.create(url), have > 0 ? "bytes=" + have + "-" : null);
        try {
            int status = response.getResponseCode();
            if (status >= 400 && status != 416) {
                throw new StatusException("GET " + url + " returned HTTP " + status + hint(status), status);
            }
            boolean append = status == 206;
            if (!append) {
                have = 0; // the server ignored the range: start over
            }
            if (status != 416) {
                try (InputStream in = response.getInputStream();
                     OutputStream out = Files.newOutputStream(partial, StandardOpenOption.CREATE,
                             append ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING)) {
                    byte[] buffer = new byte[1 << 20];
                    long done = have, lastReport = 0;
                    progress.update(file, done, size); // the start: what a resumed download already has
                    for (int n; (n = in.read(buffer)) > 0; ) {
                        out.write(buffer, 0, n);
                        done += n;
                        if (size >= 0 && done > size) {
                            throw new IOException(file + ": the server sent more than the " + size + " bytes it announced");
                        }
                        if (done - lastReport >= (8 << 20)) {
                            progress.update(file, done, size);
                            lastReport = done;
                        }
                    }
                    progress.update(file, done, size);
                }
            }
        } finally {
            response.disconnect();
        }
        if (size >= 0 && Files.size(partial) != size) {
            throw new IOException(file + ": downloaded " + Files.size(partial) + " of " + size + " bytes");
        }
        Files.move(partial, blob, StandardCopyOption.ATOMIC_MOVE);
    }

    private HttpURLConnection sendFollowingRedirects(URI uri, String range) throws IOException {
        String hubHost = uri.getHost();
        boolean withToken = true;
        for (int hops = 0; hops < 10; hops++) {
            HttpURLConnection response = open(uri, "GET", settings.downloadTimeout(), withToken, range);
            int status = response.getResponseCode();
            if (status < 300 || status >= 400) {
                return response;
            }
            String location = response.getHeaderField("Location");
            response.disconnect();
            if (location == null) {
                throw new IOException("redirect without Location from " + uri);
            }
            try {
                uri = uri.resolve(location);
            } catch (IllegalArgumentException e) {
                throw new IOException("redirect to an invalid location '" + location + "' from " + uri);
            }
            // the bearer token goes only to the hub itself, never to a CDN on another host
            withToken = hubHost != null && hubHost.equals(uri.getHost());
        }
        throw new IOException("too many redirects from " + uri);
    }

    private String get(String url) throws IOException {
        HttpURLConnection response = open(URI.create(url), "GET", settings.metadataTimeout(), true, null);
        try {
            int status = response.getResponseCode();
            if (status >= 400) {
                throw new StatusException("GET " + url + " returned HTTP " + status + hint(status), status);
            }
            try (InputStream in = response.getInputStream()) {
                var body = new ByteArrayOutputStream();
                byte[] buffer = new byte[64 << 10];
                for (int n; (n = in.read(buffer)) > 0; ) {
                    body.write(buffer, 0, n);
                    if (body.size() > MAX_INFO_BYTES) {
                        throw new IOException("GET " + url + ": the answer exceeds " + MAX_INFO_BYTES + " bytes");
                    }
                }
                return body.toString(StandardCharsets.UTF_8);
            }
        } finally {
            response.disconnect();
        }
    }

    /** A request with connect and read timeouts; only http and https, redirects are followed by the caller. */
    private HttpURLConnection open(URI uri, String method, Duration timeout, boolean withToken, String range) throws IOException {
        String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
        if (!scheme.equals("http") && !scheme.equals("https")) {
            throw new IOException("refusing to fetch " + uri + ": only http and https are used");
        }
        var connection = (HttpURLConnection) uri.toURL().openConnection();
        connection.setInstanceFollowRedirects(false);
        connection.setConnectTimeout((int) timeout.toMillis());
        connection.setReadTimeout((int) timeout.toMillis());
        connection.setRequestMethod(method);
        connection.setRequestProperty("User-Agent", "flink-qwen3");
        if (withToken && settings.token() != null && !settings.token().isBlank()) {
            connection.setRequestProperty("Authorization", "Bearer " + settings.token());
        }
        if (range != null) {
            connection.setRequestProperty("Range", range);
        }
        return connection;
    }

    private static String describe(Throwable e) {
        String message = e.getMessage();
        return message == null || message.isBlank() ? e.getClass().getSimpleName() : message;
    }

    private static String hint(int status) {
        return status == 401 || status == 403 ? " (set HF_TOKEN to a token with access to this repository)"
                : status == 404 ? " (check the repository id and revision)" : "";
    }

    private static String encode(String path) {
        return URLEncoder.encode(path, StandardCharsets.UTF_8).replace("+", "%20").replace("%2F", "/");
    }
}
