package bitskip.engine.tornado;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * Element-wise kernels: one loop iteration per element, each the reference's expression in the reference's
 * order of float operations (kernels-java {@code Activations}, {@code Dropout}, {@code Quantize}), so they
 * agree bit for bit. Float scalars come in {@code f}; the reference's double expressions are evaluated in
 * double here too (the device needs fp64).
 */
final class PointwiseKernels {
    private PointwiseKernels() {}

    /** out = x + y. a = (out, x, y, n). Also dst += src with out = x = dst. */
    static void add(FloatArray m, IntArray a) {
        int out = a.get(0), x = a.get(1), y = a.get(2);
        for (@Parallel int i = 0; i < a.get(3); i++) {
            m.set(out + i, m.get(x + i) + m.get(y + i));
        }
    }

    /** t *= f0. a = (t, n). */
    static void scale(FloatArray m, IntArray a, FloatArray f) {
        int t = a.get(0);
        float factor = f.get(0);
        for (@Parallel int i = 0; i < a.get(1); i++) {
            m.set(t + i, m.get(t + i) * factor);
        }
    }

    /** out = relu(inp)². a = (out, inp, n). */
    static void relu2Forward(FloatArray m, IntArray a) {
        int out = a.get(0), inp = a.get(1);
        for (@Parallel int i = 0; i < a.get(2); i++) {
            float x = m.get(inp + i);
            float r = x > 0.0f ? x : 0.0f;
            m.set(out + i, r * r);
        }
    }

    /** dinp += dout·2·inp where inp &gt; 0. a = (dinp, dout, inp, n). */
    static void relu2Backward(FloatArray m, IntArray a) {
        int dinp = a.get(0), dout = a.get(1), inp = a.get(2);
        for (@Parallel int i = 0; i < a.get(3); i++) {
            float x = m.get(inp + i);
            if (x > 0.0f) {
                m.set(dinp + i, m.get(dinp + i) + m.get(dout + i) * 2.0f * x);
            }
        }
    }

    /** out = max(inp, 0). a = (out, inp, n). */
    static void reluForward(FloatArray m, IntArray a) {
        int out = a.get(0), inp = a.get(1);
        for (@Parallel int i = 0; i < a.get(2); i++) {
            float x = m.get(inp + i);
            m.set(out + i, x > 0.0f ? x : 0.0f);
        }
    }

    /** dinp += dout where out &gt; 0. a = (dinp, dout, out, n). */
    static void reluBackward(FloatArray m, IntArray a) {
        int dinp = a.get(0), dout = a.get(1), out = a.get(2);
        for (@Parallel int i = 0; i < a.get(3); i++) {
            if (m.get(out + i) > 0.0f) {
                m.set(dinp + i, m.get(dinp + i) + m.get(dout + i));
            }
        }
    }

    /** out = 1/(1 + exp(−inp)), in double as the reference. a = (out, inp, n). */
    static void sigmoidForward(FloatArray m, IntArray a) {
        int out = a.get(0), inp = a.get(1);
        for (@Parallel int i = 0; i < a.get(2); i++) {
            m.set(out + i, (float) (1.0 / (1.0 + Math.exp(-(double) m.get(inp + i)))));
        }
    }

    /** dinp += dout·out·(1 − out). a = (dinp, dout, out, n). */
    static void sigmoidBackward(FloatArray m, IntArray a) {
        int dinp = a.get(0), dout = a.get(1), out = a.get(2);
        for (@Parallel int i = 0; i < a.get(3); i++) {
            float p = m.get(out + i);
            m.set(dinp + i, m.get(dinp + i) + m.get(dout + i) * p * (1.0f - p));
        }
    }

    /** dw += f0·2·(w − ŵ). a = (dw, w, wHat, n). */
    static void squaredErrorBackward(FloatArray m, IntArray a, FloatArray f) {
        int dw = a.get(0), w = a.get(1), wHat = a.get(2);
        float s = f.get(0);
        for (@Parallel int i = 0; i < a.get(3); i++) {
            m.set(dw + i, m.get(dw + i) + s * 2.0f * (m.get(w + i) - m.get(wHat + i)));
        }
    }

    /**
     * mask = 0 where Dropout.uniform(seed, offset + i) &lt; p, else keep. a = (mask, n, seed hi, seed lo, offset
     * hi, offset lo); f = (p, keep). The splitmix64 finalizer is written with arithmetic shifts and masks:
     * TornadoVM 5.2.0 emits Java's {@code >>>} on a long as OpenCL's {@code >>}, which is arithmetic on a
     * signed long (checked bit for bit against {@code Dropout.uniform} by the tests).
     */
    static void dropoutMask(FloatArray m, IntArray a, FloatArray f) {
        int mask = a.get(0);
        long seed = ((long) a.get(2) << 32) | (a.get(3) & 0xFFFFFFFFL);
        long offset = ((long) a.get(4) << 32) | (a.get(5) & 0xFFFFFFFFL);
        float p = f.get(0), keep = f.get(1);
        for (@Parallel int i = 0; i < a.get(1); i++) {
            long z = seed + (offset + i) * 0x9E3779B97F4A7C15L;
            z = (z ^ ((z >> 30) & 0x3FFFFFFFFL)) * 0xBF58476D1CE4E5B9L;
            z = (z ^ ((z >> 27) & 0x1FFFFFFFFFL)) * 0x94D049BB133111EBL;
            z = z ^ ((z >> 31) & 0x1FFFFFFFFL);
            float u = (float) ((z >> 40) & 0xFFFFFFL) / 16777216.0f;
            m.set(mask + i, u < p ? 0.0f : keep);
        }
    }

    /** out = inp·mask. a = (out, inp, mask, n). */
    static void multiply(FloatArray m, IntArray a) {
        int out = a.get(0), x = a.get(1), y = a.get(2);
        for (@Parallel int i = 0; i < a.get(3); i++) {
            m.set(out + i, m.get(x + i) * m.get(y + i));
        }
    }

    /** dinp += dout·mask. a = (dinp, dout, mask, n). */
    static void multiplyAccumulate(FloatArray m, IntArray a) {
        int dinp = a.get(0), dout = a.get(1), mask = a.get(2);
        for (@Parallel int i = 0; i < a.get(3); i++) {
            m.set(dinp + i, m.get(dinp + i) + m.get(dout + i) * m.get(mask + i));
        }
    }

    /**
     * One AdamW step per element, in PyTorch's single-tensor order (kernels-java AdamW); the step scalars
     * come from the host, computed in double as the reference does. a = (param, grad, m, v, n); f = (decay,
     * w1, beta2, 1 − beta2, sqrt(bc2), −lr/bc1, eps).
     */
    static void adamW(FloatArray mem, IntArray a, FloatArray f) {
        int param = a.get(0), grad = a.get(1), mOff = a.get(2), vOff = a.get(3);
        float decay = f.get(0), w1 = f.get(1), beta2 = f.get(2), oneMinusBeta2 = f.get(3);
        float bc2Sqrt = f.get(4), negStepSize = f.get(5), eps = f.get(6);
        for (@Parallel int i = 0; i < a.get(4); i++) {
            float g = mem.get(grad + i);
            float p = mem.get(param + i) * decay;
            float mi = mem.get(mOff + i);
            if (w1 < 0.5f) {
                mi = mi + w1 * (g - mi);
            } else {
                mi = g - (g - mi) * (1.0f - w1);
            }
            float vi = mem.get(vOff + i) * beta2 + oneMinusBeta2 * g * g;
            float denom = (float) Math.sqrt((double) vi) / bc2Sqrt + eps;
            p = p + negStepSize * mi / denom;
            mem.set(mOff + i, mi);
            mem.set(vOff + i, vi);
            mem.set(param + i, p);
        }
    }
}
