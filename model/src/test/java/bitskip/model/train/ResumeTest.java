package bitskip.model.train;

import static org.junit.jupiter.api.Assertions.*;

import bitskip.engine.JavaBackend;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.config.Presets;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A killed run resumes from its last checkpoint and continues exactly as the uninterrupted run would. */
class ResumeTest {
    static BitSkipConfig config(String variant) {
        return Configs.override(Presets.build("micro", "paper", variant), Map.of(
                "steps", "8", "batch", "2", "accum", "2", "eval_every", "3", "patience", "100",
                "dropout", "0.1", "warmup_steps", "2"), "test");
    }

    static List<String> trainLines(Path dir) throws Exception {
        return Files.readAllLines(dir.resolve("metrics.jsonl")).stream()
                .filter(l -> l.contains("\"train\""))
                // tokens/s differs run to run; everything else must not
                .map(l -> l.replaceAll("\"tokens_per_s\":[0-9.E]+,", ""))
                .collect(Collectors.toList());
    }

    @Test
    void resumedRunEqualsTheUninterruptedRun(@TempDir Path tmp) throws Exception {
        for (String variant : new String[] {"bitskip", "baseline"}) {
            BitSkipConfig c = config(variant);
            SyntheticData data = new SyntheticData(c.vocabSize(), c.ctx(), 4000, 1);
            PrintStream quiet = new PrintStream(new ByteArrayOutputStream());

            Path full = tmp.resolve(variant + "-full");
            Trainer t = new Trainer(c, new JavaBackend(), data, full, null);
            t.prepare(false, quiet);
            t.run();

            // "Kill" after step 5: a run whose budget ends there wrote its last checkpoint at step 3 and
            // metrics up to step 5; then a half-written next checkpoint is left behind.
            Path killed = tmp.resolve(variant + "-killed");
            BitSkipConfig shortRun = c;
            Trainer k = new Trainer(shortRun, new JavaBackend(), new StopAfter(data, 5), killed, null);
            k.prepare(false, quiet);
            assertThrows(Killed.class, k::run);
            Files.createDirectories(killed.resolve("last.tmp"));
            Files.writeString(killed.resolve("last.tmp").resolve("model.safetensors"), "half a file");

            Trainer r = new Trainer(c, new JavaBackend(), data, killed, null);
            r.prepare(true, quiet);
            assertEquals(3, r.state().step(), "resumes at the last checkpoint");
            r.run();
            assertEquals(trainLines(full), trainLines(killed), variant + ": losses after resume differ");
            assertEquals(Files.readAllLines(full.resolve("metrics.jsonl")).stream().filter(l -> l.contains("eval")).toList(),
                    Files.readAllLines(killed.resolve("metrics.jsonl")).stream().filter(l -> l.contains("eval")).toList());
            assertArrayEquals(Files.readAllBytes(full.resolve("last").resolve("model.safetensors")),
                    Files.readAllBytes(killed.resolve("last").resolve("model.safetensors")));
        }
    }

    @Test
    void resumeFallsBackToThePreviousCheckpointWhenKilledBetweenRenames(@TempDir Path tmp) throws Exception {
        BitSkipConfig c = config("bitskip");
        SyntheticData data = new SyntheticData(c.vocabSize(), c.ctx(), 4000, 1);
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream());
        Path dir = tmp.resolve("run");
        Trainer t = new Trainer(c, new JavaBackend(), new StopAfter(data, 7), dir, null);
        t.prepare(false, quiet);
        assertThrows(Killed.class, t::run);
        // killed after renaming last -> last.prev and before renaming last.tmp -> last
        Files.move(dir.resolve("last"), dir.resolve("last.prev"));
        Trainer r = new Trainer(c, new JavaBackend(), data, dir, null);
        r.prepare(true, quiet);
        assertEquals(6, r.state().step());
    }

    @Test
    void resumeWithAnotherConfigurationIsRefusedNamingTheField(@TempDir Path tmp) throws Exception {
        BitSkipConfig c = config("bitskip");
        SyntheticData data = new SyntheticData(c.vocabSize(), c.ctx(), 4000, 1);
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream());
        Path dir = tmp.resolve("run");
        Trainer t = new Trainer(c, new JavaBackend(), new StopAfter(data, 4), dir, null);
        t.prepare(false, quiet);
        assertThrows(Killed.class, t::run);
        BitSkipConfig other = Configs.override(c, Map.of("lr", "0.001"), "test");
        Trainer r = new Trainer(other, new JavaBackend(), data, dir, null);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> r.prepare(true, quiet));
        assertTrue(e.getMessage().contains("lr"), e.getMessage());
    }

    static final class Killed extends RuntimeException {}

    /** Data that "kills" the run when asked for the batch of a given step. */
    static final class StopAfter implements BatchSource {
        final BatchSource d;
        final int stopStep;

        StopAfter(BatchSource d, int stopStep) {
            this.d = d;
            this.stopStep = stopStep;
        }

        @Override
        public void trainBatch(int step, int micro, int B, int[] inputs, int[] targets) {
            if (step == stopStep) {
                throw new Killed();
            }
            d.trainBatch(step, micro, B, inputs, targets);
        }

        @Override
        public int validBatches(int B) {
            return d.validBatches(B);
        }

        @Override
        public int validBatch(int i, int B, int[] inputs, int[] targets) {
            return d.validBatch(i, B, inputs, targets);
        }
    }
}
