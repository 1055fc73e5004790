package bitskip.model.data;

import com.sun.net.httpserver.HttpServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Download, verification and cache reuse against a local HTTP server (there is no internet in tests). */
class WikiText2Test {
    @TempDir
    Path tmp;

    private HttpServer server;
    private final Map<String, byte[]> served = new ConcurrentHashMap<>();
    private final AtomicInteger requests = new AtomicInteger();
    private final List<String> log = new ArrayList<>();
    private final Map<WikiText2.Split, String> texts = new EnumMap<>(WikiText2.Split.class);
    private final Map<WikiText2.Split, String> sums = new EnumMap<>(WikiText2.Split.class);

    @BeforeEach
    void start() throws IOException {
        for (WikiText2.Split s : WikiText2.Split.values()) {
            String text = " = " + s + " = \n \n Some text of the " + s.fileName() + " split . \n";
            texts.put(s, text);
            sums.put(s, Sha256.hex(text.getBytes(StandardCharsets.UTF_8)));
        }
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", exchange -> {
            requests.incrementAndGet();
            byte[] body = served.get(exchange.getRequestURI().getPath());
            if (body == null) {
                exchange.sendResponseHeaders(404, -1);
            } else {
                exchange.sendResponseHeaders(200, body.length);
                try (OutputStream out = exchange.getResponseBody()) {
                    out.write(body);
                }
            }
            exchange.close();
        });
        server.start();
    }

    @AfterEach
    void stop() {
        server.stop(0);
    }

    private URI url(String path) {
        return URI.create("http://127.0.0.1:" + server.getAddress().getPort() + path);
    }

    private byte[] zip(Map<WikiText2.Split, String> files) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ZipOutputStream z = new ZipOutputStream(bytes)) {
            z.putNextEntry(new ZipEntry("wikitext-2-raw/"));
            z.closeEntry();
            for (Map.Entry<WikiText2.Split, String> e : files.entrySet()) {
                z.putNextEntry(new ZipEntry("wikitext-2-raw/" + e.getKey().fileName()));
                z.write(e.getValue().getBytes(StandardCharsets.UTF_8));
                z.closeEntry();
            }
        }
        return bytes.toByteArray();
    }

    private WikiText2.Locator locator(Path cacheRoot, URI... sources) {
        return new WikiText2.Locator().env(Map.of()).cacheRoot(cacheRoot).sources(List.of(sources))
                .checksums(sums).log(log::add);
    }

    @Test
    void downloadsZipVerifiesAndReusesCache() throws IOException {
        served.put("/wikitext-2-raw-v1.zip", zip(texts));
        Path cache = tmp.resolve("cache");
        WikiText2 w = locator(cache, url("/wikitext-2-raw-v1.zip")).locate(null);
        assertEquals(cache.resolve("wikitext-2-raw"), w.dir());
        for (WikiText2.Split s : WikiText2.Split.values()) {
            assertEquals(texts.get(s), Files.readString(w.file(s)));
        }
        assertEquals(1, requests.get());
        assertEquals(List.of("wiki.test.raw", "wiki.train.raw", "wiki.valid.raw"), listNames(w.dir()));

        // Second time: served from the cache, no request.
        served.clear();
        WikiText2 again = locator(cache, url("/wikitext-2-raw-v1.zip")).locate(null);
        assertEquals(w.dir(), again.dir());
        assertEquals(1, requests.get());
    }

    @Test
    void fallsBackToNextSourceAndAcceptsAFolderOfFiles() throws IOException {
        for (WikiText2.Split s : WikiText2.Split.values()) {
            served.put("/mirror/" + s.fileName(), texts.get(s).getBytes(StandardCharsets.UTF_8));
        }
        WikiText2 w = locator(tmp.resolve("c"), url("/gone.zip"), url("/mirror/")).locate(null);
        assertEquals(texts.get(WikiText2.Split.VALID), Files.readString(w.file(WikiText2.Split.VALID)));
        assertTrue(log.stream().anyMatch(l -> l.contains("/gone.zip") && l.contains("HTTP 404")), log.toString());
    }

    @Test
    void checksumMismatchIsRejectedAndLeavesNothingBehind() throws IOException {
        Map<WikiText2.Split, String> bad = new EnumMap<>(texts);
        bad.put(WikiText2.Split.VALID, texts.get(WikiText2.Split.VALID) + "tampered\n");
        served.put("/w.zip", zip(bad));
        Path cache = tmp.resolve("cache");
        IOException e = assertThrows(IOException.class, () -> locator(cache, url("/w.zip")).locate(null));
        String actual = Sha256.hex(bad.get(WikiText2.Split.VALID).getBytes(StandardCharsets.UTF_8));
        String msg = e.getMessage();
        assertTrue(msg.contains("wiki.valid.raw downloaded from " + url("/w.zip")), msg);
        assertTrue(msg.contains("has sha256 " + actual + ", expected " + sums.get(WikiText2.Split.VALID)), msg);
        assertTrue(msg.contains("--data DIR"), msg);
        // The zip lists train, valid, test: train was verified and kept, valid discarded (no temp file either),
        // test never reached.
        assertEquals(List.of("wiki.train.raw"), listNames(cache.resolve("wikitext-2-raw")));

        // With a good source the missing files are fetched and the verified one is kept.
        served.put("/w.zip", zip(texts));
        requests.set(0);
        locator(cache, url("/w.zip")).locate(null);
        assertEquals(List.of("wiki.test.raw", "wiki.train.raw", "wiki.valid.raw"), listNames(cache.resolve("wikitext-2-raw")));
    }

    @Test
    void corruptCachedFileIsDownloadedAgain() throws IOException {
        served.put("/w.zip", zip(texts));
        Path cache = tmp.resolve("cache");
        WikiText2 w = locator(cache, url("/w.zip")).locate(null);
        Files.writeString(w.file(WikiText2.Split.TEST), "bit rot");
        locator(cache, url("/w.zip")).locate(null);
        assertEquals(texts.get(WikiText2.Split.TEST), Files.readString(w.file(WikiText2.Split.TEST)));
        assertTrue(log.stream().anyMatch(l -> l.contains("does not match its sha256")), log.toString());
    }

    @Test
    void zipWithoutASplitNamesIt() throws IOException {
        Map<WikiText2.Split, String> partial = new EnumMap<>(texts);
        partial.remove(WikiText2.Split.TEST);
        served.put("/p.zip", zip(partial));
        IOException e = assertThrows(IOException.class, () -> locator(tmp.resolve("c"), url("/p.zip")).locate(null));
        assertTrue(e.getMessage().contains("the zip has no entry wiki.test.raw"), e.getMessage());
    }

    @Test
    void explicitFolderAndEnvironmentVariableWinOverTheCache() throws IOException {
        Path data = tmp.resolve("data");
        Files.createDirectories(data);
        for (WikiText2.Split s : WikiText2.Split.values()) {
            Files.writeString(data.resolve(s.fileName()), texts.get(s));
        }
        assertEquals(data, locator(tmp.resolve("c"), url("/none.zip")).locate(data).dir());
        assertEquals(data, locator(tmp.resolve("c"), url("/none.zip"))
                .env(Map.of(WikiText2.ENV_DATA, data.toString())).locate(null).dir());
        assertEquals(0, requests.get());
    }

    @Test
    void folderMissingASplitOrWithWrongBytesIsRefused() throws IOException {
        Path data = tmp.resolve("data");
        Files.createDirectories(data);
        Files.writeString(data.resolve("wiki.train.raw"), texts.get(WikiText2.Split.TRAIN));
        Files.writeString(data.resolve("wiki.test.raw"), texts.get(WikiText2.Split.TEST));
        FileNotFoundException e = assertThrows(FileNotFoundException.class,
                () -> locator(tmp.resolve("c")).locate(data));
        assertTrue(e.getMessage().startsWith("WikiText-2 folder " + data + " (from --data " + data + ") has no wiki.valid.raw"),
                e.getMessage());

        Files.writeString(data.resolve("wiki.valid.raw"), "not wikitext\n");
        IOException wrong = assertThrows(IOException.class, () -> locator(tmp.resolve("c")).locate(data));
        assertTrue(wrong.getMessage().contains(data.resolve("wiki.valid.raw") + " (from --data " + data + ") has sha256 "),
                wrong.getMessage());
        assertTrue(wrong.getMessage().contains("expected " + sums.get(WikiText2.Split.VALID)), wrong.getMessage());

        assertThrows(FileNotFoundException.class, () -> locator(tmp.resolve("c")).locate(tmp.resolve("nowhere")));
    }

    @Test
    void aFailedConnectionSaysWhyInsteadOfNull() throws IOException {
        // nothing listens on port 1: the HTTP client's ConnectException has a null message
        IOException e = assertThrows(IOException.class, () -> locator(tmp.resolve("c"), URI.create("http://127.0.0.1:1/w.zip"))
                .locate(null));
        assertFalse(e.getMessage().contains(": null"), e.getMessage());
        assertTrue(e.getMessage().contains("http://127.0.0.1:1/w.zip: could not connect"), e.getMessage());
    }

    @Test
    void cacheRootResolution() {
        assertEquals(Path.of("/p/cache"), WikiText2.resolveCacheRoot("/p/cache", Map.of("XDG_CACHE_HOME", "/x"), "/home/u"));
        assertEquals(Path.of("/x/bitskip"), WikiText2.resolveCacheRoot(null, Map.of("XDG_CACHE_HOME", "/x"), "/home/u"));
        assertEquals(Path.of("/home/u/.cache/bitskip"),
                WikiText2.resolveCacheRoot(null, Map.of("XDG_CACHE_HOME", "relative"), "/home/u"));
        assertEquals(Path.of("/home/u/.cache/bitskip"), WikiText2.resolveCacheRoot(null, Map.of(), "/home/u"));
    }

    @Test
    void dataSourceOfFilesNamesTheMissingOne() throws IOException {
        Path train = Files.writeString(tmp.resolve("train.txt"), "text\n");
        FileNotFoundException e = assertThrows(FileNotFoundException.class,
                () -> DataSource.files(train, tmp.resolve("valid.txt")));
        assertEquals("--valid " + tmp.resolve("valid.txt") + " does not exist or is not a file", e.getMessage());
        assertEquals(train, DataSource.files(train, train).train());
    }

    private static List<String> listNames(Path dir) throws IOException {
        try (var s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }
}
