package bitskip.engine.tornado;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.BiFunction;
import uk.ac.manchester.tornado.api.DataRange;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.ImmutableTaskGraph;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;
import uk.ac.manchester.tornado.api.WorkerGrid;
import uk.ac.manchester.tornado.api.WorkerGrid1D;
import uk.ac.manchester.tornado.api.WorkerGrid2D;
import uk.ac.manchester.tornado.api.common.TornadoFunctions.Task2;
import uk.ac.manchester.tornado.api.common.TornadoFunctions.Task3;
import uk.ac.manchester.tornado.api.common.TornadoFunctions.Task4;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.enums.TornadoVMBackendType;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * Everything this backend keeps on one TornadoVM device: the arena (one {@link FloatArray} holding every
 * tensor, resident on the device from creation to {@link #close}), the small launch inputs, and one
 * {@link TaskGraph} per kernel, all in one {@link TornadoExecutionPlan} built once. Each graph takes the
 * arena from whichever graph ran before it ({@code consumeFromDevice}) and leaves it on the device
 * ({@code persistOnDevice}), so tensors never travel between kernels; a launch sends only its arguments
 * (a few ints and floats, and for the kernels that take them the token ids). TornadoVM compiles each kernel
 * at its first launch and keeps it for the life of the plan, and the plan lives as long as the JVM (one per
 * device, shared by every backend opened on it): tests that open many backends compile each kernel once.
 *
 * <p>Arena layout: [0, RESERVED) holds the device scalars (a mean, sums as stored doubles) and the
 * reductions' partial sums; tensors are allocated above it. Its size is fixed when the plan is made:
 * {@code -Dbitskip.tornado.memory=SIZE} (e.g. 512m, 6g), default 1 GiB on a CPU device and on a GPU the
 * smallest of 7.5 GiB, 80% of its memory and its largest buffer (a FloatArray holds at most 2^31−1 floats).
 */
final class KernelPlan implements AutoCloseable {
    static final String MEMORY_PROPERTY = "bitskip.tornado.memory";
    /** Partial sums of a reduction (a fixed number, so results do not depend on the device). */
    static final int PARTIALS = 256;
    static final int SLOT_MEAN = 0, SLOT_SUM = 4, PARTIALS_AT = 32;
    static final int RESERVED = ArenaAllocator.roundUp(PARTIALS_AT + 3 * PARTIALS);
    /** Launch inputs: ints and floats of one launch, token ids (or skip flags), upload staging. */
    static final int ARGS = 32, FARGS = 16, INTS = 1 << 17, STAGE = 1 << 18;

    private static final Map<String, KernelPlan> PLANS = new HashMap<>();

    final TornadoDevices.Device device;
    final FloatArray arena;
    final ArenaAllocator allocator;
    private final IntArray args = new IntArray(ARGS);
    private final FloatArray fargs = new FloatArray(FARGS);
    private final IntArray ints = new IntArray(INTS);
    private final FloatArray stage = new FloatArray(STAGE);
    private final List<ImmutableTaskGraph> graphs = new ArrayList<>();
    private final GridScheduler grids = new GridScheduler();
    private final TornadoExecutionPlan plan;
    private TornadoExecutionResult last;
    /** Kernel launches so far (each is one execute of a task graph: the host's share of a step's time). */
    private long launches;

    /** A kernel: its task graph in the plan and the grid its launches set. */
    record Kernel(String name, int graph, WorkerGrid grid) {}

    final Kernel clear, zero, copy2d, fromStage, pointwise, dropoutMask, adamW, gather, scatterAdd, sumRows, gemm;
    final Kernel layerNormForward, layerNormBackwardInput, layerNormBackwardParams, activationQuantize, fwhtRows;
    final Kernel softmaxRows, softmaxBackwardRows, rope;
    final Kernel attentionForward, attentionBackwardQuery, attentionBackwardKeyValue;
    final Kernel partials, finish, crossEntropyRows, crossEntropyGradient, expectedExit, routingBackward;

    /** The plan of this device (made on first use, with the arena size of {@link #MEMORY_PROPERTY}). */
    static synchronized KernelPlan of(TornadoDevices.Device device) {
        return PLANS.computeIfAbsent(device.id(), id -> new KernelPlan(device, arenaFloats(device)));
    }

    private KernelPlan(TornadoDevices.Device device, int capacity) {
        this.device = device;
        this.arena = new FloatArray(capacity);
        this.allocator = new ArenaAllocator(RESERVED, capacity);
        // The first graph run creates the arena on the device (written by a kernel, never copied from the
        // host); every other graph consumes it.
        clear = add("clear", 1, (g, id) -> g.task(id, MemoryKernels::zero, arena, args), true);
        zero = mem("zero", 1, MemoryKernels::zero);
        copy2d = mem("copy2d", 1, MemoryKernels::copy2d);
        fromStage = memF("fromStage", 1, MemoryKernels::fromStage, stage);
        pointwise = memF("pointwise", 1, PointwiseKernels::pointwise, fargs);
        dropoutMask = memF("dropoutMask", 1, PointwiseKernels::dropoutMask, fargs);
        adamW = memF("adamW", 1, PointwiseKernels::adamW, fargs);
        gather = memI("gather", 1, IndexKernels::gather);
        scatterAdd = memI("scatterAdd", 1, IndexKernels::scatterAdd);
        sumRows = mem("sumRows", 1, MatmulKernels::sumRows);
        gemm = memF("gemm", 2, MatmulKernels::gemm, fargs);
        layerNormForward = memF("layerNormForward", 1, RowKernels::layerNormForward, fargs);
        layerNormBackwardInput = mem("layerNormBackwardInput", 1, RowKernels::layerNormBackwardInput);
        layerNormBackwardParams = mem("layerNormBackwardParams", 1, RowKernels::layerNormBackwardParams);
        activationQuantize = memF("activationQuantize", 1, RowKernels::activationQuantize, fargs);
        fwhtRows = memF("fwhtRows", 1, RowKernels::fwhtRows, fargs);
        softmaxRows = mem("softmaxRows", 1, RowKernels::softmaxRows);
        softmaxBackwardRows = memF("softmaxBackwardRows", 1, RowKernels::softmaxBackwardRows, fargs);
        rope = mem("rope", 1, AttentionKernels::rope);
        attentionForward = memF("attentionForward", 1, AttentionKernels::forward, fargs);
        attentionBackwardQuery = memF("attentionBackwardQuery", 1, AttentionKernels::backwardQuery, fargs);
        attentionBackwardKeyValue = mem("attentionBackwardKeyValue", 1, AttentionKernels::backwardKeyValue);
        partials = memF("partials", 1, ReduceKernels::partials, fargs);
        finish = mem("finish", 1, ReduceKernels::finish);
        crossEntropyRows = memI("crossEntropyRows", 1, LossKernels::crossEntropyRows);
        crossEntropyGradient = add("crossEntropyGradient", 1,
                (g, id) -> g.task(id, LossKernels::crossEntropyGradient, arena, args, ints, fargs), false, ints, fargs);
        expectedExit = mem("expectedExit", 1, LossKernels::expectedExit);
        routingBackward = memF("routingBackward", 1, LossKernels::routingBackward, fargs);

        plan = new TornadoExecutionPlan(graphs.toArray(new ImmutableTaskGraph[0]));
        plan.withDevice(device.handle());
        plan.withCompilerFlags(TornadoVMBackendType.OPENCL, Numerics.OPENCL_FLAGS);
        plan.withGridScheduler(grids);
        args.set(0, 0);
        args.set(1, capacity);
        run(clear, capacity);
    }

    private Kernel mem(String name, int dims, Task2<FloatArray, IntArray> code) {
        return add(name, dims, (g, id) -> g.task(id, code, arena, args), false);
    }

    private Kernel memF(String name, int dims, Task3<FloatArray, IntArray, FloatArray> code, FloatArray extra) {
        return add(name, dims, (g, id) -> g.task(id, code, arena, args, extra), false, extra);
    }

    private Kernel memI(String name, int dims, Task3<FloatArray, IntArray, IntArray> code) {
        return add(name, dims, (g, id) -> g.task(id, code, arena, args, ints), false, ints);
    }

    private Kernel add(String name, int dims, BiFunction<TaskGraph, String, TaskGraph> task, boolean createsArena, Object... inputs) {
        TaskGraph g = new TaskGraph(name);
        if (!createsArena) {
            g.consumeFromDevice(arena);
        }
        g.transferToDevice(DataTransferMode.EVERY_EXECUTION, args);
        if (inputs.length > 0) {
            g.transferToDevice(DataTransferMode.EVERY_EXECUTION, inputs);
        }
        task.apply(g, name).persistOnDevice(arena);
        WorkerGrid grid = dims == 2 ? new WorkerGrid2D(1, 1) : new WorkerGrid1D(1);
        grid.setLocalWorkToNull();
        grids.addWorkerGrid(name + "." + name, grid);
        graphs.add(g.snapshot());
        return new Kernel(name, graphs.size() - 1, grid);
    }

    // ---- launches -----------------------------------------------------------------------------------

    /** Sets the launch's int arguments (in the kernel's documented order). */
    KernelPlan ints(int... a) {
        if (a.length > ARGS) {
            throw new IllegalArgumentException(a.length + " kernel arguments, at most " + ARGS);
        }
        for (int i = 0; i < a.length; i++) {
            args.set(i, a[i]);
        }
        return this;
    }

    /** Sets the launch's float arguments. */
    KernelPlan floats(float... f) {
        for (int i = 0; i < f.length; i++) {
            fargs.set(i, f[i]);
        }
        return this;
    }

    /** Copies the first n ints of src (token ids, targets, skip flags) to the launch's integer input. */
    KernelPlan indices(int[] src, int n, String what) {
        if (n > INTS) {
            throw new IllegalArgumentException(what + ": " + n + " values exceed the TornadoVM backend's integer input of "
                    + INTS + " (a batch of more than " + INTS + " tokens)");
        }
        MemorySegment.copy(src, 0, ints.getSegment(), ValueLayout.JAVA_INT, 0, n);
        return this;
    }

    /** Runs k over n work-items (nothing when n is 0). */
    void run(Kernel k, long n) {
        if (n <= 0) {
            return;
        }
        k.grid().setGlobalWork(n, 1, 1);
        execute(k);
    }

    /** Runs k over an n0 × n1 grid. */
    void run2(Kernel k, long n0, long n1) {
        if (n0 <= 0 || n1 <= 0) {
            return;
        }
        k.grid().setGlobalWork(n0, n1, 1);
        execute(k);
    }

    private void execute(Kernel k) {
        // execute() waits for the device: the next launch may rewrite the argument arrays at once.
        last = plan.withGraph(k.graph()).execute();
        launches++;
    }

    long launches() {
        return launches;
    }

    // ---- host transfers -----------------------------------------------------------------------------

    /** arena[at..at+n) = src[0..n), through the staging array. */
    void upload(int at, float[] src, int n) {
        for (int done = 0; done < n; done += STAGE) {
            int len = Math.min(STAGE, n - done);
            MemorySegment.copy(src, done, stage.getSegment(), ValueLayout.JAVA_FLOAT, 0, len);
            ints(at + done, len);
            run(fromStage, len);
        }
    }

    /** dst[0..n) = arena[at..at+n): a partial copy of the arena back to the host. */
    void download(int at, float[] dst, int n) {
        if (n <= 0) {
            return;
        }
        last.transferToHost(new DataRange(arena).withOffset(at).withSize(n));
        MemorySegment.copy(arena.getSegment(), ValueLayout.JAVA_FLOAT, 4L * at, dst, 0, n);
    }

    /** The double stored at arena[at..at+3) by the kernels (ReduceKernels.storeDouble). */
    double readDouble(int at) {
        float[] v = new float[3];
        download(at, v, 3);
        return (double) v[0] + (double) v[1] + (double) v[2];
    }

    static int arenaFloats(TornadoDevices.Device d) {
        long max = Integer.MAX_VALUE - 64L; // a FloatArray is indexed by int
        String prop = System.getProperty(MEMORY_PROPERTY);
        long bytes;
        if (prop != null && !prop.isBlank()) {
            bytes = parseBytes(prop.trim());
        } else if (d.isCpu()) {
            bytes = 1L << 30;
        } else {
            bytes = Math.min(Math.min(15L << 29, (long) (0.8 * d.globalMemBytes())), d.maxAllocBytes());
        }
        long floats = Math.min(max, bytes / 4);
        if (floats < RESERVED + ArenaAllocator.ALIGN) {
            throw new IllegalArgumentException("-D" + MEMORY_PROPERTY + "=" + prop + ": too small for the TornadoVM backend");
        }
        if (floats * 4 > d.maxAllocBytes()) {
            throw new IllegalArgumentException(String.format(Locale.ROOT,
                    "-D%s=%s: %.0f MiB is more than TornadoVM device %s (%s) can allocate at once (%.0f MiB)",
                    MEMORY_PROPERTY, prop, floats * 4 / 1048576.0, d.id(), d.name(), d.maxAllocBytes() / 1048576.0));
        }
        return (int) floats;
    }

    static long parseBytes(String s) {
        String t = s.toLowerCase(Locale.ROOT);
        long unit = 1;
        if (t.endsWith("k") || t.endsWith("m") || t.endsWith("g")) {
            unit = t.endsWith("k") ? 1L << 10 : t.endsWith("m") ? 1L << 20 : 1L << 30;
            t = t.substring(0, t.length() - 1);
        }
        try {
            return Long.parseLong(t) * unit;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("-D" + MEMORY_PROPERTY + "=" + s + ": not a size (e.g. 512m, 2g)");
        }
    }

    @Override
    public void close() {
        plan.freeDeviceMemory();
    }
}
