package bitskip.engine.cpu;

import static bitskip.engine.cpu.Dnnl.ENGINE;
import static bitskip.engine.cpu.Dnnl.check;
import static org.bytedeco.dnnl.global.dnnl.*;

import java.util.HashMap;
import java.util.Map;
import org.bytedeco.dnnl.dnnl_exec_arg_t;
import org.bytedeco.dnnl.dnnl_memory;
import org.bytedeco.dnnl.dnnl_memory_desc;
import org.bytedeco.dnnl.dnnl_primitive;
import org.bytedeco.dnnl.dnnl_primitive_desc;
import org.bytedeco.dnnl.dnnl_stream;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.IntPointer;
import org.bytedeco.javacpp.Pointer;

/**
 * Exact integer products of the int8 LM head on oneDNN's int8 matmul: acc[n·OC + o] = Σ_c w[o·C + c]·x[n·C + c]
 * with w int8 and x activation codes of up to 9 bits (|x| ≤ {@value #X_MAX}). On a CPU with VNNI ({@code vpdpbusd}:
 * 64 multiply-adds of bytes per instruction, which the Vector API does not expose) or AMX the products cost a fraction
 * of the weights' memory traffic, so k + 1 rows (self-speculation's verification) cost about what one row does.
 *
 * <p>oneDNN takes 8-bit sources. Codes that fit a signed byte (|x| ≤ 127, a head with 8-bit activations) go in as
 * they are; wider codes (9 bits) go in as two rows each: x = 4·hi + lo with hi = x >> 2 in [-65, 64] and lo = x &amp; 3
 * in [0, 3], and the sum is 4·Σw·hi + Σw·lo, twice the products. All sums are int32 and exact, so the result is the
 * same bits as {@code PackedGemm.int8} (and the scalar reference) whatever oneDNN's order.
 *
 * <p>The OC output rows are cut into {@link #parts()} column blocks at construction, each with its weights reordered
 * once into the layout oneDNN's kernel wants (off-heap, beside the caller's codes); a caller runs each part on one
 * of its threads ({@link #run}), oneDNN itself runs single-threaded (OMP_NUM_THREADS=1, as for bf16). Primitives,
 * their memory objects, streams and buffers are per thread, created on first use of a (part, rows) shape.
 */
public final class DnnlInt8 {
    /** Largest |activation code| the split into hi and lo keeps within a signed byte. */
    public static final int X_MAX = 4 * 127 + 3;
    /** Rows of codes per oneDNN call (2× that many source rows): bounds the per-thread buffers. */
    static final int CHUNK = 32;

    private final int OC, C;
    /** Source rows per row of codes: 1 where the codes fit a signed byte, else 2 (hi and lo). */
    private final int split;
    private final int[] from;
    private final BytePointer[] weights;
    private final dnnl_memory_desc[] weightsMd;
    private final ThreadLocal<Worker> workers = ThreadLocal.withInitial(Worker::new);

    private static final String UNAVAILABLE = reason();

    /** Why the int8 products cannot run on oneDNN here (not loaded, no VNNI/AMX kernel, OMP_NUM_THREADS), or null. */
    public static String unavailableReason() {
        return UNAVAILABLE;
    }

    private static String reason() {
        String load = Dnnl.loadReason();
        if (load != null) {
            return load;
        }
        String impl = implementation(64, 256, 1024);
        // without VNNI oneDNN's int8 kernels add byte products in saturating 16-bit pairs (vpmaddubsw), not exactly
        if (!impl.contains("vnni") && !impl.contains("amx")) {
            return "this CPU has no VNNI or AMX int8 instructions (oneDNN would run the int8 head as '" + impl
                    + "'; grep -o 'avx512_vnni\\|avx_vnni\\|amx_int8' /proc/cpuinfo)";
        }
        return Dnnl.ompReason();
    }

    /** The implementation oneDNN picks for an s8 × s8 → s32 product of M rows, N outputs, K columns. */
    static String implementation(int M, int N, int K) {
        return withAnyWeights(M, N, K, Dnnl::implementation);
    }

    /**
     * Asks ask of the descriptor of an s8 × s8 → s32 product of M rows, N outputs, K columns whose weights' layout is
     * left to oneDNN ("any"); the descriptors are destroyed afterwards, so the answer must not point into them.
     */
    private static <T> T withAnyWeights(int M, int N, int K, java.util.function.Function<dnnl_primitive_desc, T> ask) {
        dnnl_memory_desc src = Dnnl.md(M, K, false, K, dnnl_s8), wei = new dnnl_memory_desc(), dst = Dnnl.md(M, N, false, N, dnnl_s32);
        check(dnnl_memory_desc_create_with_tag(wei, 2, new long[] {K, N}, dnnl_s8, dnnl_format_tag_any),
                "dnnl_memory_desc_create_with_tag");
        dnnl_primitive_desc pd = new dnnl_primitive_desc();
        check(dnnl_matmul_primitive_desc_create(pd, ENGINE, src, wei, null, dst, null),
                "dnnl_matmul_primitive_desc_create (s8, " + M + " x " + K + " x " + N + ")");
        T answer = ask.apply(pd);
        dnnl_primitive_desc_destroy(pd);
        dnnl_memory_desc_destroy(src);
        dnnl_memory_desc_destroy(wei);
        dnnl_memory_desc_destroy(dst);
        return answer;
    }

    /**
     * The products with weights w (OC × C int8, row-major), cut into parts column blocks (at most OC), for activation
     * codes of |x| ≤ xMax (at most {@value #X_MAX}; up to 127 they go to oneDNN as they are, one source row each). The
     * weights are copied; w itself is not kept.
     */
    public DnnlInt8(byte[] w, int OC, int C, int parts, int xMax) {
        if (UNAVAILABLE != null) {
            throw new IllegalStateException("int8 products on oneDNN are unavailable: " + UNAVAILABLE);
        }
        if (w.length != (long) OC * C || OC < 1 || C < 1 || parts < 1) {
            throw new IllegalArgumentException("int8 weights of " + w.length + " bytes for " + OC + " x " + C + " in " + parts + " parts");
        }
        if (xMax < 1 || xMax > X_MAX) {
            throw new IllegalArgumentException("activation codes up to " + xMax + " (int8 products on oneDNN take 1.." + X_MAX + ")");
        }
        this.split = xMax <= Byte.MAX_VALUE ? 1 : 2;
        this.OC = OC;
        this.C = C;
        int P = Math.min(parts, OC);
        from = new int[P + 1];
        for (int p = 0; p <= P; p++) {
            from[p] = (int) ((long) OC * p / P);
        }
        weights = new BytePointer[P];
        weightsMd = new dnnl_memory_desc[P];
        dnnl_stream stream = new dnnl_stream();
        check(dnnl_stream_create(stream, ENGINE, dnnl_stream_default_flags), "dnnl_stream_create");
        for (int p = 0; p < P; p++) {
            int n = from[p + 1] - from[p];
            // the layout oneDNN's kernel wants, taken from a primitive of 2 source rows (one row of codes) and kept
            // for every row count: with "any" per row count it could pick different layouts
            weightsMd[p] = withAnyWeights(2, n, C, pd -> {
                dnnl_memory_desc md = new dnnl_memory_desc();
                check(dnnl_memory_desc_clone(md, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0)), "dnnl_memory_desc_clone");
                return md;
            });
            weights[p] = new BytePointer(dnnl_memory_desc_get_size(weightsMd[p]));
            // rows [from, from + n) of w are the (C, n) weights with strides (1, C)
            BytePointer plain = new BytePointer((long) n * C);
            plain.put(w, from[p] * C, n * C);
            dnnl_memory_desc plainMd = Dnnl.md(C, n, true, C, dnnl_s8);
            reorder(stream, plainMd, plain, weightsMd[p], weights[p]);
            dnnl_memory_desc_destroy(plainMd);
            plain.deallocate();
        }
        dnnl_stream_destroy(stream);
    }

    private static void reorder(dnnl_stream stream, dnnl_memory_desc fromMd, Pointer fromData, dnnl_memory_desc toMd, Pointer toData) {
        dnnl_memory a = Dnnl.memory(fromMd, fromData), b = Dnnl.memory(toMd, toData);
        dnnl_primitive_desc pd = new dnnl_primitive_desc();
        check(dnnl_reorder_primitive_desc_create(pd, fromMd, ENGINE, toMd, ENGINE, null), "dnnl_reorder_primitive_desc_create");
        dnnl_primitive r = new dnnl_primitive();
        check(dnnl_primitive_create(r, pd), "dnnl_primitive_create (reorder)");
        dnnl_exec_arg_t args = new dnnl_exec_arg_t(2);
        args.position(0).arg(DNNL_ARG_FROM).memory(a);
        args.position(1).arg(DNNL_ARG_TO).memory(b);
        args.position(0);
        check(dnnl_primitive_execute(r, stream, 2, args), "dnnl_primitive_execute (reorder)");
        check(dnnl_stream_wait(stream), "dnnl_stream_wait");
        dnnl_primitive_destroy(r);
        dnnl_primitive_desc_destroy(pd);
        dnnl_memory_destroy(a);
        dnnl_memory_destroy(b);
        args.deallocate();
    }

    /** The number of column blocks; run each once per product. */
    public int parts() {
        return from.length - 1;
    }

    /** The first output row of part p; start(parts()) = OC. */
    public int start(int p) {
        return from[p];
    }

    /**
     * acc[n·OC + o] = Σ_c w[o·C + c]·x[n·C + c] for n < N and o in part p's block, exactly; |x| ≤ the constructor's
     * xMax (not checked here: the int8 head's codes are within its activation levels).
     */
    public void run(int p, int[] acc, short[] x, int N) {
        if (x.length < (long) N * C || acc.length < (long) N * OC) {
            throw new IllegalArgumentException("array too short for N=" + N + " C=" + C + " OC=" + OC);
        }
        workers.get().run(p, acc, x, N);
    }

    /** One thread's stream, buffers and primitives. */
    private final class Worker {
        final dnnl_stream stream = new dnnl_stream();
        final Map<Long, Prepared> prepared = new HashMap<>();
        final BytePointer src = new BytePointer((long) split * CHUNK * C);
        IntPointer dst = new IntPointer(0L);
        byte[] srcRows = new byte[split * CHUNK * C];
        int[] dstRows = new int[0];

        Worker() {
            check(dnnl_stream_create(stream, ENGINE, dnnl_stream_default_flags), "dnnl_stream_create");
        }

        void run(int p, int[] acc, short[] x, int N) {
            int o0 = from[p], n = from[p + 1] - o0;
            int need = split * Math.min(N, CHUNK) * n; // decoding's one row needs split·n, not split·CHUNK·n
            if (dst.capacity() < need) {
                dst = new IntPointer((long) need);
            }
            if (dstRows.length < need) {
                dstRows = new int[need];
            }
            for (int r0 = 0; r0 < N; r0 += CHUNK) {
                int rows = Math.min(CHUNK, N - r0);
                for (int r = 0; r < rows; r++) {
                    int xo = (r0 + r) * C, hi = split * r * C, lo = hi + C;
                    if (split == 1) {
                        for (int c = 0; c < C; c++) {
                            srcRows[hi + c] = (byte) x[xo + c];
                        }
                        continue;
                    }
                    for (int c = 0; c < C; c++) {
                        int v = x[xo + c];
                        srcRows[hi + c] = (byte) (v >> 2);
                        srcRows[lo + c] = (byte) (v & 3);
                    }
                }
                src.position(0).put(srcRows, 0, split * rows * C);
                Prepared pr = prepared.computeIfAbsent(((long) p << 32) | rows, k -> new Prepared(p, split * rows));
                check(dnnl_memory_set_data_handle(pr.src, src), "dnnl_memory_set_data_handle");
                check(dnnl_memory_set_data_handle(pr.dst, dst), "dnnl_memory_set_data_handle");
                check(dnnl_primitive_execute(pr.prim, stream, 3, pr.args), "dnnl_primitive_execute (s8 matmul)");
                check(dnnl_stream_wait(stream), "dnnl_stream_wait");
                dst.position(0).get(dstRows, 0, split * rows * n);
                for (int r = 0; r < rows; r++) {
                    int a = (r0 + r) * OC + o0, hi = split * r * n, lo = hi + n;
                    if (split == 1) {
                        System.arraycopy(dstRows, hi, acc, a, n);
                        continue;
                    }
                    for (int o = 0; o < n; o++) {
                        acc[a + o] = 4 * dstRows[hi + o] + dstRows[lo + o];
                    }
                }
            }
        }
    }

    /** The primitive of part p for M source rows, with its memory objects (data handles set per call). */
    private final class Prepared {
        final dnnl_primitive prim = new dnnl_primitive();
        final dnnl_memory src, dst;
        final dnnl_exec_arg_t args;

        Prepared(int p, int M) {
            int n = from[p + 1] - from[p];
            dnnl_memory_desc s = Dnnl.md(M, C, false, C, dnnl_s8), d = Dnnl.md(M, n, false, n, dnnl_s32);
            dnnl_primitive_desc pd = new dnnl_primitive_desc();
            check(dnnl_matmul_primitive_desc_create(pd, ENGINE, s, weightsMd[p], null, d, null),
                    "dnnl_matmul_primitive_desc_create (s8, " + M + " x " + C + " x " + n + ")");
            check(dnnl_primitive_create(prim, pd), "dnnl_primitive_create (s8 matmul)");
            src = Dnnl.memory(s, null);
            dst = Dnnl.memory(d, null);
            args = Dnnl.matmulArgs(src, Dnnl.memory(weightsMd[p], weights[p]), dst);
            dnnl_primitive_desc_destroy(pd);
            dnnl_memory_desc_destroy(s);
            dnnl_memory_desc_destroy(d);
        }
    }
}
