package io.flinkqwen3.model;

import java.nio.file.Files;
import java.nio.file.Path;

/** Turns a model location (directory, .gguf file, or Hugging Face repo id[@revision]) into a local path. */
public final class ModelLocator {
    private ModelLocator() {}

    public static Path resolve(String location) {
        return resolve(location, new HubDownloader(HubDownloader.Settings.fromEnvironment(System.getenv()),
                (file, done, total) -> System.err.printf("downloading %s: %.1f / %s MB%n", file, done / 1e6,
                        total < 0 ? "?" : String.format("%.1f", total / 1e6))));
    }

    public static Path resolve(String location, HubDownloader downloader) {
        Path path;
        try {
            path = Path.of(location);
        } catch (java.nio.file.InvalidPathException e) {
            throw new ModelFormatException("model location '" + location + "' is not a valid path or repo id (" + e.getReason() + ")");
        }
        if (Files.exists(path)) {
            return path;
        }
        String repo = location, revision = "main";
        int at = location.indexOf('@');
        if (at > 0) {
            repo = location.substring(0, at);
            revision = location.substring(at + 1);
        }
        if (!HubDownloader.looksLikeRepoId(repo)) {
            throw new ModelFormatException("model location '" + location + "' is neither an existing directory or .gguf file"
                    + " nor a Hugging Face repo id like Qwen/Qwen3-0.6B");
        }
        return downloader.download(repo, revision);
    }
}
