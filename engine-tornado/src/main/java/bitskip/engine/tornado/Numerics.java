package bitskip.engine.tornado;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * TornadoVM's compiler options that decide whether a kernel computes what its Java source says. TornadoVM
 * 5.2.0 by default fuses a·b + c into fma (tornado.enable.fma), emits native_sqrt for Math.sqrt
 * (tornado.enable.nativeFunctions), rewrites 1/sqrt (tornado.enable.mathOptimizations) and builds with
 * {@code -cl-mad-enable -cl-fast-relaxed-math}, each of which changes the last bits of results (and
 * fast-relaxed-math may assume no infinities, which the softmax's −∞ start relies on). This backend turns
 * them off so that its kernels round exactly as the Java reference, and builds with correctly rounded
 * float division and square root. A value the user already set (a -D flag, an argument file in
 * {@code tornado-flags/}) is kept.
 *
 * <p>TornadoVM reads these properties once, when its runtime starts; {@link #apply} runs before any use of
 * TornadoVM in this backend. {@link #deviations} reports the ones that ended up different from this backend's.
 */
final class Numerics {
    static final String OPENCL_FLAGS = "-cl-fp32-correctly-rounded-divide-sqrt -w";
    static final Map<String, String> EXACT = new LinkedHashMap<>();

    static {
        EXACT.put("tornado.enable.fma", "False");
        EXACT.put("tornado.enable.nativeFunctions", "False");
        EXACT.put("tornado.enable.mathOptimizations", "False");
        EXACT.put("tornado.enable.fastMathOptimizations", "False");
        EXACT.put("tornado.opencl.compiler.flags", OPENCL_FLAGS);
    }

    private Numerics() {}

    static synchronized void apply() {
        for (Map.Entry<String, String> e : EXACT.entrySet()) {
            if (System.getProperty(e.getKey()) == null) {
                System.setProperty(e.getKey(), e.getValue());
            }
        }
        // TornadoVM refuses buffers beyond tornado.device.memory (default 4GB) per device: the arena
        // (KernelPlan, up to 7.5 GiB by default) and the small launch arrays must fit under it.
        if (System.getProperty("tornado.device.memory") == null) {
            String arena = System.getProperty(KernelPlan.MEMORY_PROPERTY);
            long gb = arena == null || arena.isBlank() ? 9 : (KernelPlan.parseBytes(arena.trim()) >> 30) + 2;
            System.setProperty("tornado.device.memory", Math.max(4, gb) + "GB");
        }
    }

    /** The options set to something else than the exact value (empty when the kernels round as Java). */
    static Map<String, String> deviations() {
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : EXACT.entrySet()) {
            String v = System.getProperty(e.getKey());
            if (v != null && !v.equalsIgnoreCase(e.getValue())) {
                out.put(e.getKey(), v);
            }
        }
        return out;
    }
}
