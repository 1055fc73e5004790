package bitskip.model.cli;

import bitskip.engine.Backends;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code bitskip}: the command line. Each subcommand is also runnable on its own (BitSkipTrain, ...). */
@Command(name = "bitskip", mixinStandardHelpOptions = true, version = "bitskip 0.1.0",
        description = "Ternary transformers with Hadamard-smoothed BitLinear layers and LayerSkip-style early exit.",
        subcommands = {TrainCommand.class, EvalCommand.class, AblationCommand.class, ExportCommand.class, GenerateCommand.class, Main.BackendsCommand.class, Main.DevicesCommand.class})
public final class Main implements Callable<Integer> {

    public static void main(String[] args) {
        System.exit(run(new Main(), args));
    }

    /** Runs a command; a bad input ends with its message (no stack trace) and exit code 2. */
    public static int run(Object command, String[] args) {
        CommandLine cl = new CommandLine(command);
        cl.setExecutionExceptionHandler((ex, line, parsed) -> {
            if (ex instanceof IllegalArgumentException || ex instanceof java.io.IOException) {
                line.getErr().println("bitskip: " + ex.getMessage());
                return 2;
            }
            throw ex;
        });
        return cl.execute(args);
    }

    @Override
    public Integer call() {
        new CommandLine(this).usage(System.out);
        return 0;
    }

    @Command(name = "backends", mixinStandardHelpOptions = true, description = "List the backends and which one is chosen.")
    static final class BackendsCommand implements Callable<Integer> {
        @Override
        public Integer call() {
            for (String name : Backends.names()) {
                if (name.equals("tornado") && Backends.tornadoUnavailableReason() != null) {
                    System.out.printf("%-8s unavailable: %s%n", name, Backends.tornadoUnavailableReason());
                    continue;
                }
                try (var be = Backends.create(name)) {
                    System.out.printf("%-8s %s%n", name, be.description());
                }
            }
            System.out.println("chosen: " + Backends.resolve(null) + " (from -D" + Backends.PROPERTY + ", $"
                    + Backends.ENV + ", or the default)");
            return 0;
        }
    }

    @Command(name = "devices", mixinStandardHelpOptions = true,
            description = "List every backend and OpenCL device (platform, vendor, compute units, memory, work-group size, fp64/fp16) and the id to pass to --device.")
    static final class DevicesCommand implements Callable<Integer> {
        @Override
        public Integer call() {
            bitskip.engine.opencl.OpenCLDevices.print(System.out, Backends.names());
            System.out.println();
            Backends.printTornadoDevices(System.out);
            return 0;
        }
    }
}
