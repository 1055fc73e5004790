package bitskip.model.eval;

import bitskip.engine.Backend;
import bitskip.kernels.Quantize;
import bitskip.model.nn.BitSkipModel;
import bitskip.model.nn.Param;
import java.util.ArrayList;
import java.util.List;

/**
 * The ternary weight distribution of Table 4: per quantized matrix, its scale alpha = mean|W| and the
 * shares of codes 0 (|W| ≤ 0.5·alpha), +1 and −1, computed by the training quantizer itself
 * ({@link Quantize#ternaryForward}, over the whole stored matrix, including any zero-padding columns of
 * H-BitLinear); summarized as unweighted means over the matrices, and "Hi-Sparse", the number of matrices
 * with at least 50% zeros.
 */
public record WeightStats(List<Matrix> matrices, Summary summary) {

    public record Matrix(String name, int rows, int cols, double alpha, double zeroFrac, double plusFrac,
                         double minusFrac) {}

    public record Summary(int matrices, double meanAlpha, double meanZeroFrac, int hiSparse, double meanPlusFrac,
                          double meanMinusFrac) {}

    public static final double HI_SPARSE = 0.5;

    public static WeightStats of(BitSkipModel model) {
        Backend be = model.backend();
        List<Matrix> out = new ArrayList<>();
        for (Param p : model.quantizedWeights()) {
            float[] w = new float[p.size];
            be.download(p.value, w);
            out.add(ofMatrix(p.name, p.shape[0], p.shape[1], w));
        }
        return new WeightStats(out, summarize(out));
    }

    public static Matrix ofMatrix(String name, int rows, int cols, float[] w) {
        byte[] codes = new byte[w.length];
        float alpha = Quantize.ternaryForward(null, codes, w, w.length);
        long zero = 0, plus = 0, minus = 0;
        for (byte c : codes) {
            if (c == 0) {
                zero++;
            } else if (c > 0) {
                plus++;
            } else {
                minus++;
            }
        }
        double n = w.length;
        return new Matrix(name, rows, cols, alpha, zero / n, plus / n, minus / n);
    }

    public static Summary summarize(List<Matrix> ms) {
        double a = 0, z = 0, p = 0, m = 0;
        int hi = 0;
        for (Matrix x : ms) {
            a += x.alpha();
            z += x.zeroFrac();
            p += x.plusFrac();
            m += x.minusFrac();
            if (x.zeroFrac() >= HI_SPARSE) {
                hi++;
            }
        }
        int n = Math.max(1, ms.size());
        return new Summary(ms.size(), a / n, z / n, hi, p / n, m / n);
    }
}
