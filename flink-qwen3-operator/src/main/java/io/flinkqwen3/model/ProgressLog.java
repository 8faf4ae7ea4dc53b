package io.flinkqwen3.model;

import java.time.Duration;
import java.util.Locale;
import java.util.function.LongSupplier;
import org.slf4j.Logger;

/**
 * Progress of one long task (a download, loading and converting a model) as INFO lines, at most
 * one per interval: percent done, the rate and the time left, e.g.
 * {@code downloading model.safetensors: 43% (512.0 / 1191.2 MB), 35.2 MB/s, 20 s left}.
 * The rate may count other work than the percent does (layers done, weights per second).
 */
public final class ProgressLog {
    /** How amounts of one kind print: "512.0 MB", "12 layers". */
    public enum Unit {
        BYTES(1e6, "MB", "%.1f"), WEIGHTS(1e6, "M weights", "%.0f"), LAYERS(1, "layers", "%.0f");

        private final double scale;
        private final String name;
        private final String format;

        Unit(double scale, String name, String format) {
            this.scale = scale;
            this.name = name;
            this.format = format;
        }

        String amount(long value) {
            return String.format(Locale.ROOT, format, value / scale);
        }

        String rate(double perSecond) {
            return String.format(Locale.ROOT, "%.1f %s/s", perSecond / scale, name);
        }
    }

    /** Time between two lines when nobody says otherwise. */
    public static final Duration INTERVAL = Duration.ofSeconds(5);

    private final Logger log;
    private final String task;
    private final long total;
    private final Unit unit;
    private final Unit rateUnit;
    private final long intervalNanos;
    private final LongSupplier nanoClock;
    private final long start;
    private final long resumedAt;
    private long lastLine;

    /**
     * @param total     the amount when done, in {@code unit}; negative when unknown (no percent, no time left)
     * @param resumedAt what was done before this run (a resumed download's bytes), counted neither in the rate nor
     *                  in the time left; 0 unless the rate counts what the percent counts
     */
    public ProgressLog(Logger log, String task, long total, Unit unit, Unit rateUnit, long resumedAt, Duration interval,
                       LongSupplier nanoClock) {
        this.log = log;
        this.task = task;
        this.total = total;
        this.unit = unit;
        this.rateUnit = rateUnit;
        this.resumedAt = resumedAt;
        this.intervalNanos = interval.toNanos();
        this.nanoClock = nanoClock;
        this.start = nanoClock.getAsLong();
        this.lastLine = start;
    }

    /** Progress measured and rated in one unit, a line every {@link #INTERVAL}. */
    public ProgressLog(Logger log, String task, long total, Unit unit, long resumedAt) {
        this(log, task, total, unit, unit, resumedAt, INTERVAL, System::nanoTime);
    }

    /** {@code done} of the total so far, and {@code work} (in the rate's unit) since before the start. */
    public synchronized void update(long done, long work) {
        long now = nanoClock.getAsLong();
        if (now - lastLine >= intervalNanos && log.isInfoEnabled()) {
            lastLine = now;
            log.info("{}: {}", task, describe(done, work, now));
        }
    }

    /** {@link #update(long, long)} when the rate counts what the percent counts. */
    public void update(long done) {
        update(done, done);
    }

    /** One last line, whatever the interval: the amount, the time taken and the rate. */
    public synchronized void finish(long done) {
        long now = nanoClock.getAsLong();
        double seconds = Math.max(1e-9, (now - start) / 1e9);
        log.info("{}: done, {} {} in {} ({})", task, unit.amount(done), unit.name, duration(seconds),
                unit.rate((done - resumedAt) / seconds));
    }

    /** The line's text after the task, for the state at {@code now}. */
    String describe(long done, long work, long now) {
        double seconds = Math.max(1e-9, (now - start) / 1e9);
        String rate = rateUnit.rate((work - resumedAt) / seconds);
        if (total <= 0) {
            return unit.amount(done) + " " + unit.name + ", " + rate;
        }
        String of = "(" + unit.amount(done) + " / " + unit.amount(total) + " " + unit.name + ")";
        double fraction = (double) (done - resumedAt) / Math.max(1, total - resumedAt);
        String left = fraction <= 0 ? "" : ", " + duration(seconds * (1 - fraction) / fraction) + " left";
        return String.format(Locale.ROOT, "%d%% %s, %s%s", Math.min(100, 100 * done / total), of, rate, left);
    }

    /** "45 s", "3 min 5 s", "2 h 10 min". */
    static String duration(double seconds) {
        long s = Math.round(seconds);
        if (s < 60) {
            return s + " s";
        }
        if (s < 3600) {
            return s / 60 + " min " + s % 60 + " s";
        }
        return s / 3600 + " h " + s % 3600 / 60 + " min";
    }
}
