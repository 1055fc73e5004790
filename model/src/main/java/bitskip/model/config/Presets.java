package bitskip.model.config;

import java.util.List;

/**
 * Builds a {@link BitSkipConfig} from a preset (the size), a profile ("paper", the paper's equations, or
 * "reference", the authors' code behind Tables 2–5) and a variant (one of the factorial ablation's four
 * models, Table 2). The values come from {@code shared/spec/MODEL.md} sections 1, 4 and 7.
 */
public final class Presets {
    public static final List<String> PRESETS = List.of("micro", "tiny", "small", "paper-85m");
    public static final List<String> PROFILES = List.of("paper", "reference");
    public static final List<String> VARIANTS = List.of("baseline", "h-only", "ee-only", "bitskip");

    /** GPT-2 BPE (r50k_base). */
    public static final int GPT2_VOCAB = 50257;

    private Presets() {}

    public static BitSkipConfig build(String preset, String profile, String variant) {
        int d, layers, heads, kvHeads, ffn, ctx, vocab = GPT2_VOCAB;
        switch (preset) {
            // micro: the size of the golden tests and smoke runs, not a model anyone should train.
            case "micro" -> { d = 32; layers = 3; heads = 4; kvHeads = 2; ffn = 64; ctx = 8; vocab = 67; }
            case "tiny" -> { d = 128; layers = 4; heads = 4; kvHeads = 2; ffn = 512; ctx = 128; }
            case "small" -> { d = 256; layers = 6; heads = 4; kvHeads = 2; ffn = 1024; ctx = 256; }
            case "paper-85m" -> { d = 512; layers = 12; heads = 8; kvHeads = 4; ffn = 2048; ctx = 512; }
            default -> throw unknown("preset", preset, PRESETS);
        }
        boolean ref;
        switch (profile) {
            case "paper" -> ref = false;
            case "reference" -> ref = true;
            default -> throw unknown("profile", profile, PROFILES);
        }
        boolean hadamard, earlyExit;
        switch (variant) {
            case "baseline" -> { hadamard = false; earlyExit = false; }
            case "h-only" -> { hadamard = true; earlyExit = false; }
            case "ee-only" -> { hadamard = false; earlyExit = true; }
            case "bitskip" -> { hadamard = true; earlyExit = true; }
            default -> throw unknown("variant", variant, VARIANTS);
        }
        // The authors' code trained baseline and h-only without the routing and quantization losses.
        boolean auxLosses = earlyExit || !ref;
        return new BitSkipConfig(
                vocab, d, layers, heads, kvHeads, ffn, ctx,
                1e-5f, 10000.0f, 0.1f,
                hadamard, 8, ref ? 8 : 4, "all", ref, ref, true,
                earlyExit ? 0.3f : 0.0f, earlyExit ? 0.7f : 0.0f,
                auxLosses ? 0.2f : 0.0f, auxLosses ? 0.05f : 0.0f,
                ref ? "unshifted" : "shifted", ref ? "linear" : "inverse", !ref, "shared", false, 0,
                ref ? "L-1" : "L", ref ? "batch_mean" : "per_token", "mse",
                !ref, 0.5f, ref ? "reference" : "paper",
                6e-4f, 0.9f, 0.999f, 1e-8f, 0.1f, 1.0f,
                ref ? "cosine" : "wsd", -1, 0.2f,
                ref ? 16 : 128, ref ? 1 : 4, 10_000, 100, 0, ref ? 5 : 3, 0.01f, 7L, 512, "fp32",
                preset, profile, variant);
    }

    private static IllegalArgumentException unknown(String what, String value, List<String> known) {
        return new IllegalArgumentException("unknown " + what + " '" + value + "'; known: " + String.join(", ", known));
    }
}
