package bitskip.model.ablation;

import static org.junit.jupiter.api.Assertions.*;

import bitskip.model.cli.AblationCommand;
import bitskip.model.cli.Main;
import bitskip.model.config.Configs;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AblationTest {

    @Test
    void planHasTheFactorialAndTheSweepsOfTables6To8WithSharedRowsRunOnce() {
        AblationPlan p = AblationPlan.build(List.of("paper", "reference"), "all", 100, 7, 500, 42, AblationPlan.DEFAULT_EXIT_RANK);
        List<RunSpec> fact = p.runs().stream().filter(r -> r.group().equals("factorial")).toList();
        assertEquals(8, fact.size());
        assertEquals(Set.of("paper-baseline", "paper-h-only", "paper-ee-only", "paper-bitskip", "reference-baseline",
                "reference-h-only", "reference-ee-only", "reference-bitskip"), fact.stream().map(RunSpec::id).collect(Collectors.toSet()));
        assertTrue(fact.stream().allMatch(r -> r.steps() == 100 && r.seed() == 7));
        // 5 (Table 6) + 4 new (Table 7: lambda_q = 0 is Table 6's lambda_r = 0.2) + 3 (Table 8 OFF) + 2 (ON 0.7 is Table 7's 0.05)
        List<RunSpec> sweeps = p.runs().stream().filter(r -> r.group().equals("sweep") && r.profile().equals("paper")).toList();
        assertEquals(14, sweeps.size());
        assertTrue(sweeps.stream().allMatch(r -> r.steps() == 500 && r.seed() == 42 && r.variant().equals("ee-only")));
        assertEquals(16, p.sweepRows().get("paper").size());
        assertEquals(p.runs().size(), p.runs().stream().map(RunSpec::id).distinct().count(), "ids are unique");
        assertThrows(IllegalArgumentException.class, () -> AblationPlan.build(List.of("paper"), "everything", 1, 1, 1, 1, 16));
        assertThrows(IllegalArgumentException.class, () -> AblationPlan.build(List.of("papr"), "all", 1, 1, 1, 1, 16));
    }

    static AblationRunner.Java childJava(Path cache) {
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        AblationRunner.Java cur = AblationRunner.Java.current();
        List<String> jvm = new ArrayList<>(List.of("--add-modules", "jdk.incubator.vector", "-Xmx512m", "-XX:TieredStopAtLevel=1",
                "-Dbitskip.cache=" + cache));
        return new AblationRunner.Java(cur.binary(), jvm, cp);
    }

    static int run(AblationCommand c, PrintStream err, String... args) {
        PrintStream old = System.err;
        System.setErr(err);
        try {
            return Main.run(c, args);
        } finally {
            System.setErr(old);
        }
    }

    @Test
    void theReportFlagsVariantsWhoseQuantizedWeightsCollapsedToZero(@TempDir Path tmp) throws Exception {
        // run folders as training and eval leave them, written by hand: baseline's matrices sit at the
        // alpha clamp in all but one matrix, the other variants are healthy
        java.util.Map<String, Path> dirs = new java.util.LinkedHashMap<>();
        for (String v : List.of("baseline", "h-only", "ee-only", "bitskip")) {
            Path d = Files.createDirectories(tmp.resolve("runs").resolve("paper-" + v));
            Files.writeString(d.resolve("metrics.jsonl"), "{\"type\":\"eval\",\"step\":10,\"val_ppl\":500.0}\n");
            Files.writeString(d.resolve("done.json"), "{}");
            StringBuilder m = new StringBuilder();
            for (int i = 0; i < 3; i++) {
                double alpha = v.equals("baseline") && i < 2 ? 1e-6 : 0.004;
                m.append(i == 0 ? "" : ",").append("{\"name\":\"layers.").append(i).append(".attn.q_proj.weight\",\"alpha\":")
                        .append(alpha).append('}');
            }
            Files.writeString(d.resolve("eval.json"), "{\"weights\":{\"per_matrix\":[" + m + "]}}");
            dirs.put("paper-" + v, d);
        }
        AblationPlan plan = AblationPlan.build(List.of("paper"), "factorial", 10, 7, 500, 42, 16);
        String report = Files.readString(new AblationReport(tmp, plan, List.of("paper"), dirs).write("# test\n"));
        assertTrue(report.contains("**Collapsed weights**: baseline (2 of 3 matrices: attn.q_proj)"), report);
        assertFalse(report.contains("h-only (") || report.contains("bitskip ("), report);
    }

    @Test
    void runsTheFactorialInParallelProcessesSkipsFinishedRunsAndWritesTheReport(@TempDir Path tmp) throws Exception {
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < 60; i++) {
            text.append("The ").append(i % 7 == 0 ? "quick" : "slow").append(" model reads line ").append(i)
                    .append(" of a tiny corpus about ternary weights and early exits.\n");
        }
        Path train = Files.writeString(tmp.resolve("train.txt"), text);
        Path valid = Files.writeString(tmp.resolve("valid.txt"), text.substring(0, 1500));
        Path out = tmp.resolve("abl");
        String[] args = {"--preset", "micro", "--profile", "reference", "--steps", "2", "--out", out.toString(),
                "--parallel", "2", "--batch", "2", "--accum", "1", "--eval-every", "1", "--eval-batches", "2",
                "--set", "vocab_size=50257", "--train", train.toString(), "--valid", valid.toString()};

        ByteArrayOutputStream dry = new ByteArrayOutputStream();
        assertEquals(0, run(new AblationCommand().withJava(childJava(tmp.resolve("cache"))), new PrintStream(dry, true),
                concat(args, "--dry-run")));
        String listing = dry.toString();
        assertTrue(listing.contains("4 runs"), listing);
        assertTrue(listing.contains("reference-h-only") && listing.contains("hadamard=true lambda_ee=0.0"), listing);
        assertTrue(listing.contains("reference-ee-only") && listing.contains("lambda_ee=0.3 p_max=0.7"), listing);
        assertFalse(Files.exists(out.resolve("runs")), "a dry run starts nothing");

        ByteArrayOutputStream log = new ByteArrayOutputStream();
        int rc = run(new AblationCommand().withJava(childJava(tmp.resolve("cache"))), new PrintStream(log, true), args);
        assertEquals(0, rc, log + "\n" + logs(out));
        for (String id : List.of("reference-baseline", "reference-h-only", "reference-ee-only", "reference-bitskip")) {
            Path d = out.resolve("runs").resolve(id);
            JsonNode done = Configs.JSON.readTree(d.resolve("done.json").toFile());
            assertEquals(2, done.get("last_step").asInt(), id);
            JsonNode eval = Configs.JSON.readTree(d.resolve("eval.json").toFile());
            assertEquals("requantized", eval.at("/deployed/deployment").asText(), "the reference profile reproduces the double ternarization");
            assertEquals(3, eval.at("/latent/exits").size());
            assertEquals(done.get("best_val_ppl").asDouble(), eval.at("/latent/ppl_token_weighted").asDouble(),
                    1e-6 * done.get("best_val_ppl").asDouble(), id + ": eval of the best checkpoint = its training validation");
        }
        String report = Files.readString(out.resolve("report.md"));
        for (String must : List.of("Table 2", "Table 3", "Table 4", "Table 5", "228.77", "78,480", "Hadamard helps",
                "Early exit hurts", "cliff", "requantized", "./bitskip ablation --preset micro")) {
            assertTrue(report.contains(must), must + " missing from\n" + report);
        }
        assertFalse(report.contains("Collapsed weights"), "two steps from initialization collapse nothing:\n" + report);
        for (String png : List.of("fig2-val-ppl.png", "fig3-exit-ppl.png", "fig-val-curves.png", "fig-train-loss.png")) {
            byte[] b = Files.readAllBytes(out.resolve(png));
            assertTrue(b.length > 1000 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G', png);
        }

        // Restart, adding the exit-head study: finished runs are skipped; a run without done.json is continued with
        // --resume; the three exit-head designs train beside the factorial's bitskip and h-only.
        Files.delete(out.resolve("runs").resolve("reference-bitskip").resolve("done.json"));
        ByteArrayOutputStream again = new ByteArrayOutputStream();
        assertEquals(0, run(new AblationCommand().withJava(childJava(tmp.resolve("cache"))), new PrintStream(again, true),
                concat(args, "--runs", "factorial,exit-heads", "--exit-rank", "2")), again + "\n" + logs(out));
        String s = again.toString();
        assertEquals(3, s.lines().filter(l -> l.contains("done already, skipped")).count(), s);
        assertTrue(s.contains("reference-bitskip: resuming"), s);
        assertTrue(Files.readString(out.resolve("runs").resolve("reference-bitskip").resolve("train.log")).contains("--resume"));
        for (String design : List.of("adapter", "lowrank", "gradstop")) {
            Path d = out.resolve("runs").resolve("reference-bitskip-" + design);
            JsonNode config = Configs.JSON.readTree(d.resolve("config.json").toFile());
            assertEquals(design.equals("gradstop") ? "shared" : design, config.get("exit_head").asText());
            assertEquals(design.equals("lowrank") ? 2 : 0, config.get("exit_rank").asInt());
            assertEquals(design.equals("gradstop"), config.get("exit_head_grad_stop").asBoolean());
            assertEquals(3, Configs.JSON.readTree(d.resolve("eval.json").toFile()).at("/latent/exits").size(), design);
        }
        String withHeads = Files.readString(out.resolve("report.md"));
        assertTrue(withHeads.contains("## Exit heads") && withHeads.contains("| lowrank r=2 | `reference-bitskip-lowrank` |"), withHeads);
        assertTrue(Files.size(out.resolve("fig-exit-heads-reference.png")) > 1000);
    }

    private static String logs(Path out) throws Exception {
        StringBuilder s = new StringBuilder();
        if (Files.isDirectory(out.resolve("runs"))) {
            try (var st = Files.walk(out.resolve("runs"))) {
                for (Path p : st.filter(p -> p.toString().endsWith(".log")).toList()) {
                    s.append("== ").append(p).append('\n').append(Files.readString(p)).append('\n');
                }
            }
        }
        return s.toString();
    }

    private static String[] concat(String[] a, String... b) {
        String[] r = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
