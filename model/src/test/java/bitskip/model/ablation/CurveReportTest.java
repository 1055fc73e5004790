package bitskip.model.ablation;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CurveReportTest {

    @Test
    void tabulatesEachRunsFinalAndBestValidationLossAndDrawsTheCurves(@TempDir Path tmp) throws Exception {
        Map<String, Path> runs = new LinkedHashMap<>();
        runs.put("fp32 seed 7", ExitHeadStudyTest.runFolder(tmp, "a", new double[] {Math.exp(7), Math.exp(6.5), Math.exp(6.6)}, null));
        runs.put("bf16 seed 7", ExitHeadStudyTest.runFolder(tmp, "b", new double[] {Math.exp(7.1), Math.exp(6.4)}, null));
        String md = Files.readString(CurveReport.write(tmp.resolve("out"), runs, "# t\n"));
        assertTrue(md.contains("| fp32 seed 7 | `a` | 0 | 6.6000 | 735.10 | 6.5000 (200) |"), md);
        assertTrue(md.contains("| bf16 seed 7 | `b` | 0 | 6.4000 | 601.85 | 6.4000 (200) |"), md);
        assertTrue(Files.size(tmp.resolve("out").resolve("val-loss.png")) > 1000);
        Files.writeString(tmp.resolve("runs").resolve("a").resolve("metrics.jsonl"), "");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CurveReport.write(tmp.resolve("out"), runs, ""));
        assertTrue(e.getMessage().contains("no validation") && e.getMessage().contains("fp32 seed 7"), e.getMessage());
    }
}
