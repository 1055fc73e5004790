package bitskip.model.train;

import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * A training run's folder: what it holds ({@code config.json}, {@code metrics.jsonl}, the best model in
 * {@code checkpoint/}, the resumable checkpoint in {@code last/} or, killed mid-swap, {@code last.prev/}),
 * and whether a run may start there: a fresh run only into a folder that holds none (or forced), a resume
 * only with the configuration the run was started with, as its checkpoint and its config.json record it.
 */
public final class RunDir {
    /** The files of a run; a forced fresh start deletes these, and nothing else, in the folder. */
    public static final List<String> RUN_FILES = List.of("config.json", "metrics.jsonl", "checkpoint/model.safetensors",
            "last", "last.prev", "last.tmp");

    private final Path dir;

    public RunDir(Path dir) {
        this.dir = dir;
    }

    public Path dir() {
        return dir;
    }

    /**
     * Refuses a start that would lose or misdescribe a run, naming what is wrong; returns the checkpoint folder
     * to resume from, or null for a fresh start.
     */
    public Path checkStart(BitSkipConfig requested, boolean resume, boolean force) throws IOException {
        if (resume && force) {
            throw new IllegalArgumentException("--resume continues the run in " + dir + " and --force replaces it: give one");
        }
        if (Files.exists(dir) && !Files.isDirectory(dir)) {
            throw new IllegalArgumentException("--out " + dir + " is a file, not a folder");
        }
        Path last = lastCheckpoint();
        BitSkipConfig recorded = recordedConfig();
        if (resume && last != null) {
            Path file = last.resolve("model.safetensors");
            BitSkipConfig stored = Checkpoints.readConfig(file);
            if (recorded != null && !recorded.equals(stored)) {
                throw new IllegalArgumentException(dir.resolve("config.json") + " does not describe the checkpoint in "
                        + last + " (" + differences(stored, recorded) + "): it was edited after the run started, but a "
                        + "run cannot change its configuration on resume; put it back, or start a new run with these "
                        + "settings (--force, or another --out)");
            }
            requireSame(stored, requested, file);
            return last;
        }
        if (resume) {
            if (recorded != null) {
                requireSame(recorded, requested, dir.resolve("config.json"));
            }
        } else if (!force && !runFiles().isEmpty()) {
            throw new IllegalArgumentException(dir + " already holds a run (" + String.join(", ", runFiles())
                    + "): continue it with --resume, replace it with --force (which deletes those), or choose another --out");
        }
        return null;
    }

    /** The newest complete checkpoint folder, or null. */
    public Path lastCheckpoint() {
        Path last = dir.resolve("last"), prev = dir.resolve("last.prev");
        if (Checkpoints.isComplete(last)) {
            return last;
        }
        return Checkpoints.isComplete(prev) ? prev : null;
    }

    /** The run files present. */
    public List<String> runFiles() {
        List<String> held = new ArrayList<>();
        for (String f : RUN_FILES) {
            if (Files.exists(dir.resolve(f))) {
                held.add(f);
            }
        }
        return held;
    }

    /** Deletes the run files (and checkpoint/ when that leaves it empty). */
    public void deleteRun() throws IOException {
        for (String f : RUN_FILES) {
            deleteTree(dir.resolve(f));
        }
        Path best = dir.resolve("checkpoint");
        if (Files.isDirectory(best)) {
            try (Stream<Path> s = Files.list(best)) {
                if (s.findAny().isEmpty()) {
                    Files.delete(best);
                }
            }
        }
    }

    /**
     * Deletes the temporary files a killed write leaves ({@code .NAME.RANDOM.tmp}, see AtomicFiles) beside
     * the run's files; safe while this process owns the folder.
     */
    public void deleteLeftovers() throws IOException {
        for (Path d : new Path[] {dir, dir.resolve("checkpoint")}) {
            if (!Files.isDirectory(d)) {
                continue;
            }
            try (Stream<Path> s = Files.list(d)) {
                for (Path f : s.toList()) {
                    String n = f.getFileName().toString();
                    if (n.startsWith(".") && n.endsWith(".tmp") && Files.isRegularFile(f)) {
                        Files.deleteIfExists(f);
                    }
                }
            }
        }
    }

    /** config.json, or null when there is none. */
    private BitSkipConfig recordedConfig() throws IOException {
        Path f = dir.resolve("config.json");
        return Files.isRegularFile(f) ? Configs.fromJson(Files.readString(f), f.toString()) : null;
    }

    private void requireSame(BitSkipConfig run, BitSkipConfig requested, Path from) {
        if (!run.equals(requested)) {
            throw new IllegalArgumentException("cannot resume " + dir + ": the requested configuration differs from the "
                    + "run's (" + from + "): " + differences(run, requested) + "; resume with the run's settings, or start "
                    + "a new run with these (--force, or another --out)");
        }
    }

    /** "lr 6.0E-4 -> 0.001, batch 4 -> 8": the fields where b differs from a. */
    static String differences(BitSkipConfig a, BitSkipConfig b) {
        ObjectNode x = Configs.JSON.valueToTree(a), y = Configs.JSON.valueToTree(b);
        List<String> diff = new ArrayList<>();
        x.fieldNames().forEachRemaining(f -> {
            if (!x.get(f).equals(y.get(f))) {
                diff.add(f + " " + x.get(f) + " -> " + y.get(f));
            }
        });
        return String.join(", ", diff);
    }

    static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        try (Stream<Path> s = Files.walk(p)) {
            for (Path q : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(q);
            }
        }
    }
}
