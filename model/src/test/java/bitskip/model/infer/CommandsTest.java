package bitskip.model.infer;

import static org.junit.jupiter.api.Assertions.*;

import bitskip.model.cli.ExportCommand;
import bitskip.model.cli.GenerateCommand;
import bitskip.model.cli.Main;
import bitskip.model.train.Checkpoints;
import java.nio.file.Path;
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
}
