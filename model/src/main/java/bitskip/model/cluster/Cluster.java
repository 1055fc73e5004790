package bitskip.model.cluster;

import bitskip.model.ablation.RunExecutor;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.train.GradientExchange;
import java.util.ServiceLoader;

/**
 * A distributed engine the command line hands work to ({@code --spark MASTER}): the runs of an ablation as its
 * tasks, and the collective of data-parallel training. Found with {@link ServiceLoader}, so the core modules
 * build and run without it; the optional {@code spark} module provides one.
 */
public interface Cluster {

    /** The flag's name without dashes: "spark". */
    String name();

    /**
     * How many runs (or workers) share one machine's cores on master, so each can be given cores/that threads;
     * 0 when the master does not say (a real cluster: each run takes its executor's machine's cores).
     */
    int tasksPerMachine(String master);

    /** The ablation's runs as tasks on master. */
    RunExecutor runs(String master);

    /**
     * The collective of data-parallel training on master: workers workers, each a model of c on backend (a name),
     * with threads threads (0: the backend's default).
     */
    GradientExchange exchange(String master, int workers, BitSkipConfig c, String backend, int threads);

    /** The engine of that name on the class path, or a one-line error saying how to get it. */
    static Cluster load(String name) {
        for (Cluster c : ServiceLoader.load(Cluster.class)) {
            if (c.name().equals(name)) {
                return c;
            }
        }
        throw new IllegalArgumentException("--" + name + " needs the optional " + name + " module, which is not on the class path: "
                + "./bitskip adds it when --" + name + " is given (building it downloads its jars once); with Maven, "
                + "build it with -P" + name + " and run from " + name + "/target/classpath.txt");
    }
}
