package bitskip.engine.cpu;

import java.nio.ByteBuffer;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/** The Vector API species and loads the CPU backend's loops share. */
final class Vec {
    private Vec() {}

    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int VL = S.length();
    static final VectorSpecies<Double> DS = DoubleVector.SPECIES_PREFERRED;
    /** The float species whose lanes convert one to one into DS. */
    static final VectorSpecies<Float> FH = VectorSpecies.of(float.class, VectorShape.forBitSize(DS.length() * 32));
    /** 1.5·2^23: (v + M) − M rounds v to an integer, half to even, for |v| <= 2^22 (Math.rint on lanes). */
    static final float RINT_MAGIC = 12582912.0f;

    /** Elements per chunk of the element-wise ops. */
    static final int GRAIN = 1 << 14;
    /** Elements per partial sum of the whole-tensor reductions. */
    static final int BLOCK = 8192;

    /** The vector of floats at element i of b. */
    static FloatVector ld(ByteBuffer b, int i) {
        return VectorIO.load(S, b, i << 2);
    }

    static void st(FloatVector v, ByteBuffer b, int i) {
        VectorIO.store(v, b, i << 2);
    }

    /** The end of the whole vectors of [lo, hi). */
    static int vbound(int lo, int hi) {
        return lo + S.loopBound(hi - lo);
    }

    /** dst[d..d+len) += src[s..s+len), element by element (vector lanes when vector). */
    static void addInto(boolean vector, ByteBuffer dst, int d, ByteBuffer src, int s, int len) {
        int i = 0;
        if (vector) {
            for (; i < S.loopBound(len); i += VL) {
                st(ld(dst, d + i).add(ld(src, s + i)), dst, d + i);
            }
        }
        for (; i < len; i++) {
            dst.putFloat((d + i) << 2, dst.getFloat((d + i) << 2) + src.getFloat((s + i) << 2));
        }
    }
}
