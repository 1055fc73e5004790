package bitskip.model.infer;

import java.util.Arrays;
import java.util.function.IntConsumer;

/**
 * Generation: prefill the prompt in batches through the strategy's prefill depth, take the first token from
 * the last prompt position, then decode step by step with the strategy until max tokens, the end-of-text
 * token, or the end of the context.
 */
public final class Generator {
    private Generator() {}

    public record Result(int[] tokens, DecodeStats stats) {}

    /**
     * @param eos         stop after this token (it is included in the output); -1 for none
     * @param prefillRows prompt tokens per batch (also the session's rows per layer call)
     * @param onToken     receives each token as soon as it is final; may be null
     */
    public static Result generate(InferenceModel m, int[] prompt, int maxNew, DecodingStrategy strategy,
                                  Sampler sampler, int eos, int prefillRows, IntConsumer onToken) {
        if (prompt.length < 1) {
            throw new IllegalArgumentException("the prompt must have at least one token");
        }
        if (prompt.length >= m.T) {
            throw new IllegalArgumentException("the prompt has " + prompt.length + " tokens; the context holds "
                    + m.T + " positions and at least one must remain for generation");
        }
        if (maxNew < 1) {
            throw new IllegalArgumentException("max tokens must be >= 1, got " + maxNew);
        }
        Session s = m.newSession(Math.max(1, prefillRows));
        DecodeStats stats = new DecodeStats();
        int[] out = new int[maxNew];
        int count = 0;

        long t0 = System.nanoTime();
        int depth = strategy.prefillDepth(m.L);
        for (int i = 0; i < prompt.length; i += prefillRows) {
            s.advance(Arrays.copyOfRange(prompt, i, Math.min(prompt.length, i + prefillRows)), depth, null);
        }
        int first = sampler.next(s.logits(prompt.length - 1), m.V);
        stats.prefillNanos = System.nanoTime() - t0;
        stats.promptTokens = prompt.length;
        stats.exit(depth);
        out[count++] = first;
        if (onToken != null) {
            onToken.accept(first);
        }

        long t1 = System.nanoTime();
        int last = first;
        while (count < maxNew && last != eos && s.length() < m.T) {
            int[] step = strategy.step(s, last, maxNew - count, sampler, stats);
            for (int tok : step) {
                out[count++] = tok;
                last = tok;
                if (onToken != null) {
                    onToken.accept(tok);
                }
                if (tok == eos) {
                    break;
                }
            }
        }
        stats.decodeNanos = System.nanoTime() - t1;
        stats.decodeTokens = count - 1;
        stats.rowLayers = s.rowLayers();
        stats.headPasses = s.headPasses();
        stats.draftPasses = s.draftPasses();
        return new Result(Arrays.copyOf(out, count), stats);
    }
}
