package bitskip.model.ablation;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The exit-head study's plan and report section, and the comparison of ablation folders across seeds. */
class ExitHeadStudyTest {

    @Test
    void exitHeadStudyPlansEachDesignBesideTheFactorialsBitskipAndHOnly() {
        AblationPlan p = AblationPlan.build(List.of("paper"), "exit-heads", 600, 8, 500, 42, 4);
        Map<String, RunSpec> byId = new LinkedHashMap<>();
        p.runs().forEach(r -> byId.put(r.id(), r));
        assertEquals(List.of("paper-h-only", "paper-bitskip", "paper-bitskip-adapter", "paper-bitskip-lowrank", "paper-bitskip-gradstop"),
                List.copyOf(byId.keySet()));
        assertEquals("factorial", byId.get("paper-bitskip").group(), "the shared head is the factorial's own bitskip run");
        assertEquals(Map.of("exit_head", "adapter"), byId.get("paper-bitskip-adapter").sets());
        assertEquals(Map.of("exit_head", "lowrank", "exit_rank", "4"), byId.get("paper-bitskip-lowrank").sets());
        assertEquals(Map.of("exit_head_grad_stop", "true"), byId.get("paper-bitskip-gradstop").sets());
        assertTrue(p.runs().stream().allMatch(r -> r.steps() == 600 && r.seed() == 8));
        assertTrue(p.runs().stream().filter(r -> r.group().equals("exit-heads")).allMatch(r -> r.variant().equals("bitskip")));
        assertEquals(5, p.exitHeadRows().get("paper").size());

        // with the factorial: its runs once, ids unique; "all" is all three groups
        AblationPlan both = AblationPlan.build(List.of("paper"), "factorial,exit-heads", 600, 8, 500, 42, 4);
        assertEquals(7, both.runs().size());
        AblationPlan all = AblationPlan.build(List.of("paper"), "all", 600, 8, 500, 42, 4);
        assertEquals(4 + 3 + 14, all.runs().size());
        assertEquals(all.runs().size(), all.runs().stream().map(RunSpec::id).distinct().count());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> AblationPlan.build(List.of("paper"), "factorial,exitheads", 1, 1, 1, 1, 4));
        assertTrue(e.getMessage().contains("'exitheads'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> AblationPlan.build(List.of("paper"), "exit-heads", 1, 1, 1, 1, 0));
        assertTrue(e.getMessage().contains("--exit-rank"), e.getMessage());
    }

    /** A run folder as training and eval leave it: validations (step, ppl) and, when exits are given, eval.json's exits. */
    static Path runFolder(Path ablation, String id, double[] valPpl, double[] exitPpl) throws Exception {
        Path d = Files.createDirectories(ablation.resolve("runs").resolve(id));
        StringBuilder m = new StringBuilder();
        for (int i = 0; i < valPpl.length; i++) {
            m.append("{\"type\":\"eval\",\"step\":").append(100 * (i + 1)).append(",\"val_ppl\":").append(valPpl[i]).append("}\n");
        }
        Files.writeString(d.resolve("metrics.jsonl"), m);
        Files.writeString(d.resolve("done.json"), "{}");
        if (exitPpl != null) {
            StringBuilder ex = new StringBuilder();
            for (int l = 0; l < exitPpl.length; l++) {
                ex.append(l == 0 ? "" : ",").append("{\"ppl_token_weighted\":").append(exitPpl[l]).append(",\"loss_token_weighted\":")
                        .append(Math.log(exitPpl[l])).append('}');
            }
            Files.writeString(d.resolve("eval.json"), "{\"latent\":{\"exits\":[" + ex + "]}}");
        }
        return d;
    }

    @Test
    void theReportTabulatesEachDesignsFinalLayerAgainstHOnlyAndItsExits(@TempDir Path tmp) throws Exception {
        AblationPlan plan = AblationPlan.build(List.of("paper"), "exit-heads", 600, 7, 500, 42, 16);
        Map<String, Path> dirs = new LinkedHashMap<>();
        dirs.put("paper-h-only", runFolder(tmp, "paper-h-only", new double[] {700, 500}, null));
        dirs.put("paper-bitskip", runFolder(tmp, "paper-bitskip", new double[] {720, 550}, new double[] {800, 800, 800, 550}));
        dirs.put("paper-bitskip-adapter", runFolder(tmp, "paper-bitskip-adapter", new double[] {700, 505}, new double[] {600, 580, 560, 505}));
        // lowrank and gradstop not run yet: the report shows them as missing
        String report = Files.readString(new AblationReport(tmp, plan, List.of("paper"), dirs).write("# test\n"));
        assertTrue(report.contains("## Exit heads"), report);
        assertTrue(report.contains("| shared | `paper-bitskip` | 550.00 | +10.0% | 800.00 | 800.00 | 800.00 | 800.00 | 550.00 |"), report);
        // geometric mean of 600, 580, 560
        String gm = AblationReport.fmt(Math.cbrt(600.0 * 580 * 560));
        assertTrue(report.contains("| adapter | `paper-bitskip-adapter` | 505.00 | +1.0% | " + gm + " |"), report);
        assertTrue(report.contains("| lowrank r=16 | `paper-bitskip-lowrank` | — | — | — |"), report);
        assertTrue(report.contains("| none (h-only) | `paper-h-only` | 500.00 | — | — |"), report);
        byte[] png = Files.readAllBytes(tmp.resolve("fig-exit-heads-paper.png"));
        assertTrue(png.length > 1000 && png[1] == 'P');
    }

    @Test
    void seedComparisonCallsADifferenceRealOnlyBeyondTheSpreadBetweenSeeds(@TempDir Path tmp) throws Exception {
        Path s7 = tmp.resolve("seed7"), s8 = tmp.resolve("seed8");
        // baseline 600 / 620 (spread 20); h-only 560 / 570: 45 apart, beyond both spreads, same sign: real
        runFolder(s7, "paper-baseline", new double[] {700, 600}, null);
        runFolder(s8, "paper-baseline", new double[] {700, 620}, null);
        runFolder(s7, "paper-h-only", new double[] {650, 560}, null);
        runFolder(s8, "paper-h-only", new double[] {640, 570}, null);
        // bitskip 590 / 560 (spread 30) against h-only 560 / 570: 10 apart, within the spread
        runFolder(s7, "paper-bitskip", new double[] {590}, new double[] {900, 700, 590});
        runFolder(s8, "paper-bitskip", new double[] {560}, new double[] {1000, 800, 560});
        // adapter exits much better on both seeds
        runFolder(s7, "paper-bitskip-adapter", new double[] {580}, new double[] {600, 620, 580});
        runFolder(s8, "paper-bitskip-adapter", new double[] {575}, new double[] {610, 630, 575});
        runFolder(s7, "paper-ee-only", new double[] {640}, new double[] {640, 640, 640});
        // a run only one seed has is left out
        runFolder(s7, "paper-bitskip-lowrank", new double[] {580}, null);

        SeedComparison c = new SeedComparison(List.of(s7, s8));
        assertEquals("real: better", SeedComparison.verdict(c.best("paper-h-only"), c.best("paper-baseline")));
        assertEquals("within the seed spread", SeedComparison.verdict(c.best("paper-bitskip"), c.best("paper-h-only")));
        assertEquals("real: better", SeedComparison.verdict(c.earlyExits("paper-bitskip-adapter"), c.earlyExits("paper-bitskip")));
        // one seed against: not real however large the mean difference
        assertEquals("within the seed spread", SeedComparison.verdict(new double[] {100, 300}, new double[] {150, 151}));

        String md = Files.readString(c.write(tmp.resolve("out"), "# seeds\n"));
        assertTrue(md.contains("| `paper-baseline` | 600.00 | 620.00 | 610.00 | 20.00 | 3.3% |"), md);
        assertTrue(md.contains("| Hadamard (no early exit): h-only vs baseline | `paper-h-only` | `paper-baseline` | 565.00 | 610.00 | -7.4% | real: better |"), md);
        assertTrue(md.contains("early exit hurts the last layer (Hadamard): bitskip vs h-only | `paper-bitskip` | `paper-h-only` | 575.00 | 565.00 | +1.8% | within the seed spread |"), md);
        assertTrue(md.contains("| early exits, exit head adapter: vs the shared head |"), md);
        assertFalse(md.contains("lowrank"), "runs missing from a seed are left out:\n" + md);
        assertFalse(md.contains("ee-only vs"), "comparisons with a missing run are left out:\n" + md);

        assertThrows(IllegalArgumentException.class, () -> new SeedComparison(List.of(s7)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new SeedComparison(List.of(s7, tmp.resolve("nothing"))));
        assertTrue(e.getMessage().contains("nothing") && e.getMessage().contains("runs/"), e.getMessage());
    }
}
