package bitskip.model.train;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.abort;

import bitskip.engine.Backend;
import bitskip.engine.JavaBackend;
import bitskip.engine.Requirements;
import bitskip.engine.cpu.CpuBackend;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.config.Presets;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
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

    /**
     * A config whose cpu kernels take their vector paths everywhere (attention rows of 32, a 1024-token head):
     * enough exp, dot and sum lanes that a kernel whose bits depend on JIT state or alignment shows it.
     */
    static BitSkipConfig cpuConfig() {
        return Configs.override(config("bitskip"), Map.of("ctx", "32", "vocab_size", "1024"), "test");
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
            resumedRunEqualsTheUninterruptedRun(tmp.resolve(variant), config(variant), JavaBackend::new);
        }
        // the exits' own parameters and their moments are checkpointed and resumed like every other parameter
        resumedRunEqualsTheUninterruptedRun(tmp.resolve("adapter"), Configs.override(config("bitskip"),
                Map.of("exit_head", "adapter", "exit_head_grad_stop", "true"), "test"), JavaBackend::new);
        resumedRunEqualsTheUninterruptedRun(tmp.resolve("lowrank"), Configs.override(config("ee-only"),
                Map.of("exit_head", "lowrank", "exit_rank", "2"), "test"), JavaBackend::new);
    }

    /**
     * The default path (the cpu backend with its Vector API kernels, two threads) resumes exactly too: the
     * resumed half runs in a JVM whose JIT has compiled what the first half ran interpreted.
     */
    @Test
    void resumeIsExactOnTheDefaultCpuPath(@TempDir Path tmp) throws Exception {
        Requirements.skipOrFail("cpu", CpuBackend.unavailableReason()).ifPresent(r -> abort("cpu backend unavailable: " + r));
        resumedRunEqualsTheUninterruptedRun(tmp, cpuConfig(), () -> new CpuBackend(2, true));
    }

    /** Precision bf16 (oneDNN's products on the pool's threads) resumes exactly too, and really changes the numbers. */
    @Test
    void resumeIsExactInBf16(@TempDir Path tmp) throws Exception {
        Requirements.skipOrFail("bf16", CpuBackend.bf16UnavailableReason()).ifPresent(r -> abort("bf16 unavailable: " + r));
        BitSkipConfig bf16 = Configs.override(cpuConfig(), Map.of("precision", "bf16"), "test");
        resumedRunEqualsTheUninterruptedRun(tmp.resolve("bf16"), bf16, () -> new CpuBackend(2, true));
        resumedRunEqualsTheUninterruptedRun(tmp.resolve("fp32"), cpuConfig(), () -> new CpuBackend(2, true));
        List<String> a = trainLines(tmp.resolve("bf16").resolve("full")), b = trainLines(tmp.resolve("fp32").resolve("full"));
        assertEquals(a.size(), b.size());
        assertNotEquals(a, b, "bf16 products round differently from float32's");
    }

    /** Same seed, backend and threads: the same bits, run after run in one JVM, on the default cpu path (one thread). */
    @Test
    void theDefaultCpuPathGivesTheSameBitsEveryRun(@TempDir Path tmp) throws Exception {
        Requirements.skipOrFail("cpu", CpuBackend.unavailableReason()).ifPresent(r -> abort("cpu backend unavailable: " + r));
        BitSkipConfig c = cpuConfig();
        SyntheticData data = new SyntheticData(c.vocabSize(), c.ctx(), 4000, 1);
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream());
        byte[] first = null;
        List<String> firstLines = null;
        for (int run = 0; run < 2; run++) {
            Path dir = tmp.resolve("run" + run);
            try (Backend be = new CpuBackend(1, true)) {
                Trainer t = new Trainer(c, be, data, dir, null);
                t.prepare(false, quiet);
                t.run();
            }
            byte[] bytes = Files.readAllBytes(dir.resolve("last").resolve("optimizer.safetensors"));
            if (first == null) {
                first = bytes;
                firstLines = trainLines(dir);
            } else {
                assertEquals(firstLines, trainLines(dir), "run " + run + ": losses differ");
                assertArrayEquals(first, bytes, "run " + run + ": weights' moments differ");
                assertArrayEquals(Files.readAllBytes(tmp.resolve("run0").resolve("last").resolve("model.safetensors")),
                        Files.readAllBytes(dir.resolve("last").resolve("model.safetensors")), "run " + run + ": weights differ");
            }
        }
    }

    static void resumedRunEqualsTheUninterruptedRun(Path tmp, BitSkipConfig c, Supplier<Backend> backend) throws Exception {
        SyntheticData data = new SyntheticData(c.vocabSize(), c.ctx(), 4000, 1);
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream());

        Path full = tmp.resolve("full");
        try (Backend be = backend.get()) {
            Trainer t = new Trainer(c, be, data, full, null);
            t.prepare(false, quiet);
            t.run();
        }

        // "Kill" after step 5: a run whose budget ends there wrote its last checkpoint at step 3 and
        // metrics up to step 5; then a half-written next checkpoint is left behind.
        Path killed = tmp.resolve("killed");
        try (Backend be = backend.get()) {
            Trainer k = new Trainer(c, be, new StopAfter(data, 5), killed, null);
            k.prepare(false, quiet);
            assertThrows(Killed.class, k::run);
        }
        Files.createDirectories(killed.resolve("last.tmp"));
        Files.writeString(killed.resolve("last.tmp").resolve("model.safetensors"), "half a file");

        try (Backend be = backend.get()) {
            Trainer r = new Trainer(c, be, data, killed, null);
            r.prepare(true, quiet);
            assertEquals(3, r.state().step(), "resumes at the last checkpoint");
            r.run();
        }
        assertEquals(trainLines(full), trainLines(killed), c.variant() + ": losses after resume differ");
        assertEquals(Files.readAllLines(full.resolve("metrics.jsonl")).stream().filter(l -> l.contains("eval")).toList(),
                Files.readAllLines(killed.resolve("metrics.jsonl")).stream().filter(l -> l.contains("eval")).toList());
        for (String f : new String[] {"model.safetensors", "optimizer.safetensors"}) {
            assertArrayEquals(Files.readAllBytes(full.resolve("last").resolve(f)), Files.readAllBytes(killed.resolve("last").resolve(f)), f);
        }
        assertArrayEquals(Files.readAllBytes(full.resolve("checkpoint").resolve("model.safetensors")),
                Files.readAllBytes(killed.resolve("checkpoint").resolve("model.safetensors")), "best model");
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
