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

    /** The ops of {@link #pointwise}, in the order of {@code bitskip.engine.Pointwise}. */
    static final int FILL = 0, ADD = 1, SCALE = 2, MUL = 3, MUL_ADD = 4, RELU = 5, RELU_BACKWARD = 6, RELU2 = 7,
            RELU2_BACKWARD = 8, SIGMOID = 9, SIGMOID_BACKWARD = 10, SQUARED_ERROR_BACKWARD = 11, TERNARY = 12;

    /**
     * out[i] = op(a[i], b[i], s) for i &lt; n, each op the formula (and order of float operations) that
     * {@code bitskip.engine.Pointwise} states; one kernel for all of them (the op is the same for every
     * work-item of a launch, so the branch costs nothing on a GPU, and one compilation serves every op). Ops
     * that do not read a or b get offset 0 there. a = (op, out, a, b, n); f = (s).
     */
    static void pointwise(FloatArray m, IntArray a, FloatArray f) {
        int op = a.get(0), out = a.get(1), x = a.get(2), y = a.get(3);
        float s = f.get(0);
        for (@Parallel int i = 0; i < a.get(4); i++) {
            int o = out + i;
            if (op == FILL) {
                m.set(o, s);
            } else if (op == ADD) {
                m.set(o, m.get(x + i) + m.get(y + i));
            } else if (op == SCALE) {
                m.set(o, m.get(x + i) * s);
            } else if (op == MUL) {
                m.set(o, m.get(x + i) * m.get(y + i));
            } else if (op == MUL_ADD) {
                m.set(o, m.get(o) + m.get(x + i) * m.get(y + i));
            } else if (op == RELU) {
                float u = m.get(x + i);
                m.set(o, u > 0.0f ? u : 0.0f);
            } else if (op == RELU_BACKWARD) {
                if (m.get(y + i) > 0.0f) {
                    m.set(o, m.get(o) + m.get(x + i));
                }
            } else if (op == RELU2) {
                float u = m.get(x + i);
                float p = u > 0.0f ? u : 0.0f;
                m.set(o, p * p);
            } else if (op == RELU2_BACKWARD) {
                float v = m.get(y + i);
                if (v > 0.0f) {
                    m.set(o, m.get(o) + m.get(x + i) * 2.0f * v);
                }
            } else if (op == SIGMOID) {
                m.set(o, (float) (1.0 / (1.0 + Math.exp(-(double) m.get(x + i)))));
            } else if (op == SIGMOID_BACKWARD) {
                float v = m.get(y + i);
                m.set(o, m.get(o) + m.get(x + i) * v * (1.0f - v));
            } else if (op == SQUARED_ERROR_BACKWARD) {
                m.set(o, m.get(o) + s * 2.0f * (m.get(x + i) - m.get(y + i)));
            } else {
                float u = m.get(x + i), half = 0.5f * s;
                m.set(o, u > half ? s : u < -half ? -s : 0.0f);
            }
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
