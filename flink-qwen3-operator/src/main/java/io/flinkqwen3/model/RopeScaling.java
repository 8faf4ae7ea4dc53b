package io.flinkqwen3.model;

/**
 * Rotary embedding parameters. {@code type} is "default" or "yarn"; factor and original context
 * length only matter for YaRN.
 */
public record RopeScaling(String type, double theta, double factor, int originalMaxPositions) {
    public boolean isYarn() {
        return "yarn".equals(type);
    }
}
