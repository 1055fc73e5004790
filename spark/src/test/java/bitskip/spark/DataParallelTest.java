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
import java.util.Optional;
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

    static String[] args(String preset, int steps, int batch, int accum, Path out, Path[] data, String... more) {
        List<String> a = new ArrayList<>(List.of("--preset", preset, "--steps", Integer.toString(steps), "--batch", Integer.toString(batch),
                "--accum", Integer.toString(accum),
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

    static final String[] TERMS = {"loss", "task_loss", "ee_loss", "route_loss", "quant_loss", "grad_norm"};

    /** The logged loss terms and gradient norm of every step. */
    static List<double[]> losses(Path dir) throws Exception {
        List<double[]> out = new ArrayList<>();
        for (String l : Files.readAllLines(dir.resolve("metrics.jsonl"))) {
            JsonNode n = Configs.JSON.readTree(l);
            if (n.path("type").asText().equals("train")) {
                double[] v = new double[TERMS.length];
                for (int k = 0; k < v.length; k++) {
                    v[k] = n.get(TERMS[k]).asDouble();
                }
                out.add(v);
            }
        }
        return out;
    }

    /**
     * The first three steps within 1e-5 (relative, loss terms and gradient norm), the loss terms of every step
     * within tol. The first steps differ only by the
     * order of the float sums (~1e-8 measured); after that AdamW, which moves each weight by about ±lr whatever
     * its gradient's size, turns the float noise of near-zero gradients into lr-sized weight differences, and
     * a ternary weight that crosses its rounding threshold changes the loss by a step: the curves drift apart
     * slowly, as one process's do between the java and cpu backends (BackendTrainingEquivalenceTest). A wrong
     * shard, mask or scale, or stale weights, shows in the first steps.
     */
    static void assertSameLosses(Path one, Path many, int steps, double tol) throws Exception {
        List<double[]> a = losses(one), b = losses(many);
        assertEquals(steps, a.size());
        assertEquals(steps, b.size());
        for (int s = 0; s < steps; s++) {
            for (int k = 0; k < TERMS.length; k++) {
                if (s >= 3 && TERMS[k].equals("grad_norm")) {
                    continue; // a norm of the noisy gradients themselves: compared while they are still equal
                }
                double x = a.get(s)[k], y = b.get(s)[k], allowed = (s < 3 ? 1e-5 : tol) * Math.abs(x);
                assertTrue(Math.abs(x - y) <= allowed, String.format(Locale.ROOT,
                        "step %d %s: one process %.9f, data-parallel %.9f (relative %.2e > %.0e)", s + 1, TERMS[k], x, y,
                        Math.abs(x - y) / Math.abs(x), allowed / Math.abs(x)));
            }
        }
    }

    /** The train lines of metrics.jsonl without tokens/s. */
    static List<String> trainLines(Path dir) throws Exception {
        return Files.readAllLines(dir.resolve("metrics.jsonl")).stream().filter(l -> l.contains("\"train\""))
                .map(l -> l.replaceAll("\"tokens_per_s\":[0-9.E]+,", "")).toList();
    }

    @Test
    void twoWorkersOnLocal2MatchOneProcessAndOneWorkerIsOneProcessBitForBit(@TempDir Path tmp) throws Exception {
        Path[] data = text(tmp);
        System.setProperty("bitskip.cache", tmp.resolve("cache").toString());
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        assertEquals(0, run(args("micro", 12, 4, 2, tmp.resolve("one"), data), log), log.toString());
        assertEquals(0, run(args("micro", 12, 4, 2, tmp.resolve("two"), data, "--data-parallel", "2", "--spark", "local[2]"), log),
                log.toString());
        assertTrue(log.toString().contains("data-parallel: 12 steps on 2 workers; median step"), log.toString());
        assertSameLosses(tmp.resolve("one"), tmp.resolve("two"), 12, 1e-3);
        // One worker computes what one process computes, in the same order: the weights out, the gradients back
        // and into the optimizer lose no bit.
        assertEquals(0, run(args("micro", 12, 4, 2, tmp.resolve("single"), data, "--data-parallel", "1", "--spark", "local[1]"), log),
                log.toString());
        assertEquals(trainLines(tmp.resolve("one")), trainLines(tmp.resolve("single")));
        assertArrayEquals(Files.readAllBytes(tmp.resolve("one").resolve("last").resolve("model.safetensors")),
                Files.readAllBytes(tmp.resolve("single").resolve("last").resolve("model.safetensors")));
    }

    /** The check: tiny, 20 steps, two executor JVMs. */
    @Test
    void tinyOnTwoExecutorsOfALocalClusterMatchesOneProcessFor20Steps(@TempDir Path tmp) throws Exception {
        Optional<String> skip = LocalCluster.skipReason();
        if (skip.isPresent()) {
            abort("local-cluster: " + skip.get());
        }
        Path[] data = text(tmp);
        System.setProperty("bitskip.cache", tmp.resolve("cache").toString());
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        assertEquals(0, run(args("tiny", 20, 2, 1, tmp.resolve("one"), data), log), log.toString());
        assertEquals(0, run(args("tiny", 20, 2, 1, tmp.resolve("two"), data, "--data-parallel", "2",
                "--spark", LocalCluster.MASTER), log), log.toString());
        String summary = log.toString().lines().filter(l -> l.startsWith("data-parallel: 20 steps")).findFirst().orElse("");
        assertFalse(summary.isEmpty(), log.toString());
        System.out.println(summary);
        assertSameLosses(tmp.resolve("one"), tmp.resolve("two"), 20, 1e-2);
        // validation and checkpoints as one process: the best checkpoint and a resumable last/
        assertTrue(Files.isRegularFile(tmp.resolve("two").resolve("checkpoint").resolve("model.safetensors")));
        assertTrue(Files.isRegularFile(tmp.resolve("two").resolve("last").resolve("optimizer.safetensors")));
    }

    @Test
    void refusesTheBatchMeanRoutingLossAndAMissingMaster(@TempDir Path tmp) throws Exception {
        Path[] data = text(tmp);
        System.setProperty("bitskip.cache", tmp.resolve("cache").toString());
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        assertEquals(2, run(args("micro", 2, 4, 1, tmp.resolve("r"), data, "--profile", "reference", "--data-parallel", "2",
                "--spark", "local[2]"), log));
        assertTrue(log.toString().contains("route_loss = batch_mean"), log.toString());
        log.reset();
        assertEquals(2, run(args("micro", 2, 4, 1, tmp.resolve("m"), data, "--data-parallel", "2"), log));
        assertTrue(log.toString().contains("--data-parallel needs --spark"), log.toString());
        assertFalse(Files.exists(tmp.resolve("r").resolve("metrics.jsonl")), "refused before any work");
    }
}
