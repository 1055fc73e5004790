package bitskip.model.data;

/**
 * A token stream cut into non-overlapping training blocks for a context of ctx tokens.
 *
 * <p>Block i is the ctx+1 tokens {@code tokens[i*ctx .. i*ctx+ctx]}: its inputs are the first ctx of them and
 * its targets the last ctx (the inputs shifted by one). Blocks start every ctx tokens, so consecutive blocks
 * share one token (the last target of block i is the first input of block i+1) and every token after the first
 * is predicted exactly once; the count is {@code (n-1)/ctx}, and the tail that does not fill a block is dropped.
 *
 * <p>This differs slightly from Hugging Face's {@code group_texts} (the authors' pipeline), which cuts ctx-token
 * blocks and shifts inside each block, predicting ctx-1 tokens per block; the losses are comparable but not
 * bit-identical.
 */
public final class Blocks {
    private final int[] tokens;
    private final int ctx;
    private final int count;
    private final String source;

    /**
     * @param source names the text in messages (usually its file)
     * @throws IllegalArgumentException when the stream is too short for one block, naming source, the
     *                                  token count and the block size needed
     */
    public Blocks(int[] tokens, int ctx, String source) {
        if (ctx <= 0) {
            throw new IllegalArgumentException("context length ctx must be positive, got " + ctx);
        }
        if (tokens.length < ctx + 1L) {
            throw new IllegalArgumentException(source + " has " + tokens.length + " tokens, too few for one block: "
                    + "a context of " + ctx + " needs " + (ctx + 1L) + " (ctx inputs plus the target of the last)");
        }
        this.tokens = tokens;
        this.ctx = ctx;
        this.count = (tokens.length - 1) / ctx;
        this.source = source;
    }

    public static Blocks of(TokenFile file, int ctx) {
        return new Blocks(file.ids(), ctx, String.valueOf(file.source() != null ? file.source() : file.cacheFile()));
    }

    /** Number of blocks. */
    public int count() {
        return count;
    }

    public int ctx() {
        return ctx;
    }

    public String source() {
        return source;
    }

    /** Number of tokens predicted over all blocks: {@code count * ctx}. */
    public long targetTokens() {
        return (long) count * ctx;
    }

    /** Copies block b into row {@code row} of inputs and targets, which are (rows, ctx) row-major. */
    public void copy(int b, int[] inputs, int[] targets, int row) {
        if (b < 0 || b >= count) {
            throw new IndexOutOfBoundsException("block " + b + " of " + source + ", which has " + count + " blocks");
        }
        int start = b * ctx;
        System.arraycopy(tokens, start, inputs, row * ctx, ctx);
        System.arraycopy(tokens, start + 1, targets, row * ctx, ctx);
    }
}
