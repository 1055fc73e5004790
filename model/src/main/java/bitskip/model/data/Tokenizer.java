package bitskip.model.data;

import com.knuddels.jtokkit.Encodings;
import com.knuddels.jtokkit.api.Encoding;
import com.knuddels.jtokkit.api.EncodingType;
import com.knuddels.jtokkit.api.IntArrayList;

import java.nio.charset.StandardCharsets;

/**
 * GPT-2 byte-level BPE, i.e. tiktoken's {@code r50k_base} (the same 50,257-token vocabulary as GPT-2),
 * through jtokkit. Text is encoded "ordinarily": {@code <|endoftext|>} in the text is plain text, never the
 * special token 50256, so the token stream depends on nothing but the bytes of the text.
 *
 * <p>Thread-safe; {@link #gpt2()} shares one instance because building the encoding costs a few hundred ms.
 */
public final class Tokenizer {
    /** tiktoken's name of the encoding, recorded in token caches and checkpoints. */
    public static final String GPT2_NAME = "r50k_base";
    public static final int GPT2_VOCAB_SIZE = 50257;
    /** {@code <|endoftext|>} in GPT-2. Never produced by {@link #encode}; available for generation. */
    public static final int GPT2_END_OF_TEXT = 50256;

    private static volatile Tokenizer gpt2;

    private final Encoding encoding;
    private final String name;
    private final int vocabSize;

    private Tokenizer(Encoding encoding, String name, int vocabSize) {
        this.encoding = encoding;
        this.name = name;
        this.vocabSize = vocabSize;
    }

    public static Tokenizer gpt2() {
        Tokenizer t = gpt2;
        if (t == null) {
            synchronized (Tokenizer.class) {
                t = gpt2;
                if (t == null) {
                    Encoding e = Encodings.newDefaultEncodingRegistry().getEncoding(EncodingType.R50K_BASE);
                    gpt2 = t = new Tokenizer(e, GPT2_NAME, GPT2_VOCAB_SIZE);
                }
            }
        }
        return t;
    }

    /** The encoding's name, e.g. {@code r50k_base}. */
    public String name() {
        return name;
    }

    public int vocabSize() {
        return vocabSize;
    }

    /** Token ids of text, special-token strings treated as ordinary text. */
    public int[] encode(String text) {
        return encoding.encodeOrdinary(text).toArray();
    }

    /**
     * The {@code reference} convention of the spec (section 5): each line is encoded on its own, keeping its
     * trailing {@code '\n'}, and the results are concatenated. A last line without a newline is encoded as is.
     * (On WikiText-2 this gives the same ids as encoding the whole text at once; on other text it can differ
     * where BPE would merge across a newline.)
     */
    public int[] encodeLines(String text) {
        IntArrayList all = new IntArrayList(text.length() / 3 + 16);
        int start = 0;
        while (start < text.length()) {
            int nl = text.indexOf('\n', start);
            int end = nl < 0 ? text.length() : nl + 1;
            IntArrayList ids = encoding.encodeOrdinary(text.substring(start, end));
            for (int i = 0; i < ids.size(); i++) {
                all.add(ids.get(i));
            }
            start = end;
        }
        return all.toArray();
    }

    /**
     * Text of the ids. A sequence that ends inside a multi-byte UTF-8 character (possible when generating
     * token by token) gets U+FFFD for the incomplete bytes; use {@link #decodeBytes} to join pieces exactly.
     */
    public String decode(int[] ids) {
        return new String(decodeBytes(ids), StandardCharsets.UTF_8);
    }

    public byte[] decodeBytes(int[] ids) {
        IntArrayList list = new IntArrayList(ids.length);
        for (int id : ids) {
            if (id < 0 || id >= vocabSize) {
                throw new IllegalArgumentException("token id " + id + " is outside the " + name + " vocabulary [0, "
                        + vocabSize + ")");
            }
            list.add(id);
        }
        return encoding.decodeBytes(list);
    }
}
