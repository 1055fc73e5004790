package bitskip.model.cli;

import java.util.List;

/** The Markdown head of a report a command writes: its title and the command line that reproduces it. */
final class ReportHeader {
    private ReportHeader() {}

    /** "# TITLE", then "./bitskip COMMAND ARGS..." in a code block, an argument with a space quoted as a shell needs it. */
    static String of(String title, String command, List<String> args) {
        StringBuilder h = new StringBuilder("# ").append(title).append("\n\nCommand:\n\n```\n./bitskip ").append(command);
        for (String a : args) {
            h.append(' ').append(a.contains(" ") ? "\"" + a + "\"" : a);
        }
        return h.append("\n```\n").toString();
    }
}
