package bitskip.spark;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.abort;

import bitskip.model.cli.Main;
import bitskip.model.cli.TrainCommand;
import bitskip.model.config.Configs;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code bitskip train --data-parallel N --spark MASTER}: the losses of N workers equal one process's on the same
 * global batch up to the order of the float sums, step by step, with dropout and layer skipping on.
 */
class DataParallelTest {

    static Path[] text(Path dir) throws Exception {
        StringBuilder t = new StringBuilder();
        for (int i = 0; i < 400; i++) {
            t.append("Line ").append(i).append(": the ").append(i % 5 == 0 ? "ternary" : "early").append(" model exits at layer ")
                    .append(i % 4).append(" when it is sure, and reads on when it is not.\n");
        }
        return new Path[] {Files.writeString(dir.resolve("train.txt"), t), Files.writeString(dir.resolve("valid.txt"), t.substring(0, 4000))};
    }

    static String[] args(String preset, int steps, Path out, Path[] data, String... more) {
        List<String> a = new ArrayList<>(List.of("--preset", preset, "--steps", Integer.toString(steps), "--batch", "4", "--accum", "2",
                "--eval-every", "10", "--eval-batches", "2", "--set", "vocab_size=50257", "--set", "dropout=0.1", "--threads", "1",
                "--train", data[0].toString(), "--valid", data[1].toString(), "--out", out.toString(), "--no-progress"));
        a.addAll(List.of(more));
        return a.toArray(new String[0]);
    }

    static int run(String[] args, ByteArrayOutputStream err) {
        PrintStream old = System.err;
        System.setErr(new PrintStream(err, true));
        try {
            return Main.run(new TrainCommand(), args);
        } finally {
            System.setErr(old);
        }
    }

    /** (loss, task_loss, ee_loss, route_loss, quant_loss) of every step. */
    static List<double[]> losses(Path dir) throws Exception {
        List<double[]> out = new ArrayList<>();
        for (String l : Files.readAllLines(dir.resolve("metrics.jsonl"))) {
            JsonNode n = Configs.JSON.readTree(l);
            if (n.path("type").asText().equals("train")) {
                out.add(new double[] {n.get("loss").asDouble(), n.get("task_loss").asDouble(), n.get("ee_loss").asDouble(),
                        n.get("route_loss").asDouble(), n.get("quant_loss").asDouble()});
            }
        }
        return out;
    }

    static void assertSameLosses(Path one, Path many, int steps, double tol) throws Exception {
        List<double[]> a = losses(one), b = losses(many);
        assertEquals(steps, a.size());
        assertEquals(steps, b.size());
        String[] names = {"loss", "task_loss", "ee_loss", "route_loss", "quant_loss"};
        for (int s = 0; s < steps; s++) {
            for (int k = 0; k < names.length; k++) {
                double x = a.get(s)[k], y = b.get(s)[k];
                assertTrue(Math.abs(x - y) <= tol * Math.abs(x), String.format(Locale.ROOT,
                        "step %d %s: one process %.9f, data-parallel %.9f (relative %.2e > %.0e)", s + 1, names[k], x, y,
                        Math.abs(x - y) / Math.abs(x), tol));
            }
        }
    }

    @Test
    void twoWorkersOnLocal2MatchOneProcess(@TempDir Path tmp) throws Exception {
        Path[] data = text(tmp);
        System.setProperty("bitskip.cache", tmp.resolve("cache").toString());
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        long t0 = System.nanoTime();
        assertEquals(0, run(args("micro", 12, tmp.resolve("one"), data), log), log.toString());
        System.out.printf("one process %.1f s%n", (System.nanoTime() - t0) / 1e9);
        t0 = System.nanoTime();
        assertEquals(0, run(args("micro", 12, tmp.resolve("two"), data, "--data-parallel", "2", "--spark", "local[2]"), log), log.toString());
        System.out.printf("data-parallel %.1f s%n", (System.nanoTime() - t0) / 1e9);
        System.out.println(log);
        assertTrue(log.toString().contains("data-parallel: 12 steps on 2 workers"), log.toString());
        assertSameLosses(tmp.resolve("one"), tmp.resolve("two"), 12, 1e-4);
    }
}
