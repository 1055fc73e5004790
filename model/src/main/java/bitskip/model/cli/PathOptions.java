package bitskip.model.cli;

import bitskip.model.eval.Evaluator;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.ParseResult;

/**
 * Every file and folder option of every command, checked in one place before the command runs: an input
 * must exist and be of its kind (a file, a folder), and no output may be one of the command's inputs or
 * another output, so that no command ever writes its output over its input. A problem is a usage error
 * (exit code 2) naming the option and the path.
 */
final class PathOptions {
    /** What a path option is. */
    enum Role { INPUT_FILE, INPUT_FOLDER, INPUT_FILE_OR_FOLDER, OUTPUT_FILE, OUTPUT_FOLDER }

    /** The role of each path option by name; the same name means the same thing in every command. */
    private static final Map<String, Role> ROLES = Map.of(
            "--config", Role.INPUT_FILE,
            "--train", Role.INPUT_FILE,
            "--valid", Role.INPUT_FILE,
            "--text", Role.INPUT_FILE,
            "--model", Role.INPUT_FILE,
            "--data", Role.INPUT_FOLDER,
            "--checkpoint", Role.INPUT_FILE_OR_FOLDER,
            "--json", Role.OUTPUT_FILE,
            "--csv", Role.OUTPUT_FILE);

    private PathOptions() {}

    static Role roleOf(String command, String option) {
        if (option.equals("--out")) {
            return command.equals("export") ? Role.OUTPUT_FILE : Role.OUTPUT_FOLDER;
        }
        return ROLES.get(option);
    }

    /** Checks the path options the user gave to the command that parseResult will run. */
    static void check(ParseResult parseResult) {
        ParseResult p = parseResult;
        while (p.hasSubcommand()) {
            p = p.subcommand();
        }
        CommandLine cl = p.commandSpec().commandLine();
        String command = p.commandSpec().name();
        List<Given> inputs = new ArrayList<>(), outputs = new ArrayList<>();
        for (OptionSpec o : p.matchedOptions()) {
            if (o.type() != Path.class || o.getValue() == null) {
                continue;
            }
            Role role = roleOf(command, o.longestName());
            if (role == null) {
                continue; // a path option without a role is not checked (a test requires every one to have one)
            }
            Given g = new Given(o.longestName(), o.getValue(), role);
            requireKind(cl, g);
            (role == Role.OUTPUT_FILE || role == Role.OUTPUT_FOLDER ? outputs : inputs).add(g);
        }
        for (int i = 0; i < outputs.size(); i++) {
            Given out = outputs.get(i);
            for (Given in : inputs) {
                if (sameFile(out.path(), readFile(in))) {
                    throw new CommandLine.ParameterException(cl, out.option() + " " + out.path() + " is the file "
                            + in.option() + " " + in.path() + " reads: writing it would destroy the input; choose another "
                            + out.option());
                }
            }
            for (Given other : outputs.subList(0, i)) {
                if (sameFile(out.path(), other.path())) {
                    throw new CommandLine.ParameterException(cl, out.option() + " and " + other.option() + " are the same "
                            + "file " + out.path() + ": one would overwrite the other");
                }
            }
        }
    }

    private record Given(String option, Path path, Role role) {}

    private static void requireKind(CommandLine cl, Given g) {
        Path p = g.path();
        String what = g.option() + " " + p;
        switch (g.role()) {
            case INPUT_FILE, INPUT_FOLDER, INPUT_FILE_OR_FOLDER -> {
                if (!Files.exists(p)) {
                    throw new CommandLine.ParameterException(cl, what + ": no such " + (g.role() == Role.INPUT_FOLDER
                            ? "folder" : g.role() == Role.INPUT_FILE ? "file" : "file or folder"));
                }
                if (g.role() == Role.INPUT_FILE && Files.isDirectory(p)) {
                    throw new CommandLine.ParameterException(cl, what + " is a folder, not a file");
                }
                if (g.role() == Role.INPUT_FOLDER && !Files.isDirectory(p)) {
                    throw new CommandLine.ParameterException(cl, what + " is a file, not a folder");
                }
                if (!Files.isReadable(p)) {
                    throw new CommandLine.ParameterException(cl, what + ": permission denied (not readable)");
                }
            }
            case OUTPUT_FILE -> {
                if (Files.isDirectory(p)) {
                    throw new CommandLine.ParameterException(cl, what + " is a folder; give the file to write");
                }
            }
            case OUTPUT_FOLDER -> {
                if (Files.exists(p) && !Files.isDirectory(p)) {
                    throw new CommandLine.ParameterException(cl, what + " is a file, not a folder");
                }
            }
        }
    }

    /** The file an input option reads: a run folder given as --checkpoint is read through its checkpoint. */
    private static Path readFile(Given in) {
        if (in.role() == Role.INPUT_FILE_OR_FOLDER) {
            try {
                return Evaluator.resolveCheckpoint(in.path());
            } catch (IOException e) {
                // the command says what is missing
            }
        }
        return in.path();
    }

    /** Whether two paths name the same file (following links when both exist). */
    static boolean sameFile(Path a, Path b) {
        try {
            if (Files.exists(a) && Files.exists(b)) {
                return Files.isSameFile(a, b);
            }
        } catch (IOException e) {
            // fall back to the names
        }
        return a.toAbsolutePath().normalize().equals(b.toAbsolutePath().normalize());
    }
}
