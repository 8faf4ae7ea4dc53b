package io.flinkqwen3.model;

import java.nio.file.Files;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Turns a model location (directory, .gguf file, or Hugging Face repo id[@revision]) into a local
 * path. A path that exists is always a path, never a repo id.
 */
public final class ModelLocator {
    private static final Logger LOG = LoggerFactory.getLogger(ModelLocator.class);

    private ModelLocator() {}

    /** {@link #resolve(String, HubDownloader)} with the environment's hub settings, logging download progress. */
    public static Path resolve(String location) {
        return resolve(location, new HubDownloader(HubDownloader.Settings.fromEnvironment(System.getenv()), new DownloadLog()));
    }

    /**
     * Checks, without any download, that {@code location} is an existing path or reads as a repo
     * id[@revision]; ModelFormatException saying neither otherwise (what {@link #resolve} throws first).
     */
    public static void check(String location) {
        Path path;
        try {
            path = Path.of(location);
        } catch (java.nio.file.InvalidPathException e) {
            throw new ModelFormatException("model location '" + location + "' is not a valid path or repo id (" + e.getReason() + ")");
        }
        int at = location.indexOf('@');
        if (!Files.exists(path) && !HubDownloader.looksLikeRepoId(at > 0 ? location.substring(0, at) : location)) {
            throw new ModelFormatException("model location '" + location + "' is neither an existing directory or .gguf file"
                    + " nor a Hugging Face repo id like Qwen/Qwen3-0.6B");
        }
    }

    /**
     * {@link #check} plus, for an existing path, the shape of a checkpoint: a directory with
     * config.json or a .gguf file; ModelFormatException saying what is missing otherwise. For
     * launchers that hand the location to processes that load it later (cluster-test).
     */
    public static void checkCheckpoint(String location) {
        check(location);
        Path path = Path.of(location);
        if (Files.isDirectory(path) && !Files.isRegularFile(path.resolve("config.json"))) {
            throw new ModelFormatException("model location '" + location + "' is a directory without config.json"
                    + " (a model directory holds config.json and *.safetensors)");
        }
        if (Files.exists(path) && !Files.isDirectory(path) && !location.endsWith(".gguf")) {
            throw new ModelFormatException("model location '" + location + "' is a file but not a .gguf file");
        }
    }

    public static Path resolve(String location, HubDownloader downloader) {
        check(location);
        Path path = Path.of(location);
        if (Files.exists(path)) {
            return path;
        }
        String repo = location, revision = "main";
        int at = location.indexOf('@');
        if (at > 0) {
            repo = location.substring(0, at);
            revision = location.substring(at + 1);
        }
        try {
            return downloader.download(repo, revision);
        } catch (ModelFormatException e) {
            // 'dir/model' reads as a repo id too: say that no such path exists before what the hub said
            throw at > 0 ? e : new ModelFormatException("model location '" + location + "': no file or directory "
                    + path.toAbsolutePath() + ", and as a Hugging Face repo id: " + e.getMessage(), e);
        }
    }

    /** Download progress as log lines: percent, MB/s and time left per file. */
    private static final class DownloadLog implements HubDownloader.Progress {
        private String file;
        private ProgressLog progress;

        @Override
        public synchronized void update(String file, long bytesDone, long bytesTotal) {
            if (!file.equals(this.file)) {
                this.file = file;
                progress = new ProgressLog(LOG, "downloading " + file, bytesTotal, ProgressLog.Unit.BYTES, bytesDone);
            }
            if (bytesDone == bytesTotal) {
                progress.finish(bytesDone);
            } else {
                progress.update(bytesDone);
            }
        }
    }
}
