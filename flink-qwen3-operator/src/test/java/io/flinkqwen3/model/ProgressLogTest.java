package io.flinkqwen3.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/** The progress lines of downloads and model loads: percent, rate and time left from a fixed clock. */
class ProgressLogTest {
    private static final long SECOND = 1_000_000_000L;

    @Test
    void aDownloadLineHasPercentMegabytesPerSecondAndTimeLeft() {
        var log = new ProgressLog(LoggerFactory.getLogger(ProgressLogTest.class), "downloading model.safetensors", 1_200_000_000L,
                ProgressLog.Unit.BYTES, ProgressLog.Unit.BYTES, 0, Duration.ofSeconds(5), () -> 0);
        assertEquals("25% (300.0 / 1200.0 MB), 30.0 MB/s, 30 s left", log.describe(300_000_000L, 300_000_000L, 10 * SECOND));
    }

    @Test
    void aResumedDownloadRatesOnlyTheBytesOfThisRun() {
        var log = new ProgressLog(LoggerFactory.getLogger(ProgressLogTest.class), "d", 1_000_000_000L, ProgressLog.Unit.BYTES,
                ProgressLog.Unit.BYTES, 500_000_000L, Duration.ofSeconds(5), () -> 0);
        // 100 MB in 10 s since the resume: 10 MB/s, 400 MB left: 40 s
        assertEquals("60% (600.0 / 1000.0 MB), 10.0 MB/s, 40 s left", log.describe(600_000_000L, 600_000_000L, 10 * SECOND));
    }

    @Test
    void aModelLoadCountsLayersAndRatesWeights() {
        var log = new ProgressLog(LoggerFactory.getLogger(ProgressLogTest.class), "loading m", 28, ProgressLog.Unit.LAYERS,
                ProgressLog.Unit.WEIGHTS, 0, Duration.ofSeconds(5), () -> 0);
        assertEquals("25% (7 / 28 layers), 15.0 M weights/s, 3 min 0 s left", log.describe(7, 900_000_000L, 60 * SECOND));
    }

    @Test
    void anUnknownTotalHasNoPercentAndNoTimeLeft() {
        var log = new ProgressLog(LoggerFactory.getLogger(ProgressLogTest.class), "d", -1, ProgressLog.Unit.BYTES,
                ProgressLog.Unit.BYTES, 0, Duration.ofSeconds(5), () -> 0);
        assertEquals("50.0 MB, 5.0 MB/s", log.describe(50_000_000L, 50_000_000L, 10 * SECOND));
    }

    @Test
    void durationsReadAsAPersonWouldSayThem() {
        assertEquals("45 s", ProgressLog.duration(45));
        assertEquals("3 min 5 s", ProgressLog.duration(185));
        assertEquals("2 h 10 min", ProgressLog.duration(7800));
    }
}
