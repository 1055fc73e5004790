package bitskip.model.io;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** One owner per folder: held locks are refused naming the owner; stale ones (dead pid, lapsed lease) are taken over. */
class RunLockTest {

    @Test
    void aHeldLockIsRefusedNamingItsOwnerAndFreedOnClose(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("run");
        try (RunLock a = RunLock.acquire(dir, "train")) {
            RunLock.HeldException e = assertThrows(RunLock.HeldException.class, () -> RunLock.acquire(dir, "train"));
            assertTrue(e.getMessage().contains(dir + " is in use: train, pid " + ProcessHandle.current().pid() + " on host "
                    + RunLock.hostName()), e.getMessage());
            a.verify();
        }
        assertFalse(Files.exists(dir.resolve(RunLock.FILE)), "released");
        RunLock.acquire(dir, "train").close();
    }

    @Test
    void aLockOfADeadProcessOnThisHostIsTakenOverAtOnce(@TempDir Path tmp) throws Exception {
        Process p = new ProcessBuilder(ProcessHandle.current().info().command().orElse("java"), "-version")
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        p.waitFor();
        writeLock(tmp, RunLock.hostName(), p.pid(), Instant.now());
        try (RunLock l = RunLock.acquire(tmp, "train")) {
            l.verify();
            assertTrue(Files.readString(tmp.resolve(RunLock.FILE)).contains("\"pid\":\"" + ProcessHandle.current().pid() + "\""));
        }
    }

    @Test
    void aLockFromAnotherHostIsHeldWhileItsLeaseIsFreshAndTakenOverWhenItLapsed(@TempDir Path tmp) throws Exception {
        writeLock(tmp, "elsewhere.example", 4242, Instant.now());
        RunLock.HeldException e = assertThrows(RunLock.HeldException.class, () -> RunLock.acquire(tmp, "train"));
        assertTrue(e.getMessage().contains("pid 4242 on host elsewhere.example"), e.getMessage());

        writeLock(tmp, "elsewhere.example", 4242, Instant.now().minusSeconds(RunLock.leaseSeconds() + 5));
        try (RunLock l = RunLock.acquire(tmp, "train")) {
            l.verify();
        }
    }

    @Test
    void theOwnerRenewsItsLeaseAndNoticesATakeover(@TempDir Path tmp) throws Exception {
        System.setProperty(RunLock.LEASE_PROPERTY, "1");
        try (RunLock l = RunLock.acquire(tmp, "train")) {
            Path f = tmp.resolve(RunLock.FILE);
            Files.setLastModifiedTime(f, FileTime.from(Instant.now().minusSeconds(30)));
            Thread.sleep(1200);
            assertTrue(Files.getLastModifiedTime(f).toInstant().isAfter(Instant.now().minusSeconds(5)), "renewed");
            l.verify();
            // another process judged it stale (say we were paused past the lease) and took it over
            writeLock(tmp, "elsewhere.example", 4242, Instant.now());
            RunLock.HeldException e = assertThrows(RunLock.HeldException.class, l::verify);
            assertTrue(e.getMessage().contains("lost the ownership of " + tmp) && e.getMessage().contains("elsewhere.example"),
                    e.getMessage());
        } finally {
            System.clearProperty(RunLock.LEASE_PROPERTY);
        }
        assertTrue(Files.readString(tmp.resolve(RunLock.FILE)).contains("elsewhere.example"), "close leaves a lock not ours");
    }

    @Test
    void ofProcessesRacingForOneStaleLockExactlyOneGetsIt(@TempDir Path tmp) throws Exception {
        for (int round = 0; round < 5; round++) {
            Path dir = tmp.resolve("r" + round);
            writeLock(dir, "elsewhere.example", 4242, Instant.now().minusSeconds(RunLock.leaseSeconds() + 5));
            int n = 6;
            CountDownLatch go = new CountDownLatch(1);
            ExecutorService pool = Executors.newFixedThreadPool(n);
            List<Future<RunLock>> fs = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                fs.add(pool.submit(() -> {
                    go.await();
                    try {
                        return RunLock.acquire(dir, "train");
                    } catch (RunLock.HeldException e) {
                        return null;
                    }
                }));
            }
            go.countDown();
            List<RunLock> won = new ArrayList<>();
            for (Future<RunLock> f : fs) {
                if (f.get() != null) {
                    won.add(f.get());
                }
            }
            pool.shutdown();
            assertEquals(1, won.size(), "round " + round);
            won.get(0).verify();
            won.get(0).close();
        }
    }

    static void writeLock(Path dir, String host, long pid, Instant renewed) throws Exception {
        Files.createDirectories(dir);
        Path f = dir.resolve(RunLock.FILE);
        Files.writeString(f, "{\"owner\":\"" + pid + "@" + host + "\",\"host\":\"" + host + "\",\"pid\":\"" + pid
                + "\",\"command\":\"train\",\"acquired\":\"2024-01-01T00:00:00Z\",\"lease_seconds\":60,\"token\":\"t" + pid + "\"}\n");
        Files.setLastModifiedTime(f, FileTime.from(renewed));
    }
}
