package bitskip.model.infer;

import java.util.Locale;

/** What a generation measured: speeds of prefill and decode, exits, and speculative acceptance. */
public final class DecodeStats {
    public int promptTokens;
    public long prefillNanos;
    /** Tokens produced after the first one (the first comes out of the prefill). */
    public int decodeTokens;
    public long decodeNanos;
    /** Σ over generated tokens of the number of layers whose output gave that token's logits. */
    public long exitLayerSum;
    public int exitCount;
    public int drafted;
    public int accepted;
    public int verifyPasses;
    /** Row × layer evaluations (compute actually spent, catch-up of skipped layers included). */
    public long rowLayers;
    /**
     * Passes over the LM head (prefill included). With ternary blocks the float head is most of the bytes a
     * token reads, so this, more than the exit layer, says what a strategy costs.
     */
    public long headPasses;
    /** Passes over the draft head (the draft vocabulary's rows only). */
    public long draftPasses;
    /**
     * Where decode time went, for the benchmarks: drafting (self-speculation: the draft tokens' layers up to
     * the exit and their draft or exit heads), layers (the layers of plain steps, or verification's), and heads
     * (the head pass and the token choice of plain steps, or verification's one head pass and its checks).
     * An exit rule's own work counts under layers, the head passes of a confidence exit included (its final
     * logits then come from that pass, so its heads part is only the token choice). Their sum is decodeNanos
     * less the loop's own few calls.
     */
    public long draftNanos, layerNanos, headNanos;

    public double prefillTokensPerSecond() {
        return prefillNanos == 0 ? Double.NaN : promptTokens / (prefillNanos / 1e9);
    }

    public double decodeTokensPerSecond() {
        return decodeNanos == 0 ? Double.NaN : decodeTokens / (decodeNanos / 1e9);
    }

    public double meanExitLayer() {
        return exitCount == 0 ? Double.NaN : (double) exitLayerSum / exitCount;
    }

    public double acceptanceRate() {
        return drafted == 0 ? Double.NaN : (double) accepted / drafted;
    }

    void exit(int layers) {
        exitLayerSum += layers;
        exitCount++;
    }

    /** One line for standard error. */
    public String summary(String strategy, int L) {
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT, "strategy %s: prefill %d tokens at %.1f tok/s; decode %d tokens at %.1f tok/s;"
                        + " mean exit layer %.2f of %d", strategy, promptTokens, prefillTokensPerSecond(), decodeTokens,
                decodeTokensPerSecond(), meanExitLayer(), L));
        if (drafted > 0) {
            b.append(String.format(Locale.ROOT, "; acceptance %.3f (%d of %d drafts, %d verify passes)",
                    acceptanceRate(), accepted, drafted, verifyPasses));
        }
        b.append(String.format(Locale.ROOT, "; %d row-layer evaluations, %d head passes", rowLayers, headPasses));
        if (draftPasses > 0) {
            b.append(String.format(Locale.ROOT, ", %d draft-head passes", draftPasses));
        }
        return b.toString();
    }
}
