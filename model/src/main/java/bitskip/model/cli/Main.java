package bitskip.model.cli;

import bitskip.engine.Backends;
import bitskip.model.io.IoErrors;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code bitskip}: the command line. Each subcommand is also runnable on its own (BitSkipTrain, ...). */
@Command(name = "bitskip", mixinStandardHelpOptions = true, version = "bitskip 0.1.0",
        description = "Ternary transformers with Hadamard-smoothed BitLinear layers and LayerSkip-style early exit.",
        subcommands = {TrainCommand.class, EvalCommand.class, AblationCommand.class, SeedsCommand.class, CurvesCommand.class, ExportCommand.class, GenerateCommand.class, Main.BackendsCommand.class, Main.DevicesCommand.class})
public final class Main implements Callable<Integer> {

    public static void main(String[] args) {
        System.exit(run(new Main(), args));
    }

    /**
     * Runs a command. Every error ends with one line on standard error and an exit code of {@link ExitCodes}:
     * bad input (an option, a file, a configuration field) 2, a folder in use 3, a non-finite value 4,
     * anything else 1; a stack trace only with {@value #DEBUG_ENV}=1.
     */
    public static int run(Object command, String[] args) {
        ParentWatch.startIfAsked();
        try {
            return commandLine(command).execute(args);
        } catch (LinkageError | RuntimeException e) { // what picocli lets through: errors building or running a command
            return report(e, new java.io.PrintWriter(System.err, true));
        }
    }

    private static CommandLine commandLine(Object command) {
        CommandLine cl = new CommandLine(command);
        Choices.registerConverters(cl);
        cl.setExecutionStrategy(parsed -> {
            PathOptions.check(parsed);
            return new CommandLine.RunLast().execute(parsed);
        });
        cl.setParameterExceptionHandler((ex, given) -> {
            CommandLine c = ex.getCommandLine();
            String name = c.getCommandSpec().qualifiedName();
            name = name.startsWith("bitskip") ? name : "bitskip " + name;
            StringBuilder s = new StringBuilder(name).append(": ").append(ex.getMessage());
            if (ex instanceof CommandLine.UnmatchedArgumentException u && !u.getSuggestions().isEmpty()) {
                s.append(" (did you mean ").append(String.join(" or ", u.getSuggestions())).append("?)");
            }
            c.getErr().println(s.append("; see '").append(name).append(" --help'"));
            return ExitCodes.BAD_INPUT;
        });
        cl.setExecutionExceptionHandler((ex, line, parsed) -> report(ex, line.getErr()));
        return cl;
    }

    /** Set to 1 to get the stack trace of an error besides its one line. */
    public static final String DEBUG_ENV = "BITSKIP_DEBUG";

    private static int report(Throwable thrown, java.io.PrintWriter err) {
        Throwable e = thrown instanceof CommandLine.ExecutionException && thrown.getCause() != null ? thrown.getCause() : thrown;
        int code = ExitCodes.of(e);
        String message = MissingVectorModule.isIt(e) ? MissingVectorModule.MESSAGE : IoErrors.describe(e);
        if (code == ExitCodes.FAILED && !(e instanceof IllegalStateException)) {
            // not the input's fault: say where, so the one line is enough to report it
            StackTraceElement at = e.getStackTrace().length > 0 ? e.getStackTrace()[0] : null;
            message = "internal error: " + message + " (" + e.getClass().getSimpleName()
                    + (at == null ? "" : " at " + at.getFileName() + ":" + at.getLineNumber()) + "; " + DEBUG_ENV
                    + "=1 prints the stack trace)";
        }
        err.println("bitskip: " + message);
        if ("1".equals(System.getenv(DEBUG_ENV))) {
            e.printStackTrace(err);
        }
        err.flush();
        return code;
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
