package bitskip.model.data;

import bitskip.model.io.AtomicFiles;
import bitskip.model.io.IoErrors;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;

/**
 * The three raw splits of WikiText-2 ({@code wikitext-2-raw-v1}) in one folder, each checked against its
 * published SHA-256.
 *
 * <p>Where the folder comes from, first match wins:
 * <ol>
 *   <li>an explicit folder (the command line's {@code --data DIR});</li>
 *   <li>the environment variable {@value #ENV_DATA};</li>
 *   <li>the cache {@code CACHE/wikitext-2-raw/}, where CACHE is the system property {@value #PROP_CACHE},
 *       else {@code $XDG_CACHE_HOME/bitskip}, else {@code ~/.cache/bitskip}. Missing or corrupt files are
 *       downloaded there from {@link #DEFAULT_SOURCES}, verified, and only then renamed into place.</li>
 * </ol>
 * An explicit or environment folder must hold all three files with the right hashes (the numbers this project
 * reports are only comparable on exactly these bytes); use {@link DataSource#files} for any other text.
 */
public final class WikiText2 {

    /** The splits and their checksums. */
    public enum Split {
        // SHA-256 of each file, from shared/data/wikitext-2-raw/README.md (the copy this project was built on,
        // which matches the published line, word-token and Hugging Face byte counts of wikitext-2-raw-v1).
        TRAIN("wiki.train.raw", "6707892fa3788b5ab9ed78ab5ff37d9fe825f6011a2ad4fcd6a6d467f0e7da57"),
        VALID("wiki.valid.raw", "4cd0f6876d07a413aa911261ff6d363c72d757d47f0fdd6015702014c89cb9c7"),
        TEST("wiki.test.raw", "173c87a53759e0201f33e0ccf978e510c2042d7f2cb78229d9a50d79b9e7dd08");

        private final String fileName;
        private final String sha256;

        Split(String fileName, String sha256) {
            this.fileName = fileName;
            this.sha256 = sha256;
        }

        public String fileName() {
            return fileName;
        }

        public String sha256() {
            return sha256;
        }
    }

    /**
     * Download locations, tried in order, from shared/data/wikitext-2-raw/README.md. Both are zips holding
     * {@code wikitext-2-raw/wiki.{train,valid,test}.raw}: the author-hosted mirror, and the copy llama.cpp's
     * CI uses. (The original S3 URL answers 403 now.) A URI not ending in {@code .zip} is taken as a folder
     * holding the three files.
     */
    public static final List<URI> DEFAULT_SOURCES = List.of(
            URI.create("https://wikitext.smerity.com/wikitext-2-raw-v1.zip"),
            URI.create("https://huggingface.co/datasets/ggml-org/ci/resolve/main/wikitext-2-raw-v1.zip"));

    public static final String ENV_DATA = "BITSKIP_DATA";
    public static final String PROP_CACHE = "bitskip.cache";
    /** The folder under the cache root that holds the splits. */
    public static final String CACHE_SUBDIR = "wikitext-2-raw";

    private final Path dir;

    private WikiText2(Path dir) {
        this.dir = dir;
    }

    /** Locates (and if needed downloads) the splits with the default settings; dataDir may be null. */
    public static WikiText2 locate(Path dataDir) throws IOException {
        return new Locator().locate(dataDir);
    }

    public Path dir() {
        return dir;
    }

    public Path file(Split split) {
        return dir.resolve(split.fileName());
    }

    /**
     * bitskip's cache root: the system property {@value #PROP_CACHE}, else {@code $XDG_CACHE_HOME/bitskip},
     * else {@code ~/.cache/bitskip}.
     */
    public static Path defaultCacheRoot() {
        return resolveCacheRoot(System.getProperty(PROP_CACHE), System.getenv(), System.getProperty("user.home"));
    }

    static Path resolveCacheRoot(String property, Map<String, String> env, String userHome) {
        if (property != null && !property.isBlank()) {
            return Path.of(property);
        }
        String xdg = env.get("XDG_CACHE_HOME");
        // The XDG spec says a relative value is invalid and must be ignored.
        if (xdg != null && !xdg.isBlank() && Path.of(xdg).isAbsolute()) {
            return Path.of(xdg, "bitskip");
        }
        return Path.of(userHome, ".cache", "bitskip");
    }

    /** Finds or downloads the splits. Every setting can be replaced, which the tests do. */
    public static final class Locator {
        private Map<String, String> env = System.getenv();
        private Path cacheRoot;
        private List<URI> sources = DEFAULT_SOURCES;
        private Map<Split, String> checksums = defaultChecksums();
        private Consumer<String> log = System.err::println;
        private Duration timeout = Duration.ofSeconds(60);

        public Locator env(Map<String, String> env) {
            this.env = Map.copyOf(env);
            return this;
        }

        public Locator cacheRoot(Path cacheRoot) {
            this.cacheRoot = cacheRoot;
            return this;
        }

        public Locator sources(List<URI> sources) {
            this.sources = List.copyOf(sources);
            return this;
        }

        public Locator checksums(Map<Split, String> checksums) {
            if (!checksums.keySet().equals(EnumSet.allOf(Split.class))) {
                throw new IllegalArgumentException("checksums must cover every split, got " + checksums.keySet());
            }
            this.checksums = new EnumMap<>(checksums);
            return this;
        }

        public Locator log(Consumer<String> log) {
            this.log = log;
            return this;
        }

        public Locator timeout(Duration timeout) {
            this.timeout = timeout;
            return this;
        }

        /** The folder the cache uses: CACHE_ROOT/wikitext-2-raw. */
        public Path cacheDir() {
            Path root = cacheRoot != null ? cacheRoot
                    : resolveCacheRoot(System.getProperty(PROP_CACHE), env, System.getProperty("user.home"));
            return root.resolve(CACHE_SUBDIR);
        }

        public WikiText2 locate(Path dataDir) throws IOException {
            if (dataDir != null) {
                return verifiedFolder(dataDir, "--data " + dataDir);
            }
            String fromEnv = env.get(ENV_DATA);
            if (fromEnv != null && !fromEnv.isBlank()) {
                return verifiedFolder(Path.of(fromEnv), ENV_DATA + "=" + fromEnv);
            }
            return cached();
        }

        private WikiText2 verifiedFolder(Path dir, String origin) throws IOException {
            if (!Files.isDirectory(dir)) {
                throw new FileNotFoundException("WikiText-2 folder " + dir + " (from " + origin
                        + ") does not exist or is not a folder");
            }
            for (Split s : Split.values()) {
                Path f = dir.resolve(s.fileName());
                if (!Files.isRegularFile(f)) {
                    throw new FileNotFoundException("WikiText-2 folder " + dir + " (from " + origin + ") has no "
                            + s.fileName() + "; it needs wiki.train.raw, wiki.valid.raw and wiki.test.raw"
                            + " (the raw variant, wikitext-2-raw-v1)");
                }
                String actual = Sha256.hex(f);
                if (!actual.equals(checksums.get(s))) {
                    throw new IOException(f + " (from " + origin + ") has sha256 " + actual + ", expected "
                            + checksums.get(s) + "; it is not the wikitext-2-raw-v1 " + s.fileName()
                            + " (for other text, give the files as --train FILE --valid FILE)");
                }
            }
            return new WikiText2(dir);
        }

        private WikiText2 cached() throws IOException {
            Path dir = cacheDir();
            Set<Split> needed = EnumSet.noneOf(Split.class);
            for (Split s : Split.values()) {
                Path f = dir.resolve(s.fileName());
                if (!Files.isRegularFile(f)) {
                    needed.add(s);
                } else if (!Sha256.hex(f).equals(checksums.get(s))) {
                    log.accept("cached " + f + " does not match its sha256; downloading it again");
                    needed.add(s);
                }
            }
            if (needed.isEmpty()) {
                return new WikiText2(dir);
            }
            log.accept("WikiText-2 raw is not in " + dir + "; downloading " + names(needed));
            List<String> failures = new ArrayList<>();
            for (URI source : sources) {
                try {
                    download(source, dir, needed);
                    if (needed.isEmpty()) {
                        return new WikiText2(dir);
                    }
                } catch (IOException e) {
                    failures.add(source + ": " + IoErrors.describe(e));
                    log.accept("could not get WikiText-2 from " + source + ": " + IoErrors.describe(e));
                }
            }
            throw new IOException("could not download " + names(needed) + " of WikiText-2 raw into " + dir + ":\n  "
                    + String.join("\n  ", failures)
                    + "\nDownload wikitext-2-raw-v1.zip yourself, unzip it, and pass --data DIR or set "
                    + ENV_DATA + "=DIR");
        }

        /** Fetches what source offers of the needed splits; each one verified is removed from needed. */
        private void download(URI source, Path dir, Set<Split> needed) throws IOException {
            if (source.getPath() != null && source.getPath().endsWith(".zip")) {
                try (InputStream raw = open(source); ZipInputStream zip = new ZipInputStream(raw)) {
                    ZipEntry entry;
                    while (!needed.isEmpty() && (entry = zip.getNextEntry()) != null) {
                        // Only the base name is used, and only to pick one of our fixed file names: a
                        // hostile entry name cannot write outside the cache folder.
                        String base = entry.getName().substring(entry.getName().lastIndexOf('/') + 1);
                        for (Split s : needed) {
                            if (!entry.isDirectory() && base.equals(s.fileName())) {
                                saveVerified(zip, dir, s, source + "!" + entry.getName());
                                needed.remove(s);
                                break;
                            }
                        }
                    }
                }
                if (!needed.isEmpty()) {
                    throw new IOException("the zip has no entry " + names(needed));
                }
            } else {
                String base = source.toString().endsWith("/") ? source.toString() : source + "/";
                for (Split s : List.copyOf(needed)) {
                    URI uri = URI.create(base + s.fileName());
                    try (InputStream in = open(uri)) {
                        saveVerified(in, dir, s, uri.toString());
                    }
                    needed.remove(s);
                }
            }
        }

        /**
         * Copies in to dir/NAME through a temporary file, hashing on the way; the rename only happens when the
         * hash matches, otherwise the temporary file is deleted and the mismatch reported.
         */
        private void saveVerified(InputStream in, Path dir, Split s, String from) throws IOException {
            String expected = checksums.get(s);
            Path target = dir.resolve(s.fileName());
            AtomicFiles.write(target, out -> {
                MessageDigest md = Sha256.newDigest();
                long n = copy(in, out, md);
                String actual = HexFormat.of().formatHex(md.digest());
                if (!actual.equals(expected)) {
                    throw new IOException(s.fileName() + " downloaded from " + from + " (" + n + " bytes) has sha256 "
                            + actual + ", expected " + expected + "; it was discarded");
                }
            });
            log.accept("saved " + target + " (sha256 verified)");
        }

        private static long copy(InputStream in, OutputStream out, MessageDigest md) throws IOException {
            byte[] buf = new byte[1 << 16];
            long total = 0;
            int n;
            while ((n = in.read(buf)) > 0) {
                md.update(buf, 0, n);
                out.write(buf, 0, n);
                total += n;
            }
            return total;
        }

        private InputStream open(URI uri) throws IOException {
            String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase();
            if (!scheme.equals("http") && !scheme.equals("https")) {
                return uri.toURL().openStream(); // file: URIs, for a zip already on disk
            }
            HttpClient client = HttpClient.newBuilder()
                    .followRedirects(HttpClient.Redirect.NORMAL)
                    .connectTimeout(timeout)
                    .build();
            HttpRequest request = HttpRequest.newBuilder(uri).timeout(timeout).GET().build();
            HttpResponse<InputStream> response;
            try {
                response = client.send(request, HttpResponse.BodyHandlers.ofInputStream());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while connecting to " + uri, e);
            }
            if (response.statusCode() != 200) {
                response.body().close();
                throw new IOException("GET " + uri + " answered HTTP " + response.statusCode());
            }
            return response.body();
        }

        private static Map<Split, String> defaultChecksums() {
            Map<Split, String> m = new EnumMap<>(Split.class);
            for (Split s : Split.values()) {
                m.put(s, s.sha256());
            }
            return m;
        }

        private static String names(Set<Split> splits) {
            List<String> n = new ArrayList<>();
            for (Split s : splits) {
                n.add(s.fileName());
            }
            return String.join(", ", n);
        }
    }
}
