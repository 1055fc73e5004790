package bitskip.model.ablation;

import bitskip.model.config.Configs;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What one run's folder holds, read back for the report: the metrics lines written by training, the
 * evaluation ({@code eval.json}, written by {@code bitskip eval}) and the marker {@code done.json}.
 */
public record RunFolder(Path dir, List<double[]> trainLoss, List<double[]> valPpl, JsonNode eval, JsonNode done) {

    public static final String DONE = "done.json";
    public static final String EVAL = "eval.json";

    public static boolean isDone(Path dir) {
        return Files.isRegularFile(dir.resolve(DONE));
    }

    /** Whether a run folder holds (part of) a training run, killed before or after its first checkpoint: its config.json or a checkpoint. */
    public static boolean holdsRun(Path dir) {
        return Files.exists(dir.resolve("config.json")) || Files.isDirectory(dir.resolve("last"))
                || Files.isDirectory(dir.resolve("last.prev"));
    }

    public static RunFolder read(Path dir) throws IOException {
        List<double[]> train = new ArrayList<>(), val = new ArrayList<>();
        Path m = dir.resolve("metrics.jsonl");
        if (Files.isRegularFile(m)) {
            for (String line : Files.readAllLines(m, StandardCharsets.UTF_8)) {
                if (line.isBlank()) {
                    continue;
                }
                JsonNode n;
                try {
                    n = Configs.JSON.readTree(line);
                } catch (IOException e) {
                    continue; // a line cut short by a kill
                }
                if (n.path("type").asText().equals("train")) {
                    train.add(new double[] {n.get("step").asDouble(), n.get("task_loss").asDouble(), n.get("loss").asDouble()});
                } else if (n.path("type").asText().equals("eval")) {
                    val.add(new double[] {n.get("step").asDouble(), n.get("val_ppl").asDouble()});
                }
            }
        }
        JsonNode eval = Files.isRegularFile(dir.resolve(EVAL)) ? Configs.JSON.readTree(dir.resolve(EVAL).toFile()) : null;
        JsonNode done = isDone(dir) ? Configs.JSON.readTree(dir.resolve(DONE).toFile()) : null;
        return new RunFolder(dir, train, val, eval, done);
    }

    /** Lowest validation perplexity and its step, or null before any evaluation. */
    public double[] best() {
        double[] b = null;
        for (double[] v : valPpl) {
            if (b == null || v[1] < b[1]) {
                b = v;
            }
        }
        return b;
    }

    /** The last validation (step, ppl), or null. */
    public double[] last() {
        return valPpl.isEmpty() ? null : valPpl.get(valPpl.size() - 1);
    }

    /** The last training step logged. */
    public int lastStep() {
        return trainLoss.isEmpty() ? 0 : (int) trainLoss.get(trainLoss.size() - 1)[0];
    }

    public double evalNumber(String pointer) {
        if (eval == null) {
            return Double.NaN;
        }
        JsonNode n = eval.at(pointer);
        return n.isNumber() ? n.asDouble() : Double.NaN;
    }

    /** Per-exit perplexity (token-weighted) from eval.json, or null. */
    public double[] exitPpl() {
        if (eval == null || !eval.at("/latent/exits").isArray()) {
            return null;
        }
        JsonNode ex = eval.at("/latent/exits");
        double[] out = new double[ex.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = ex.get(i).get("ppl_token_weighted").asDouble();
        }
        return out;
    }

    public double[] exitLoss() {
        if (eval == null || !eval.at("/latent/exits").isArray()) {
            return null;
        }
        JsonNode ex = eval.at("/latent/exits");
        double[] out = new double[ex.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = ex.get(i).get("loss_token_weighted").asDouble();
        }
        return out;
    }
}
