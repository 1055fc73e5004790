package bitskip.spark;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** What a Spark master URL says about where the tasks run. */
final class Masters {
    private static final Pattern LOCAL = Pattern.compile("local(?:\\[(\\*|\\d+)(?:,\\s*\\d+)?])?");
    private static final Pattern LOCAL_CLUSTER = Pattern.compile("local-cluster\\[\\s*(\\d+)\\s*,\\s*(\\d+)\\s*,\\s*(\\d+)\\s*]");

    private Masters() {}

    /** Whether every task runs on this machine (local[...] in this JVM, local-cluster[...] in executor JVMs here). */
    static boolean onThisMachine(String master) {
        return LOCAL.matcher(master).matches() || LOCAL_CLUSTER.matcher(master).matches();
    }

    /** Whether the tasks run in this JVM (local, local[N], local[*], local[N,F]). */
    static boolean inThisJvm(String master) {
        return LOCAL.matcher(master).matches();
    }

    /**
     * How many tasks run at once on one machine's cores: N for local[N], the cores for local[*], workers ×
     * cores per worker for local-cluster[W,C,M]; 0 for a real cluster (its executors' own machines).
     */
    static int tasksPerMachine(String master, int cores) {
        Matcher m = LOCAL.matcher(master);
        if (m.matches()) {
            if (m.group(1) == null) {
                return 1;
            }
            return m.group(1).equals("*") ? cores : Integer.parseInt(m.group(1));
        }
        m = LOCAL_CLUSTER.matcher(master);
        if (m.matches()) {
            return Integer.parseInt(m.group(1)) * Integer.parseInt(m.group(2));
        }
        return 0;
    }
}
