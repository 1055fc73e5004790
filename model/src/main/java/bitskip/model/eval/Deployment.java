package bitskip.model.eval;

import bitskip.kernels.Quantize;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import java.util.Map;

/**
 * How the deployed 1.58-bit model of Table 3 is derived from a checkpoint's latent weights: a weight
 * transform applied to a copy of every quantized matrix, and the configuration the copy is evaluated with.
 *
 * <ul>
 *   <li>{@link #PACKED} (the paper's intent, profile {@code paper}): the packed ternary model. Each matrix
 *       becomes Ŵ = alpha·Wq, evaluated as full-precision weights ({@code ternary = false}) with the same
 *       activation quantization. It computes exactly what the training forward computes, so its perplexity
 *       equals the latent model's up to float rounding (spec section 6).</li>
 *   <li>{@link #REQUANTIZED} (the authors' code behind Table 3, profile {@code reference}): alpha·Wq is
 *       written back as the latent weight and ternarized a second time ({@code ternary = true}). The codes
 *       stay, but alpha' = mean|alpha·Wq| = alpha·(1 − sparsity): every matrix shrinks by its share of
 *       non-zeros. That shrink, not ternarization, is the degradation the paper reports.</li>
 * </ul>
 */
public enum Deployment {
    PACKED("packed", "packed ternary model: W^ = alpha*Wq evaluated as is"),
    REQUANTIZED("requantized", "double ternarization (authors' code): alpha*Wq ternarized again, shrinking W^ by (1 - sparsity)");

    public final String id;
    public final String description;

    Deployment(String id, String description) {
        this.id = id;
        this.description = description;
    }

    /** The profile's choice: {@code reference} reproduces the authors' double ternarization. */
    public static Deployment forProfile(String profile) {
        return "reference".equals(profile) ? REQUANTIZED : PACKED;
    }

    /** "auto" (the checkpoint's profile), "packed" or "requantized". */
    public static Deployment parse(String s, String profile) {
        return switch (s) {
            case "auto" -> forProfile(profile);
            case "packed" -> PACKED;
            case "requantized" -> REQUANTIZED;
            default -> throw new IllegalArgumentException("--deployed must be auto, packed or requantized, got '" + s + "'");
        };
    }

    /** The configuration the transformed weights are evaluated with. */
    public BitSkipConfig config(BitSkipConfig trained) {
        return Configs.override(trained, Map.of("ternary", this == PACKED ? "false" : "true"), "deployed model");
    }

    /** The deployed copy of one latent matrix: Ŵ = alpha·Wq (a new array). */
    public float[] transform(float[] latent) {
        float[] wHat = new float[latent.length];
        Quantize.ternaryForward(wHat, null, latent, latent.length);
        return wHat;
    }
}
