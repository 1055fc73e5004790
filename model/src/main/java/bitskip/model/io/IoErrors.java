package bitskip.model.io;

import java.nio.channels.UnresolvedAddressException;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;

/**
 * One line that says what went wrong, for errors whose own message is only a path ({@code /proc/nope} from a
 * NoSuchFileException), only the OS's words ({@code Is a directory}), or nothing at all (a ConnectException
 * whose message is null and whose cause says the host was not found).
 */
public final class IoErrors {
    private IoErrors() {}

    public static String describe(Throwable e) {
        StringBuilder s = new StringBuilder(own(e));
        if (!(e instanceof java.io.IOException) && e.getMessage() != null && !e.getMessage().isBlank()) {
            return s.toString(); // a message of our own says it all; its cause is for the stack trace
        }
        // the causes add what an I/O error's message leaves out (a failed connection's unresolved host)
        Throwable seen = e;
        for (Throwable c = e.getCause(); c != null && c != seen && s.length() < 400; seen = c, c = c.getCause()) {
            String more = own(c);
            if (!s.toString().contains(more)) {
                s.append(" (").append(more).append(')');
            }
        }
        return s.toString();
    }

    /** What this throwable alone says, made readable. */
    private static String own(Throwable e) {
        if (e instanceof FileSystemException f) {
            String file = f.getFile() == null ? "" : f.getFile() + (f.getOtherFile() == null ? "" : " -> " + f.getOtherFile());
            String reason = f.getReason();
            if (reason == null) {
                reason = e instanceof NoSuchFileException ? "no such file or folder"
                        : e instanceof AccessDeniedException ? "permission denied"
                        : e instanceof FileAlreadyExistsException ? "already exists"
                        : e instanceof NotDirectoryException ? "not a folder"
                        : e instanceof DirectoryNotEmptyException ? "folder not empty"
                        : words(e);
            }
            return file.isEmpty() ? reason : file + ": " + reason;
        }
        if (e instanceof UnresolvedAddressException || e instanceof java.net.UnknownHostException) {
            return "host not found" + (e.getMessage() == null ? "" : ": " + e.getMessage());
        }
        if (e instanceof java.net.ConnectException && e.getMessage() == null) {
            return "could not connect";
        }
        return e.getMessage() == null || e.getMessage().isBlank() ? words(e) : e.getMessage();
    }

    /** "ConnectException" -> "connect exception". */
    private static String words(Throwable e) {
        return e.getClass().getSimpleName().replaceAll("([a-z])([A-Z])", "$1 $2").toLowerCase(java.util.Locale.ROOT);
    }
}
