package bitskip.model.io;

import java.io.BufferedOutputStream;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.HexFormat;

/**
 * Writes a file so that its final name only ever holds a complete file: the body writes a temporary file
 * in the same folder ({@code .NAME.RANDOM.tmp}), which is flushed to the disk ({@code force(true)}) and then
 * renamed over the target in one atomic step. A crash or an exception mid-write therefore leaves the old
 * file (or no file) under the final name, never a half-written one. When the body throws, the temporary
 * file is deleted and the exception propagates; only a process killed mid-write can leave a {@code .tmp}
 * file behind, which is never read.
 *
 * <p>The temporary file is in the target's folder because a rename is only atomic within one file system.
 */
public final class AtomicFiles {
    private AtomicFiles() {}

    private static final SecureRandom RANDOM = new SecureRandom();

    /** Writes target through a buffered stream. Closing the stream in the body is allowed and harmless. */
    public static void write(Path target, IOConsumer<OutputStream> body) throws IOException {
        writeChannel(target, channel -> {
            // The body must not close the channel: it still has to be forced and renamed afterwards.
            OutputStream out = new BufferedOutputStream(new FilterOutputStream(Channels.newOutputStream(channel)) {
                @Override
                public void write(byte[] b, int off, int len) throws IOException {
                    out.write(b, off, len);
                }

                @Override
                public void close() throws IOException {
                    flush();
                }
            }, 1 << 16);
            body.accept(out);
            out.flush();
        });
    }

    /** Writes target through a {@link FileChannel} positioned at 0; the body must not close it. */
    public static void writeChannel(Path target, IOConsumer<FileChannel> body) throws IOException {
        Path absolute = target.toAbsolutePath();
        Path dir = absolute.getParent();
        if (dir == null) {
            throw new IOException("cannot write " + target + ": it has no parent folder");
        }
        Files.createDirectories(dir);
        // Not Files.createTempFile: that creates the file with mode 0600 on POSIX, and the rename would carry
        // that mode to the final file. CREATE_NEW with a random name gives the usual umask-based mode.
        Path tmp = dir.resolve("." + absolute.getFileName() + "." + randomHex() + ".tmp");
        boolean moved = false;
        try {
            try (FileChannel channel = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                body.accept(channel);
                if (!channel.isOpen()) {
                    throw new IOException("the writer of " + target + " closed the file channel before it was flushed");
                }
                channel.force(true);
            }
            Files.move(tmp, absolute, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            moved = true;
            syncDirectory(dir);
        } finally {
            if (!moved) {
                Files.deleteIfExists(tmp);
            }
        }
    }

    /** Writes bytes to target atomically. */
    public static void write(Path target, byte[] bytes) throws IOException {
        write(target, out -> out.write(bytes));
    }

    /**
     * Makes the rename itself durable (POSIX: fsync of the folder). Best effort: some platforms (Windows)
     * cannot open a folder as a channel, and the rename is still atomic without it.
     */
    private static void syncDirectory(Path dir) {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException | UnsupportedOperationException ignored) {
            // Durability of the folder entry is an extra; atomicity does not depend on it.
        }
    }

    private static String randomHex() {
        byte[] b = new byte[6];
        RANDOM.nextBytes(b);
        return HexFormat.of().formatHex(b);
    }
}
