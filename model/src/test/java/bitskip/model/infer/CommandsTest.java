package bitskip.model.infer;

import static org.junit.jupiter.api.Assertions.*;

import bitskip.model.cli.EvalCommand;
import bitskip.model.cli.ExportCommand;
import bitskip.model.cli.GenerateCommand;
import bitskip.model.cli.Main;
import bitskip.model.config.Configs;
import bitskip.model.config.Presets;
import bitskip.model.train.Checkpoints;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** export then generate from the command line, every strategy, on a micro model (token ids). */
class CommandsTest {
    @TempDir
    Path dir;

    @Test
    void exportThenGenerateWithEveryStrategy() throws Exception {
        var train = Micro.training(Micro.config("paper", "bitskip", 32), 1, 2);
        Path ckpt = dir.resolve("model.safetensors"), out = dir.resolve("m.bitskip");
        Checkpoints.saveModel(train, ckpt, 0);
        assertEquals(0, Main.run(new ExportCommand(), new String[] {"--checkpoint", ckpt.toString(), "--out",
                out.toString(), "--packing", "tq1_5"}));
        for (String[] s : new String[][] {{"full"}, {"exit", "--exit-layer", "1"}, {"router"},
                {"confidence", "--threshold", "0.5"}, {"self-speculative", "--exit-layer", "1", "--drafts", "3"}}) {
            String[] args = new String[6 + s.length];
            System.arraycopy(new String[] {"--model", out.toString(), "--prompt-ids", "1,2,3", "--strategy"}, 0, args, 0, 5);
            System.arraycopy(s, 0, args, 5, s.length);
            args[args.length - 1] = "--greedy";
            assertEquals(0, Main.run(new GenerateCommand(), args), String.join(" ", s));
        }
        assertEquals(0, Main.run(new GenerateCommand(), new String[] {"--model", out.toString(), "--prompt-ids", "4,5",
                "--temperature", "0.8", "--top-k", "10", "--top-p", "0.9", "--seed", "3", "--max-tokens", "5"}));
        assertEquals(2, Main.run(new GenerateCommand(), new String[] {"--model", out.toString(), "--prompt", "hi"}),
                "a text prompt needs the GPT-2 vocabulary");
    }

    /** Runs a command with System.err (and picocli's error stream) captured; returns exit code and stderr. */
    static String[] run(Callable<Integer> command, String... args) {
        PrintStream old = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        int code;
        try {
            code = Main.run(command, args);
        } finally {
            System.setErr(old);
        }
        return new String[] {Integer.toString(code), err.toString(StandardCharsets.UTF_8)};
    }

    @Test
    void exportNeverWritesOverItsInput() throws Exception {
        var train = Micro.training(Micro.config("paper", "bitskip", 16), 1, 2);
        Path ckpt = dir.resolve("model.safetensors");
        Checkpoints.saveModel(train, ckpt, 0);
        byte[] before = Files.readAllBytes(ckpt);
        Path link = Files.createSymbolicLink(dir.resolve("link.safetensors"), ckpt);
        for (Path out : new Path[] {ckpt, dir.resolve("sub/../model.safetensors"), link}) {
            Files.createDirectories(dir.resolve("sub"));
            String[] r = run(new ExportCommand(), "--checkpoint", ckpt.toString(), "--out", out.toString());
            assertEquals("2", r[0], r[1]);
            assertTrue(r[1].contains("is the file --checkpoint " + ckpt + " reads: writing it would destroy the input"), r[1]);
        }
        assertArrayEquals(before, Files.readAllBytes(ckpt), "the checkpoint is untouched");
    }

    @Test
    void samplingOptionsWithoutTemperatureAndAFullContextAreSaid() throws Exception {
        var train = Micro.training(Micro.config("paper", "bitskip", 16), 1, 2);
        Path ckpt = dir.resolve("model.safetensors"), out = dir.resolve("m.bitskip");
        Checkpoints.saveModel(train, ckpt, 0);
        assertEquals(0, Main.run(new ExportCommand(), new String[] {"--checkpoint", ckpt.toString(), "--out", out.toString()}));
        for (String opt : new String[] {"--top-p", "--top-k", "--seed"}) {
            String[] r = run(new GenerateCommand(), "--model", out.toString(), "--prompt-ids", "1,2", opt, "1");
            assertEquals("2", r[0], opt);
            assertEquals("bitskip: " + opt + " applies to sampling: give --temperature T too (without it decoding is greedy)",
                    r[1].strip());
        }
        String[] r = run(new GenerateCommand(), "--model", out.toString(), "--prompt-ids", "1,2,3,4,5,6,7,8,9,10",
                "--max-tokens", "20");
        assertEquals("0", r[0], r[1]);
        assertTrue(r[1].contains("bitskip: generation stopped after 7 of 20 tokens: the context of 16 positions is full "
                + "(the prompt took 10)"), r[1]);
        r = run(new GenerateCommand(), "--model", out.toString(), "--prompt-ids", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16");
        assertEquals("2", r[0]);
        assertTrue(r[1].contains("the prompt has 16 tokens; the context holds 16 positions"), r[1]);
    }

    /**
     * A GPT-2-vocabulary micro model through the whole path: export with the int8 head and a draft head chosen
     * from a text file, generate from a text prompt with self-speculation, eval --model on the text.
     */
    @Test
    void exportInt8WithDraftHeadThenGenerateAndEvaluate() throws Exception {
        String oldCache = System.getProperty("bitskip.cache");
        System.setProperty("bitskip.cache", dir.resolve("cache").toString());
        try {
            var c = Configs.override(Presets.build("micro", "paper", "bitskip"),
                    Map.of("ctx", "16", "vocab_size", Integer.toString(Presets.GPT2_VOCAB), "dropout", "0"), "test");
            var train = Micro.training(c, 1, 2);
            Path ckpt = dir.resolve("model.safetensors"), out = dir.resolve("m.bitskip"), text = dir.resolve("text.txt");
            Checkpoints.saveModel(train, ckpt, 0);
            Files.writeString(text, "The history of the city is the history of its people and of the river.\n".repeat(12)
                    + "A second line, with other words: bridges, markets, and the old town hall.\n".repeat(5));
            String[] r = run(new ExportCommand(), "--checkpoint", ckpt.toString(), "--out", out.toString(), "--head", "f32",
                    "--head-activation-bits", "8");
            assertEquals("2", r[0]);
            assertTrue(r[1].contains("--head-activation-bits 8 applies to --head int8, not f32"), r[1]);
            r = run(new ExportCommand(), "--checkpoint", ckpt.toString(), "--out", out.toString(), "--head", "int8",
                    "--head-activation-bits", "8", "--draft-tokens", "20", "--train", text.toString());
            assertEquals("0", r[0], r[1]);
            assertTrue(r[1].contains("int8 head") && r[1].contains("with 8-bit activations")
                    && r[1].contains("draft head of 20 tokens covering"), r[1]);
            InferenceModel m = DeployFile.read(out, Parallel.serial());
            assertEquals(LmHead.Format.INT8, m.head().format);
            assertEquals(127, m.head().xLevels);
            assertEquals(20, m.draft().size());

            r = run(new GenerateCommand(), "--model", out.toString(), "--prompt", "The history of", "--strategy",
                    "self-speculative", "--exit-layer", "1", "--drafts", "3", "--max-tokens", "8");
            assertEquals("0", r[0], r[1]);
            assertTrue(r[1].contains("int8 head with 8-bit activations on " + LmHead.Int8Kernel.chosen().name().toLowerCase(java.util.Locale.ROOT)
                    + ", draft head of 20 tokens") && r[1].contains("draft-head passes"), r[1]);

            Path json = dir.resolve("e.json");
            r = run(new EvalCommand(), "--model", out.toString(), "--text", text.toString(), "--threads", "2", "--json",
                    json.toString());
            assertEquals("0", r[0], r[1]);
            var j = Configs.JSON.readTree(json.toFile());
            assertEquals("int8", j.get("head").asText());
            assertEquals(127, j.get("head_activation_levels").asInt());
            assertEquals(c.nLayers(), j.get("exits").size());
            assertTrue(j.get("ppl").get("token_weighted").asDouble() > 1);

            r = run(new ExportCommand(), "--checkpoint", ckpt.toString(), "--out", out.toString(), "--train", text.toString());
            assertEquals("2", r[0]);
            assertTrue(r[1].contains("give --draft-tokens N too"), r[1]);
            byte[] file = Files.readAllBytes(out);
            r = run(new EvalCommand(), "--model", out.toString(), "--text", text.toString(), "--json", out.toString());
            assertEquals("2", r[0]);
            assertTrue(r[1].contains("--json " + out + " is the file --model " + out + " reads"), r[1]);
            assertArrayEquals(file, Files.readAllBytes(out));
            r = run(new EvalCommand(), "--model", out.toString(), "--checkpoint", ckpt.toString());
            assertEquals("2", r[0]);
            r = run(new EvalCommand(), "--model", out.toString(), "--text", text.toString(), "--backend", "cpu");
            assertEquals("2", r[0]);
            assertTrue(r[1].contains("--backend applies to --checkpoint"), r[1]);
        } finally {
            if (oldCache == null) {
                System.clearProperty("bitskip.cache");
            } else {
                System.setProperty("bitskip.cache", oldCache);
            }
        }
    }
}
