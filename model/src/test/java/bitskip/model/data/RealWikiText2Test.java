package bitskip.model.data;

import bitskip.engine.Requirements;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Checks the real WikiText-2 raw files when {@code BITSKIP_SHARED_DATA} names a folder holding them
 * (e.g. shared/data/wikitext-2-raw); skipped otherwise.
 */
class RealWikiText2Test {
    @TempDir
    Path out;

    /**
     * GPT-2 BPE token counts of the files as they are (r50k_base, ordinary encoding), from
     * shared/data/wikitext-2-raw/README.md; encoding line by line gives the same counts.
     */
    static final Map<WikiText2.Split, Integer> EXPECTED_TOKENS = Map.of(
            WikiText2.Split.TRAIN, 2_417_786,
            WikiText2.Split.VALID, 249_887,
            WikiText2.Split.TEST, 286_221);

    @Test
    void realFilesHaveThePublishedHashesAndTokenCounts() throws IOException {
        String dir = System.getenv("BITSKIP_SHARED_DATA");
        Requirements.skipOrFail("data", dir == null || dir.isBlank()
                ? "BITSKIP_SHARED_DATA is not set; point it at a folder with wiki.{train,valid,test}.raw to run this test"
                : !Files.isRegularFile(Path.of(dir, "wiki.valid.raw")) ? "BITSKIP_SHARED_DATA=" + dir + " has no wiki.valid.raw"
                : null).ifPresent(Assumptions::abort);
        Path data = Path.of(dir);

        // Verifies all three sha256 values against the hard-coded ones.
        WikiText2 w = new WikiText2.Locator().env(Map.of()).log(s -> {}).locate(data);
        Tokenizer tok = Tokenizer.gpt2();
        for (WikiText2.Split s : WikiText2.Split.values()) {
            long t0 = System.nanoTime();
            TokenFile tf = TokenFile.load(w.file(s), TokenFile.defaultCacheFile(w.file(s), out, tok), tok, m -> {});
            Blocks blocks = new Blocks(tf.ids(), 512, w.file(s).toString());
            System.out.printf("WikiText-2 %s: %,d GPT-2 tokens, %,d blocks of 512 (+1), %.1f s%n", s.fileName(),
                    tf.count(), blocks.count(), (System.nanoTime() - t0) / 1e9);
            assertEquals(EXPECTED_TOKENS.get(s), tf.count(), s.fileName());
            assertEquals(tok.decode(tf.ids()), Files.readString(w.file(s)), s.fileName() + " must decode to itself");
        }
    }
}
