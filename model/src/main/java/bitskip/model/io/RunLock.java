package bitskip.model.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * One process owns a folder (a training run's, an ablation's) while it writes there: the file
 * {@code DIR/run.lock} names the owner (host, pid, command, a random token) and is a lease the owner renews
 * every quarter lease by rewriting its last byte, which moves its modification time. Another process that
 * finds the lock held is refused with {@link HeldException}, naming the owner.
 *
 * <p>A lock is stale, and is taken over, when its owner is on this host (the same host name and pid namespace)
 * and its process is gone (at once: a SIGKILLed run is resumed without waiting), or when its lease lapsed: no renewal for
 * {@link #leaseSeconds()} (a process that died on another host; the hosts' clocks must agree to within the
 * lease). Creating the lock is atomic (a hard link of a complete file, which fails when the name exists), and
 * a takeover runs under a second file created exclusively ({@code run.lock.takeover}), so of two processes
 * that find the same stale lock only one gets the folder. The owner checks its token before every checkpoint
 * ({@link #verify}): a process paused past its lease whose lock was taken over stops instead of writing.
 */
public final class RunLock implements AutoCloseable {
    public static final String FILE = "run.lock";
    /** Seconds without renewal after which a lock is stale: -Dbitskip.lock.lease (default 60). */
    public static final String LEASE_PROPERTY = "bitskip.lock.lease";

    /** The folder is owned by another live process (or one whose lease has not lapsed yet). */
    public static final class HeldException extends RuntimeException {
        public HeldException(String message) {
            super(message);
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path file;
    private final String token;
    private final ScheduledExecutorService renewer;
    private volatile String lost;

    private RunLock(Path file, String token) {
        this.file = file;
        this.token = token;
        this.renewer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "bitskip-run-lock " + file);
            t.setDaemon(true);
            return t;
        });
        long period = Math.max(1, leaseSeconds() * 1000L / 4);
        renewer.scheduleAtFixedRate(this::renew, period, period, TimeUnit.MILLISECONDS);
    }

    /** Lease length in seconds. */
    public static long leaseSeconds() {
        return Long.getLong(LEASE_PROPERTY, 60L);
    }

    /**
     * Takes the lock of dir (created if missing) for this process, taking over a stale one; refuses with
     * {@link HeldException} naming the owner while another holds it.
     */
    public static RunLock acquire(Path dir, String command) throws IOException {
        Files.createDirectories(dir);
        Path file = dir.resolve(FILE);
        String token = randomToken();
        byte[] content = content(token, command);
        for (int attempt = 0; attempt < 5; attempt++) {
            if (create(file, content)) {
                return new RunLock(file, token);
            }
            Optional<String> owner = read(file);
            if (owner.isEmpty()) {
                continue; // released between our two steps: try again
            }
            String whyStale = staleness(file, owner.get());
            if (whyStale == null) {
                throw new HeldException(dir + " is in use: " + describe(owner.get(), file) + "; wait for that run to "
                        + "end or stop it (a lock whose owner died is taken over: on this host at once, from another "
                        + "host once its " + leaseSeconds() + " s lease lapses)");
            }
            if (takeOver(file, owner.get(), content)) {
                System.err.println("bitskip: took over the stale lock of " + dir + " (" + whyStale + ")");
                return new RunLock(file, token);
            }
        }
        throw new HeldException(dir + " is in use: its lock " + file + " keeps changing hands; try again");
    }

    /** Fails when this process no longer owns the folder (its lock was taken over or removed). */
    public void verify() {
        String why = lost != null ? lost : check();
        if (why != null) {
            lost = why;
            throw new HeldException("lost the ownership of " + file.getParent() + ": " + why
                    + "; stopped without writing there");
        }
    }

    /** Stops renewing and removes the lock if it is still ours. */
    @Override
    public void close() {
        renewer.shutdownNow();
        try {
            if (check() == null) {
                Files.deleteIfExists(file);
            }
        } catch (IOException e) {
            // the lock then looks stale to the next process on this host (our pid is gone), or after the lease
        }
    }

    // ---- the lease ----------------------------------------------------------------------------------

    /** Rewrites the file's last byte in place (the same byte), which renews its modification time. */
    private void renew() {
        String why = check();
        if (why != null) {
            lost = why;
            renewer.shutdown();
            return;
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            long size = ch.size();
            if (size > 0) {
                ch.write(ByteBuffer.wrap(new byte[] {'\n'}), size - 1);
            }
        } catch (IOException e) {
            // the next renewal tries again; verify() reports a lock that is gone
        }
    }

    /** Null while the file holds our token, else what happened to it. */
    private String check() {
        Optional<String> now;
        try {
            now = read(file);
        } catch (IOException e) {
            return "cannot read " + file + " (" + IoErrors.describe(e) + ")";
        }
        if (now.isEmpty()) {
            return file + " was removed";
        }
        if (!token.equals(field(now.get(), "token"))) {
            return "another process took it over: " + describe(now.get(), file);
        }
        return null;
    }

    // ---- creating, reading, taking over -----------------------------------------------------------------

    /** Creates file with content atomically; false when it exists. */
    private static boolean create(Path file, byte[] content) throws IOException {
        Path tmp = file.resolveSibling("." + FILE + "." + randomToken() + ".tmp");
        Files.write(tmp, content, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE, StandardOpenOption.SYNC);
        try {
            Files.createLink(file, tmp); // fails if file exists, and never shows a half-written lock
            return true;
        } catch (FileAlreadyExistsException e) {
            return false;
        } catch (UnsupportedOperationException | IOException noLinks) {
            // a file system without hard links: exclusive creation, then the content
            try {
                Files.write(file, content, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE, StandardOpenOption.SYNC);
                return true;
            } catch (FileAlreadyExistsException e) {
                return false;
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    private static Optional<String> read(Path file) throws IOException {
        try {
            return Optional.of(Files.readString(file, StandardCharsets.UTF_8));
        } catch (NoSuchFileException e) {
            return Optional.empty();
        }
    }

    /**
     * Why the lock with this content is stale, or null while its owner may still be alive. A lock whose
     * content cannot be parsed (being written by a file system without hard links) counts as live until its
     * lease lapses.
     */
    static String staleness(Path file, String content) throws IOException {
        String host = field(content, "host");
        String pid = field(content, "pid");
        String pidSpace = field(content, "pid_namespace");
        boolean sameProcessTable = host != null && host.equals(hostName())
                && (pidSpace == null || pidNamespace() == null || pidSpace.equals(pidNamespace()));
        if (sameProcessTable && pid != null) {
            Optional<ProcessHandle> p = ProcessHandle.of(Long.parseLong(pid));
            if (p.isEmpty() || !p.get().isAlive()) {
                return "its process " + pid + " on this host is gone";
            }
            String started = field(content, "pid_start");
            String actual = p.get().info().startInstant().map(Instant::toString).orElse(null);
            if (started != null && actual != null && !started.equals(actual)) {
                return "its process " + pid + " on this host is gone (the pid now belongs to another process)";
            }
        }
        Duration age;
        try {
            age = Duration.between(Files.getLastModifiedTime(file).toInstant(), Instant.now());
        } catch (NoSuchFileException e) {
            return "it was removed";
        }
        if (age.getSeconds() > leaseSeconds()) {
            return "its lease was last renewed " + age.getSeconds() + " s ago, more than the " + leaseSeconds() + " s lease";
        }
        return null;
    }

    /**
     * Replaces the stale lock with ours under an exclusive takeover file, if the lock still holds the
     * content judged stale; false when another process got there first.
     */
    private static boolean takeOver(Path file, String stale, byte[] content) throws IOException {
        Path mutex = file.resolveSibling(FILE + ".takeover");
        try {
            Files.write(mutex, new byte[0], StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        } catch (FileAlreadyExistsException e) {
            try {
                Duration age = Duration.between(Files.getLastModifiedTime(mutex).toInstant(), Instant.now());
                if (age.getSeconds() > leaseSeconds()) {
                    Files.deleteIfExists(mutex); // left by a process that died while taking over
                }
            } catch (NoSuchFileException gone) {
                // released meanwhile
            }
            return false;
        }
        try {
            Optional<String> now = read(file);
            if (now.isPresent() && !now.get().equals(stale)) {
                return false; // renewed in place, or replaced: look again
            }
            Files.deleteIfExists(file);
            return create(file, content);
        } finally {
            Files.deleteIfExists(mutex);
        }
    }

    // ---- the owner's identity ----------------------------------------------------------------------

    private static byte[] content(String token, String command) {
        ProcessHandle self = ProcessHandle.current();
        ObjectNode o = JSON.createObjectNode();
        o.put("owner", self.pid() + "@" + hostName());
        o.put("host", hostName());
        o.put("pid", Long.toString(self.pid()));
        self.info().startInstant().ifPresent(i -> o.put("pid_start", i.toString()));
        if (pidNamespace() != null) {
            o.put("pid_namespace", pidNamespace());
        }
        o.put("command", command);
        o.put("acquired", Instant.now().toString());
        o.put("lease_seconds", leaseSeconds());
        o.put("token", token);
        return (o.toString() + "\n").getBytes(StandardCharsets.UTF_8);
    }

    /** "train, pid 1234 on host h, since 2024-...; lease renewed 5 s ago (DIR/run.lock)". */
    static String describe(String content, Path file) {
        String renewed;
        try {
            renewed = Duration.between(Files.getLastModifiedTime(file).toInstant(), Instant.now()).getSeconds() + " s ago";
        } catch (IOException e) {
            renewed = "unknown";
        }
        String owner = field(content, "owner");
        if (owner == null) {
            return "its lock " + file + " is being written or is not a bitskip lock (last changed " + renewed + ")";
        }
        return String.format(Locale.ROOT, "%s, pid %s on host %s, since %s; lease renewed %s (%s)", field(content, "command"),
                field(content, "pid"), field(content, "host"), field(content, "acquired"), renewed, file);
    }

    /** A text field of the lock's JSON, or null when absent or unparsable. */
    private static String field(String content, String name) {
        try {
            JsonNode n = JSON.readTree(content);
            return n == null || !n.hasNonNull(name) ? null : n.get(name).asText();
        } catch (IOException e) {
            return null;
        }
    }

    /** This host's name: the kernel's (Linux), else what the resolver says. */
    static String hostName() {
        try {
            return Files.readString(Path.of("/proc/sys/kernel/hostname")).trim();
        } catch (IOException | RuntimeException e) {
            try {
                return java.net.InetAddress.getLocalHost().getHostName();
            } catch (IOException ex) {
                return "unknown-host";
            }
        }
    }

    /**
     * This process's pid namespace (Linux: "pid:[4026531836]"), or null: two containers may share a host name
     * and a folder but not their pids, and a pid is only checked within its own namespace.
     */
    static String pidNamespace() {
        try {
            return Files.readSymbolicLink(Path.of("/proc/self/ns/pid")).toString();
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    private static String randomToken() {
        byte[] b = new byte[12];
        new java.security.SecureRandom().nextBytes(b);
        return HexFormat.of().formatHex(b);
    }
}
