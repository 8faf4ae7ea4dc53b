package io.flinkqwen3.model;

/** A model file is missing, malformed or does not fit the config. The message names the file and the field. */
public class ModelFormatException extends RuntimeException {
    public ModelFormatException(String message) {
        super(message);
    }

    public ModelFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
