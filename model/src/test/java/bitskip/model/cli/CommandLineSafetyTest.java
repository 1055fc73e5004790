package bitskip.model.cli;

import static org.junit.jupiter.api.Assertions.*;

import bitskip.model.io.RunLock;
import bitskip.model.io.SafeTensors;
import bitskip.model.train.Checkpoints;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * The command line as a user meets it: run folders owned by one run, fresh runs refused over a run, resume
 * refused with another configuration, non-finite training stopped with its own exit code, and every bad input
 * one line with exit code 2.
 */
class CommandLineSafetyTest {
    @TempDir
    static Path tmp;
    static Path train, valid;

    @BeforeAll
    static void textAndCache() throws Exception {
        System.setProperty("bitskip.cache", tmp.resolve("cache").toString()); // token files of the test texts
        StringBuilder text = new StringBuilder();
        for (int i = 0; i < 40; i++) {
            text.append("Line ").append(i).append(" of a small text about ternary weights, ").append(i % 3 == 0 ? "exits" : "layers")
                    .append(" and the Hadamard transform.\n");
        }
        train = Files.writeString(tmp.resolve("train.txt"), text);
        valid = Files.writeString(tmp.resolve("valid.txt"), text.substring(0, 600));
    }

    @AfterAll
    static void clearCache() {
        System.clearProperty("bitskip.cache");
    }

    record Result(int code, String err) {
        List<String> lines() {
            return err.lines().filter(l -> !l.isBlank()).toList();
        }
    }

    static Result run(Object command, String... args) {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream old = System.err;
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            int code = Main.run(command, args);
            return new Result(code, err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setErr(old);
        }
    }

    /** A one-step micro run on the test texts (the java backend: no native library needed). */
    static String[] trainArgs(Path out, String... more) {
        List<String> a = new ArrayList<>(List.of("--preset", "micro", "--train", train.toString(), "--valid", valid.toString(),
                "--out", out.toString(), "--steps", "1", "--batch", "2", "--accum", "1", "--eval-every", "1",
                "--eval-batches", "1", "--backend", "java", "--no-progress"));
        a.addAll(Arrays.asList(more));
        return a.toArray(new String[0]);
    }

    @Test
    void aRunFolderHasOneOwnerAndAFreshRunNeverReplacesARunUnlessForced() throws Exception {
        Path out = tmp.resolve("run");
        try (RunLock held = RunLock.acquire(out, "train")) {
            Result r = run(new TrainCommand(), trainArgs(out));
            assertEquals(ExitCodes.FOLDER_IN_USE, r.code(), r.err());
            assertEquals(1, r.lines().size(), r.err());
            assertTrue(r.err().startsWith("bitskip: " + out + " is in use: train, pid " + ProcessHandle.current().pid()), r.err());
        }
        Result first = run(new TrainCommand(), trainArgs(out));
        assertEquals(0, first.code(), first.err());
        assertFalse(Files.exists(out.resolve(RunLock.FILE)), "the lock is released");
        byte[] best = Files.readAllBytes(out.resolve("checkpoint").resolve("model.safetensors"));
        String metrics = Files.readString(out.resolve("metrics.jsonl"));

        Result again = run(new TrainCommand(), trainArgs(out, "--seed", "8"));
        assertEquals(ExitCodes.BAD_INPUT, again.code(), again.err());
        assertTrue(again.err().contains(out + " already holds a run (config.json, metrics.jsonl, checkpoint/model.safetensors, last)")
                && again.err().contains("--resume") && again.err().contains("--force"), again.err());
        assertArrayEquals(best, Files.readAllBytes(out.resolve("checkpoint").resolve("model.safetensors")), "nothing replaced");
        assertEquals(metrics, Files.readString(out.resolve("metrics.jsonl")), "nothing truncated");
        assertFalse(again.err().contains("data:"), "refused before loading data");

        Result both = run(new TrainCommand(), trainArgs(out, "--resume", "--force"));
        assertEquals(ExitCodes.BAD_INPUT, both.code(), both.err());

        // --resume with another configuration, or after config.json was edited: refused naming the field
        Result lr = run(new TrainCommand(), trainArgs(out, "--resume", "--lr", "0.001"));
        assertEquals(ExitCodes.BAD_INPUT, lr.code(), lr.err());
        assertTrue(lr.err().contains("lr 6.0E-4 -> 0.001"), lr.err());
        Path config = out.resolve("config.json");
        String original = Files.readString(config);
        Files.writeString(config, original.replace("\"patience\" : 3", "\"patience\" : 9"));
        Result edited = run(new TrainCommand(), trainArgs(out, "--resume"));
        assertEquals(ExitCodes.BAD_INPUT, edited.code(), edited.err());
        assertTrue(edited.err().contains(config + " does not describe the checkpoint") && edited.err().contains("patience 3 -> 9"),
                edited.err());
        Files.writeString(config, original);
        Result resumed = run(new TrainCommand(), trainArgs(out, "--resume"));
        assertEquals(0, resumed.code(), resumed.err());

        // a fresh run would rewrite its own input
        Result own = run(new TrainCommand(), trainArgs(out, "--force", "--config", config.toString()));
        assertEquals(ExitCodes.BAD_INPUT, own.code(), own.err());
        assertTrue(own.err().contains("--config " + config + " is config.json of the run folder"), own.err());

        Result forced = run(new TrainCommand(), trainArgs(out, "--force", "--seed", "8"));
        assertEquals(0, forced.code(), forced.err());
        assertTrue(Files.readString(config).contains("\"seed\" : 8"));
        assertFalse(Arrays.equals(best, Files.readAllBytes(out.resolve("checkpoint").resolve("model.safetensors"))));
    }

    @Test
    void aNonFiniteLossStopsTrainingWithItsOwnExitCodeAndNoBestModelClaimed() throws Exception {
        Path out = tmp.resolve("nan");
        Result r = run(new TrainCommand(), trainArgs(out, "--lr", "1e6", "--set", "steps=6", "--set", "eval_every=2"));
        assertEquals(ExitCodes.NON_FINITE, r.code(), r.err());
        String last = r.lines().get(r.lines().size() - 1);
        assertTrue(last.matches("bitskip: step \\d: the (training loss|gradient norm) is (NaN|Infinity); the first non-finite tensor in model order is .*"), last);
        assertEquals(1, r.lines().stream().filter(l -> l.contains("the first non-finite tensor")).count(), "said once: " + r.err());
        assertFalse(r.err().contains("best model in"), r.err());
        for (Path f : List.of(out.resolve("last").resolve("model.safetensors"), out.resolve("checkpoint").resolve("model.safetensors"))) {
            if (Files.exists(f)) { // whatever was written holds finite values and loads
                SafeTensors st = SafeTensors.read(f);
                for (String n : st.names()) {
                    for (float x : st.floats(n)) {
                        assertTrue(Float.isFinite(x), f + " " + n);
                    }
                }
                assertNotNull(Checkpoints.readConfig(f));
            }
        }
    }

    @Test
    void badInputIsOneLineWithExitCode2AndNoStackTrace() throws Exception {
        Path folder = Files.createDirectories(tmp.resolve("folder"));
        Path ckpt = Files.writeString(tmp.resolve("m.safetensors"), "not a checkpoint");
        Path half = Files.writeString(tmp.resolve("half.json"), "{\"n_layers\": 2.5}");
        Path twice = Files.writeString(tmp.resolve("twice.json"), "{\"n_layers\": 2, \"n_layers\": 3}");
        Path file = Files.writeString(tmp.resolve("a-file"), "x");
        Object[][] cases = {
            {new TrainCommand(), new String[] {"--preset", "huge"}, "'huge' is not one of micro, tiny, small, paper-85m"},
            {new TrainCommand(), new String[] {"--stpes", "3"}, "did you mean --steps"},
            {new TrainCommand(), new String[] {"--config", folder.toString()}, "--config " + folder + " is a folder, not a file"},
            {new TrainCommand(), new String[] {"--config", "/proc/nope"}, "--config /proc/nope: no such file"},
            {new TrainCommand(), new String[] {"--config", half.toString()}, "n_layers must be an integer"},
            {new TrainCommand(), new String[] {"--config", twice.toString()}, "field 'n_layers' is given twice"},
            {new TrainCommand(), new String[] {"--lr", "Infinity"}, "lr = 'Infinity' is not a finite number"},
            {new TrainCommand(), new String[] {"--set", "ctx=46341"}, "ctx = 46341"},
            {new TrainCommand(), new String[] {"--out", file.toString()}, "--out " + file + " is a file, not a folder"},
            {new TrainCommand(), new String[] {"--data", "/proc/nope"}, "--data /proc/nope: no such folder"},
            {new EvalCommand(), new String[] {"--checkpoint", ckpt.toString(), "--json", ckpt.toString()},
                "--json " + ckpt + " is the file --checkpoint " + ckpt + " reads"},
            {new EvalCommand(), new String[] {"--checkpoint", ckpt.toString(), "--json", "a.json", "--csv", "a.json"}, "are the same file"},
            {new EvalCommand(), new String[] {"--checkpoint", folder.toString()}, "checkpoint/model.safetensors"},
            {new EvalCommand(), new String[] {"--checkpoint", ckpt.toString()}, ckpt.toString()},
            {new ExportCommand(), new String[] {"--checkpoint", ckpt.toString(), "--out", ckpt.toString()},
                "--out " + ckpt + " is the file --checkpoint " + ckpt + " reads"},
            {new ExportCommand(), new String[] {"--checkpoint", folder.toString(), "--out", "x.bitskip"}, folder + " is a folder"},
            {new GenerateCommand(), new String[] {"--model", folder.toString()}, "--model " + folder + " is a folder, not a file"},
            {new AblationCommand(), new String[] {"--steps", "1", "--out", folder.toString(), "--runs", "some"}, "'some' is not one of factorial, sweeps, exit-heads, all"},
        };
        for (Object[] c : cases) {
            String[] args = (String[]) c[1];
            Result r = run(c[0], args);
            String what = c[0].getClass().getSimpleName() + " " + String.join(" ", args) + ":\n" + r.err();
            assertEquals(ExitCodes.BAD_INPUT, r.code(), what);
            assertEquals(1, r.lines().size(), what);
            assertTrue(r.err().startsWith("bitskip"), what);
            assertTrue(r.err().contains((String) c[2]), what);
            assertFalse(r.err().contains("Exception") || r.err().contains("\tat "), what);
        }
    }

    @Test
    void anAblationFolderHasOneOwnerToo() throws Exception {
        Path out = tmp.resolve("ablation");
        try (RunLock held = RunLock.acquire(out, "ablation")) {
            Result r = run(new AblationCommand(), "--steps", "1", "--out", out.toString(), "--report-only");
            assertEquals(ExitCodes.FOLDER_IN_USE, r.code(), r.err());
            assertTrue(r.err().contains(out + " is in use: ablation"), r.err());
        }
    }

    @Test
    void everyOptionOfEveryCommandHasHelpEveryPathARoleAndEveryChoiceIsListed() {
        CommandLine main = new CommandLine(new Main());
        for (CommandLine sub : main.getSubcommands().values()) {
            for (CommandLine.Model.OptionSpec o : sub.getCommandSpec().options()) {
                assertTrue(o.description().length > 0 && !String.join("", o.description()).isBlank(),
                        sub.getCommandName() + " " + o.longestName() + " has no help text");
            }
        }
        for (CommandLine sub : main.getSubcommands().values()) {
            for (CommandLine.Model.OptionSpec o : sub.getCommandSpec().options()) {
                if (o.type() == Path.class) {
                    assertNotNull(PathOptions.roleOf(sub.getCommandName(), o.longestName()), sub.getCommandName() + " "
                            + o.longestName() + ": say in PathOptions whether it is read or written, so that it is checked");
                }
            }
        }
        String help = main.getSubcommands().get("train").getUsageMessage();
        assertTrue(help.contains("micro, tiny, small, paper-85m"), help);
        assertTrue(help.contains("baseline, h-only, ee-only, bitskip"), help);
        assertTrue(main.getSubcommands().get("ablation").getUsageMessage().contains("factorial, sweeps, exit-heads, all"));
        assertTrue(main.getSubcommands().get("eval").getUsageMessage().contains("else cpu"), "the default backend is cpu");
    }

    @Test
    void withoutTheVectorModuleTheCommandSaysHowToStartIt() throws Exception {
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        String java = ProcessHandle.current().info().command().orElseThrow();
        Process p = new ProcessBuilder(java, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-cp", cp, "BitSkipTrain", "--preset", "micro",
                "--steps", "1", "--out", tmp.resolve("novector").toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(ExitCodes.BAD_INPUT, p.exitValue(), out);
        assertTrue(out.contains("bitskip: this JVM was started without the Vector API module")
                && out.contains("--add-modules jdk.incubator.vector"), out);
        assertFalse(out.contains("NoClassDefFoundError") || out.contains("\tat "), out);
    }
}
