package bitskip.bench;

import bitskip.engine.Backend;
import bitskip.engine.Backends;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.config.Presets;
import bitskip.model.nn.BitSkipModel;
import bitskip.model.train.Optimizer;
import bitskip.model.train.Randomness;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

/**
 * Where the time of one training step goes: the backend is wrapped in a proxy that times every op (the
 * cpu backend runs ops synchronously, so wall time per call is the op's time), and the per-op totals of the
 * measured steps are printed, largest first.
 *
 * <pre>java --add-modules jdk.incubator.vector -cp … bitskip.bench.StepProfile PRESET VARIANT BATCH [STEPS] [BACKEND]</pre>
 */
public final class StepProfile {
    public static void main(String[] args) throws Exception {
        String preset = args[0], variant = args[1];
        int batch = Integer.parseInt(args[2]);
        int steps = args.length > 3 ? Integer.parseInt(args[3]) : 3;
        Backend inner = Backends.create(args.length > 4 ? args[4] : null);
        Map<String, long[]> totals = new TreeMap<>();
        boolean[] on = {false};
        Backend be = (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class},
                (proxy, method, margs) -> {
                    long t0 = System.nanoTime();
                    try {
                        return method.invoke(inner, margs);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    } finally {
                        if (on[0]) {
                            long[] t = totals.computeIfAbsent(method.getName(), k -> new long[2]);
                            t[0] += System.nanoTime() - t0;
                            t[1]++;
                        }
                    }
                });
        BitSkipConfig c = Configs.override(Presets.build(preset, "paper", variant),
                Map.of("batch", Integer.toString(batch), "accum", "1"), "profile");
        int N = batch * c.ctx();
        Random r = new Random(1);
        int[] x = new int[N], y = new int[N];
        for (int i = 0; i < N; i++) {
            x[i] = r.nextInt(c.vocabSize());
            y[i] = r.nextInt(c.vocabSize());
        }
        BitSkipModel m = new BitSkipModel(c, be, batch);
        m.initialize(1);
        long wall = 0;
        for (int s = 0; s < 2 + steps; s++) {
            on[0] = s >= 2;
            long t0 = System.nanoTime();
            m.zeroGrads();
            m.trainStep(x, y, batch, Randomness.skipMask(c, 7, s, 0, batch), Randomness.dropoutSeed(7, s, 0), 1.0f);
            Optimizer.step(m, 1e-4f, s + 1);
            if (on[0]) {
                wall += System.nanoTime() - t0;
            }
        }
        System.out.printf(Locale.ROOT, "%s %s batch %d x ctx %d on %s: %.1f ms per step (%d steps)%n", preset, variant,
                batch, c.ctx(), inner.name(), wall / 1e6 / steps, steps);
        long stepWall = wall;
        System.out.println("| op | ms per step | share | calls per step |");
        System.out.println("|---|---|---|---|");
        totals.entrySet().stream().sorted((a, b) -> Long.compare(b.getValue()[0], a.getValue()[0])).forEach(e -> {
            double ms = e.getValue()[0] / 1e6 / steps;
            if (ms >= 0.05) {
                System.out.printf(Locale.ROOT, "| %s | %.1f | %.1f%% | %d |%n", e.getKey(), ms, 100.0 * e.getValue()[0] / stepWall,
                        e.getValue()[1] / steps);
            }
        });
        inner.close();
    }
}
