package bitskip.model.data;

import bitskip.model.io.AtomicFiles;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.function.Consumer;

/**
 * The token ids of one text file, tokenized once and cached in a small binary file.
 *
 * <p>Tokenization follows the spec's {@code reference} convention (section 5): each line is encoded on its
 * own, keeping its trailing newline, and the ids are concatenated ({@link Tokenizer#encodeLines}). The file
 * must be strict UTF-8 (a leading byte-order mark is dropped); anything else is refused, naming the byte offset.
 *
 * <p>Cache file, all little-endian (version 1):
 * <pre>
 *   offset  size  field
 *        0     4  magic "BSTK"
 *        4     4  version = 1  (implies the line-by-line convention above)
 *        8     8  count: number of token ids
 *       16    32  sha256 of the source file's bytes
 *       48     4  length L of the tokenizer name
 *       52     L  tokenizer name, UTF-8 (e.g. r50k_base)
 *     52+L  4*count  token ids, int32
 * </pre>
 * The cache is reused when its source hash and tokenizer name match the current file and tokenizer, and
 * rebuilt (atomically) otherwise, including when it is damaged. Default location:
 * {@code DIR/NAME.TOKENIZER.tokens}, with DIR the {@code --out} folder or {@code CACHE/tokens}.
 */
public final class TokenFile {
    static final int MAGIC = 0x4B545342; // "BSTK" read as a little-endian int
    static final int VERSION = 1;
    private static final int FIXED_HEADER = 52;
    private static final int MAX_NAME = 256;

    private final Path source;
    private final Path cacheFile;
    private final String sourceSha256;
    private final String tokenizerName;
    private final int[] ids;
    private final boolean reused;

    private TokenFile(Path source, Path cacheFile, String sourceSha256, String tokenizerName, int[] ids,
                      boolean reused) {
        this.source = source;
        this.cacheFile = cacheFile;
        this.sourceSha256 = sourceSha256;
        this.tokenizerName = tokenizerName;
        this.ids = ids;
        this.reused = reused;
    }

    /** The default cache file of source: {@code outDir/NAME.TOKENIZER.tokens}, or under {@code CACHE/tokens}. */
    public static Path defaultCacheFile(Path source, Path outDir, Tokenizer tokenizer) {
        Path dir = outDir != null ? outDir : WikiText2.defaultCacheRoot().resolve("tokens");
        return dir.resolve(source.getFileName() + "." + tokenizer.name() + ".tokens");
    }

    /**
     * {@link #load(Path, Path, Tokenizer, Consumer)} with the cache file {@link #defaultCacheFile} under outDir
     * (null: {@code CACHE/tokens}), logging to stderr.
     */
    public static TokenFile loadInto(Path source, Path outDir, Tokenizer tokenizer) throws IOException {
        return load(source, defaultCacheFile(source, outDir, tokenizer), tokenizer, System.err::println);
    }

    /**
     * The ids of source: from cacheFile when it matches, else tokenized now and written to cacheFile.
     * log receives one line saying which happened and why.
     */
    public static TokenFile load(Path source, Path cacheFile, Tokenizer tokenizer,
                                 Consumer<String> log) throws IOException {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(source);
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(source.toString(), null, "text file to tokenize does not exist");
        }
        if (bytes.length == 0) {
            throw new IOException(source + " is empty (0 bytes): there is no text to tokenize");
        }
        String sha = Sha256.hex(bytes);

        String why;
        if (Files.isRegularFile(cacheFile)) {
            try {
                TokenFile cached = read(cacheFile);
                if (!cached.sourceSha256.equals(sha)) {
                    why = "its source hash differs (the text changed)";
                } else if (!cached.tokenizerName.equals(tokenizer.name())) {
                    why = "it was made with tokenizer " + cached.tokenizerName;
                } else {
                    log.accept("reusing " + cacheFile + " (" + cached.ids.length + " tokens of " + source + ")");
                    return new TokenFile(source, cacheFile, sha, cached.tokenizerName, cached.ids, true);
                }
            } catch (IOException e) {
                why = "it is unreadable: " + bitskip.model.io.IoErrors.describe(e);
            }
            why = "rebuilding " + cacheFile + " because " + why;
        } else {
            why = "tokenizing " + source + " into " + cacheFile;
        }
        log.accept(why);

        String text = decodeStrictUtf8(bytes, source);
        if (!text.isEmpty() && text.charAt(0) == '\uFEFF') {
            text = text.substring(1); // a byte-order mark is an encoding marker, not text
        }
        int[] ids = tokenizer.encodeLines(text);
        if (ids.length == 0) {
            throw new IOException(source + " has no text to tokenize (0 tokens)");
        }
        write(cacheFile, sha, tokenizer.name(), ids);
        return new TokenFile(source, cacheFile, sha, tokenizer.name(), ids, false);
    }

    /** Reads and validates a cache file (without checking it against any source). */
    public static TokenFile read(Path cacheFile) throws IOException {
        byte[] all = Files.readAllBytes(cacheFile);
        ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        if (all.length < FIXED_HEADER) {
            throw new IOException(cacheFile + " is truncated: " + all.length + " bytes, the header alone has "
                    + FIXED_HEADER);
        }
        int magic = b.getInt();
        if (magic != MAGIC) {
            throw new IOException(cacheFile + " is not a bitskip token file (bad magic 0x"
                    + Integer.toHexString(magic) + ")");
        }
        int version = b.getInt();
        if (version != VERSION) {
            throw new IOException(cacheFile + " has format version " + version + ", this build reads " + VERSION);
        }
        long count = b.getLong();
        byte[] sha = new byte[32];
        b.get(sha);
        int nameLen = b.getInt();
        if (nameLen < 0 || nameLen > MAX_NAME || nameLen > b.remaining()) {
            throw new IOException(cacheFile + " has a bad tokenizer-name length " + nameLen);
        }
        byte[] name = new byte[nameLen];
        b.get(name);
        if (count < 0 || count * 4 != b.remaining()) {
            throw new IOException(cacheFile + " says it holds " + count + " tokens but has " + b.remaining()
                    + " bytes of ids (truncated?)");
        }
        int[] ids = new int[(int) count];
        b.asIntBuffer().get(ids);
        return new TokenFile(null, cacheFile, HexFormat.of().formatHex(sha), new String(name, StandardCharsets.UTF_8),
                ids, true);
    }

    static void write(Path cacheFile, String sourceSha256, String tokenizerName, int[] ids) throws IOException {
        byte[] name = tokenizerName.getBytes(StandardCharsets.UTF_8);
        ByteBuffer header = ByteBuffer.allocate(FIXED_HEADER + name.length).order(ByteOrder.LITTLE_ENDIAN);
        header.putInt(MAGIC).putInt(VERSION).putLong(ids.length).put(HexFormat.of().parseHex(sourceSha256))
                .putInt(name.length).put(name);
        AtomicFiles.write(cacheFile, out -> {
            out.write(header.array());
            ByteBuffer chunk = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
            for (int start = 0; start < ids.length; start += chunk.capacity() / 4) {
                int len = Math.min(chunk.capacity() / 4, ids.length - start);
                chunk.clear();
                chunk.asIntBuffer().put(ids, start, len);
                out.write(chunk.array(), 0, len * 4);
            }
        });
    }

    /**
     * Decodes UTF-8 strictly: malformed or truncated sequences are refused with the byte offset and line,
     * instead of being silently replaced by U+FFFD (which would train on text that is not in the file).
     */
    static String decodeStrictUtf8(byte[] bytes, Path source) throws IOException {
        CharsetDecoder dec = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length); // UTF-8 never yields more UTF-16 units than bytes
        CoderResult r = dec.decode(in, out, true);
        if (!r.isError()) {
            r = dec.flush(out);
        }
        if (r.isError()) {
            int offset = in.position();
            int line = 1;
            for (int i = 0; i < offset; i++) {
                if (bytes[i] == '\n') {
                    line++;
                }
            }
            byte[] bad = Arrays.copyOfRange(bytes, offset, Math.min(bytes.length, offset + Math.max(1, r.length())));
            throw new IOException(source + " is not valid UTF-8: bad byte(s) " + HexFormat.ofDelimiter(" ").formatHex(bad)
                    + " at byte offset " + offset + " (line " + line + ")");
        }
        return out.flip().toString();
    }

    public Path source() {
        return source;
    }

    public Path cacheFile() {
        return cacheFile;
    }

    /** The token ids (the cached array itself; do not modify). */
    public int[] ids() {
        return ids;
    }

    public int count() {
        return ids.length;
    }

    public String sourceSha256() {
        return sourceSha256;
    }

    public String tokenizerName() {
        return tokenizerName;
    }

    /** Whether the ids came from an existing cache file rather than a fresh tokenization. */
    public boolean reused() {
        return reused;
    }
}
