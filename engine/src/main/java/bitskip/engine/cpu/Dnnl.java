package bitskip.engine.cpu;

import static org.bytedeco.dnnl.global.dnnl.*;

import java.util.HashMap;
import java.util.Map;
import org.bytedeco.dnnl.dnnl_engine;
import org.bytedeco.dnnl.dnnl_exec_arg_t;
import org.bytedeco.dnnl.dnnl_memory;
import org.bytedeco.dnnl.dnnl_memory_desc;
import org.bytedeco.dnnl.dnnl_post_ops;
import org.bytedeco.dnnl.dnnl_primitive;
import org.bytedeco.dnnl.dnnl_primitive_attr;
import org.bytedeco.dnnl.dnnl_primitive_desc;
import org.bytedeco.dnnl.dnnl_stream;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;

/**
 * oneDNN (JavaCPP preset {@code org.bytedeco:dnnl}) for the bf16 products: C (f32) = beta·C + alpha·A'·B' with A
 * and B in bf16 and f32 accumulation, on the CPU's bf16 dot-product instructions (AVX512-BF16's vdpbf16ps, AMX).
 * Loaded only when bf16 is asked for. One {@link Thread} object per pool thread: a stream and the primitives of
 * the shapes it has run, so threads never share oneDNN state that is not thread-safe.
 *
 * <p>oneDNN here runs on OpenMP (GNU libgomp), whose thread count is read once from {@code OMP_NUM_THREADS}: the
 * engine cuts every product into blocks on its own pool, as it does for OpenBLAS, so each call must run on the
 * calling thread alone (OMP_NUM_THREADS=1, which the launcher and the build set). With more, every pool thread
 * would start a team of its own and the cores would be oversubscribed.
 */
final class Dnnl {
    private static final Throwable LOAD_ERROR;
    static final dnnl_engine ENGINE;

    static {
        Throwable err = null;
        dnnl_engine e = null;
        try {
            org.bytedeco.javacpp.Loader.load(org.bytedeco.dnnl.global.dnnl.class);
            e = new dnnl_engine();
            check(dnnl_engine_create(e, dnnl_cpu, 0), "dnnl_engine_create");
        } catch (Throwable t) {
            err = t;
        }
        LOAD_ERROR = err;
        ENGINE = err == null ? e : null;
    }

    private Dnnl() {}

    static void check(int status, String what) {
        if (status != dnnl_success) {
            throw new IllegalStateException("oneDNN " + what + " failed with status " + status);
        }
    }

    /** Why oneDNN could not be loaded in this process, or null when it was. */
    static String loadReason() {
        return LOAD_ERROR == null ? null
                : "oneDNN (org.bytedeco:dnnl with its native classifier) could not be loaded: " + LOAD_ERROR;
    }

    /** Why bf16 products cannot run in this process, or null when they can. */
    static String bf16UnavailableReason() {
        String load = loadReason();
        if (load != null) {
            return load;
        }
        String impl = implementation(64, 64, 64);
        if (!impl.contains("bf16") && !impl.contains("amx")) {
            return "this CPU has no bf16 dot-product instructions (oneDNN would run bf16 products as '" + impl
                    + "', slower than float32); bf16 needs AVX512-BF16 or AMX (grep -o 'avx512_bf16\\|amx_bf16' /proc/cpuinfo)";
        }
        return ompReason();
    }

    /** Why oneDNN's threading does not fit the engine's (OMP_NUM_THREADS is not 1), or null. */
    static String ompReason() {
        String omp = System.getenv("OMP_NUM_THREADS");
        if (!"1".equals(omp)) {
            return "OMP_NUM_THREADS is " + (omp == null ? "unset" : "'" + omp + "'") + ", must be 1: the engine runs oneDNN's "
                    + "products on its own threads (./bitskip and the Maven build set it; export OMP_NUM_THREADS=1 when "
                    + "starting java yourself)";
        }
        return null;
    }

    /** The implementation string of a primitive descriptor (e.g. brg_matmul:avx512_core_vnni). */
    static String implementation(dnnl_primitive_desc pd) {
        PointerPointer<BytePointer> info = new PointerPointer<>(1);
        check(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, info), "dnnl_primitive_desc_query");
        return info.getString(0);
    }

    /** The implementation oneDNN chooses for a bf16 × bf16 → f32 product of this shape (e.g. brg_matmul:avx512_core_bf16). */
    static String implementation(int M, int N, int K) {
        Key k = new Key(M, N, K, false, K, false, N, N, 1.0f, 0.0f);
        dnnl_memory_desc[] mds = mds(k);
        dnnl_primitive_desc pd = desc(k, mds);
        destroy(mds);
        String s = implementation(pd);
        dnnl_primitive_desc_destroy(pd);
        return s;
    }

    /**
     * A product's shape and layout: A' (M, K) is A, or Aᵀ of a (K, M) matrix when tA, with leading dimension lda;
     * B' (K, N) likewise; C (M, N) row-major with ldc; C = beta·C + alpha·A'·B'.
     */
    record Key(int M, int N, int K, boolean tA, int lda, boolean tB, int ldb, int ldc, float alpha, float beta) {}

    static dnnl_memory_desc md(long rows, long cols, boolean transposed, long ld, int type) {
        dnnl_memory_desc m = new dnnl_memory_desc();
        check(dnnl_memory_desc_create_with_strides(m, 2, new long[] {rows, cols}, type,
                transposed ? new long[] {1, ld} : new long[] {ld, 1}), "dnnl_memory_desc_create_with_strides");
        return m;
    }

    /** The descriptors of A' (bf16), B' (bf16) and C (f32) of k, in that order. */
    private static dnnl_memory_desc[] mds(Key k) {
        return new dnnl_memory_desc[] {md(k.M(), k.K(), k.tA(), k.lda(), dnnl_bf16), md(k.K(), k.N(), k.tB(), k.ldb(), dnnl_bf16),
                md(k.M(), k.N(), false, k.ldc(), dnnl_f32)};
    }

    private static void destroy(dnnl_memory_desc[] mds) {
        for (dnnl_memory_desc m : mds) {
            dnnl_memory_desc_destroy(m);
        }
    }

    private static dnnl_primitive_desc desc(Key k, dnnl_memory_desc[] mds) {
        dnnl_primitive_attr attr = new dnnl_primitive_attr();
        check(dnnl_primitive_attr_create(attr), "dnnl_primitive_attr_create");
        dnnl_post_ops po = new dnnl_post_ops();
        check(dnnl_post_ops_create(po), "dnnl_post_ops_create");
        // applied in order to the accumulator: alpha·acc, then + beta·C
        if (k.alpha() != 1.0f) {
            check(dnnl_post_ops_append_eltwise(po, dnnl_eltwise_linear, k.alpha(), 0.0f), "dnnl_post_ops_append_eltwise");
        }
        if (k.beta() != 0.0f) {
            check(dnnl_post_ops_append_sum(po, k.beta(), 0, dnnl_data_type_undef), "dnnl_post_ops_append_sum");
        }
        check(dnnl_primitive_attr_set_post_ops(attr, po), "dnnl_primitive_attr_set_post_ops");
        dnnl_primitive_desc pd = new dnnl_primitive_desc();
        check(dnnl_matmul_primitive_desc_create(pd, ENGINE, mds[0], mds[1], null, mds[2], attr),
                "dnnl_matmul_primitive_desc_create for " + k);
        dnnl_post_ops_destroy(po);
        dnnl_primitive_attr_destroy(attr);
        return pd;
    }

    /** A primitive of one Key with its memory objects, whose data handles are re-aimed per call. */
    private static final class Prepared {
        final dnnl_primitive prim = new dnnl_primitive();
        final dnnl_memory a, b, c;
        final dnnl_exec_arg_t args;

        Prepared(Key k) {
            dnnl_memory_desc[] mds = mds(k);
            dnnl_primitive_desc pd = desc(k, mds);
            check(dnnl_primitive_create(prim, pd), "dnnl_primitive_create for " + k);
            // the memory objects take the primitive's descriptors; no memory of their own (handles come per call)
            a = memory(mds[0], null);
            b = memory(mds[1], null);
            c = memory(mds[2], null);
            destroy(mds);
            dnnl_primitive_desc_destroy(pd);
            args = matmulArgs(a, b, c);
        }
    }

    /** A memory object of descriptor md on data (null: a handle set per call). */
    static dnnl_memory memory(dnnl_memory_desc md, Pointer data) {
        dnnl_memory m = new dnnl_memory();
        check(dnnl_memory_create(m, md, ENGINE, data), "dnnl_memory_create");
        return m;
    }

    /** The arguments of a matmul: source, weights, destination. */
    static dnnl_exec_arg_t matmulArgs(dnnl_memory src, dnnl_memory weights, dnnl_memory dst) {
        dnnl_exec_arg_t args = new dnnl_exec_arg_t(3);
        args.position(0).arg(DNNL_ARG_SRC).memory(src);
        args.position(1).arg(DNNL_ARG_WEIGHTS).memory(weights);
        args.position(2).arg(DNNL_ARG_DST).memory(dst);
        return args.position(0);
    }

    /**
     * A view re-aimed per call (no allocation) at an element of a buffer. The address itself moves, position stays
     * 0: oneDNN takes a {@code void*}, for which a position would count bytes, not elements.
     */
    private static final class View extends Pointer {
        View at(Pointer base, long byteOffset, long byteCapacity) {
            this.address = base.address() + byteOffset;
            this.capacity = byteCapacity - byteOffset;
            this.limit = this.capacity;
            this.position = 0;
            return this;
        }
    }

    /** One pool thread's oneDNN state: its stream and the primitives of the shapes it has run. */
    static final class Thread {
        private final dnnl_stream stream = new dnnl_stream();
        private final Map<Key, Prepared> prepared = new HashMap<>();
        private final View va = new View(), vb = new View(), vc = new View();

        Thread() {
            check(dnnl_stream_create(stream, ENGINE, dnnl_stream_default_flags), "dnnl_stream_create");
        }

        /** C at cOff = beta·C + alpha·A'·B' with A' at aOff of a, B' at bOff of b (bf16 elements), as k describes. */
        void matmul(Key k, Pointer a, long aOff, Pointer b, long bOff, CpuTensor c, long cOff) {
            Prepared p = prepared.computeIfAbsent(k, Prepared::new);
            check(dnnl_memory_set_data_handle(p.a, va.at(a, aOff * Short.BYTES, a.capacity())), "dnnl_memory_set_data_handle");
            check(dnnl_memory_set_data_handle(p.b, vb.at(b, bOff * Short.BYTES, b.capacity())), "dnnl_memory_set_data_handle");
            check(dnnl_memory_set_data_handle(p.c, vc.at(c.ptr, cOff * Float.BYTES, c.ptr.capacity() * Float.BYTES)),
                    "dnnl_memory_set_data_handle");
            check(dnnl_primitive_execute(p.prim, stream, 3, p.args), "dnnl_primitive_execute");
            check(dnnl_stream_wait(stream), "dnnl_stream_wait");
        }
    }
}
