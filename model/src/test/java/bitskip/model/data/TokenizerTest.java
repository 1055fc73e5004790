package bitskip.model.data;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class TokenizerTest {
    private final Tokenizer tok = Tokenizer.gpt2();

    @Test
    void knownGpt2Ids() {
        // GPT-2's well-known ids: "Hello" = 15496, " world" = 995.
        assertArrayEquals(new int[] {15496, 995}, tok.encode("Hello world"));
        assertEquals("r50k_base", tok.name());
        assertEquals(50257, tok.vocabSize());
    }

    @Test
    void specialTokenTextIsOrdinaryText() {
        int[] ids = tok.encode("<|endoftext|>");
        assertEquals(false, ids.length == 1 && ids[0] == Tokenizer.GPT2_END_OF_TEXT);
        assertEquals("<|endoftext|>", tok.decode(ids));
    }

    @Test
    void encodeLinesKeepsNewlinesAndRoundTrips() {
        String text = " = Valkyria Chronicles III = \n \n Senjō no Valkyria 3 : <unk> Chronicles ( Japanese : 戦場のヴァルキュリア3 ) \n"
                + "last line without newline";
        int[] ids = tok.encodeLines(text);
        assertEquals(text, tok.decode(ids));
        // Per line, concatenated.
        int[] a = tok.encode(" = Valkyria Chronicles III = \n");
        assertArrayEquals(a, java.util.Arrays.copyOf(ids, a.length));
        assertEquals(0, tok.encodeLines("").length);
    }

    @Test
    void endOfTextDecodesForGeneration() {
        assertEquals("<|endoftext|>", tok.decode(new int[] {Tokenizer.GPT2_END_OF_TEXT}));
    }

    @Test
    void decodeRefusesIdsOutsideVocabulary() {
        String msg = assertThrows(IllegalArgumentException.class, () -> tok.decode(new int[] {50257})).getMessage();
        assertEquals("token id 50257 is outside the r50k_base vocabulary [0, 50257)", msg);
    }
}
