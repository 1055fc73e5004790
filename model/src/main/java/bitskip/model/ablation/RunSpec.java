package bitskip.model.ablation;

import java.util.List;
import java.util.Map;

/**
 * One training run of an ablation: a variant under a profile, with configuration fields set on top
 * ({@code --set}), a step budget and a seed. Its folder is {@code OUT/runs/ID}.
 *
 * @param id      unique, file-name safe: {@code PROFILE-VARIANT}, {@code PROFILE-sweep-lr0.05-lq0-p0.7} or {@code PROFILE-bitskip-adapter}
 * @param group   "factorial", "sweep" or "exit-heads"
 * @param sets    configuration overrides of this run, applied after the ablation's own --set
 */
public record RunSpec(String id, String group, String profile, String variant, Map<String, String> sets, int steps,
                      long seed) {

    /** The train command's arguments for this run (besides --out, data and the shared options). */
    public List<String> trainArgs(String preset) {
        List<String> a = new java.util.ArrayList<>(List.of("--preset", preset, "--profile", profile, "--variant", variant,
                "--steps", Integer.toString(steps), "--seed", Long.toString(seed)));
        for (Map.Entry<String, String> e : sets.entrySet()) {
            a.add("--set");
            a.add(e.getKey() + "=" + e.getValue());
        }
        return a;
    }
}
