package bitskip.model.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TokenFileTest {
    @TempDir
    Path dir;

    private final Tokenizer tok = Tokenizer.gpt2();
    private final List<String> log = new ArrayList<>();

    private static final String TEXT = " = Heading = \n \n The quick brown fox jumps over the lazy dog . \n"
            + " It was 1 @,@ 000 metres high ( 3 @,@ 300 ft ) . \n";

    @Test
    void tokenizesOnceThenReusesCache() throws IOException {
        Path src = write("train.txt", TEXT);
        Path cache = dir.resolve("out/train.txt.r50k_base.tokens");
        TokenFile first = TokenFile.load(src, cache, tok, log::add);
        assertFalse(first.reused());
        assertArrayEquals(tok.encodeLines(TEXT), first.ids());
        assertEquals(Sha256.hex(TEXT.getBytes(StandardCharsets.UTF_8)), first.sourceSha256());
        assertTrue(Files.isRegularFile(cache));

        TokenFile second = TokenFile.load(src, cache, tok, log::add);
        assertTrue(second.reused());
        assertArrayEquals(first.ids(), second.ids());
        assertTrue(log.get(1).startsWith("reusing " + cache), log.toString());
    }

    @Test
    void defaultCacheFileIsUnderOut() throws IOException {
        Path src = write("valid.txt", TEXT);
        TokenFile t = TokenFile.loadInto(src, dir.resolve("run"), tok);
        assertEquals(dir.resolve("run/valid.txt.r50k_base.tokens"), t.cacheFile());
    }

    @Test
    void cacheLayoutIsAsDocumented() throws IOException {
        Path src = write("t.txt", TEXT);
        Path cache = dir.resolve("t.tokens");
        TokenFile t = TokenFile.load(src, cache, tok, log::add);
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(cache)).order(ByteOrder.LITTLE_ENDIAN);
        byte[] magic = new byte[4];
        b.get(magic);
        assertEquals("BSTK", new String(magic, StandardCharsets.US_ASCII));
        assertEquals(1, b.getInt());
        assertEquals(t.count(), b.getLong());
        byte[] sha = new byte[32];
        b.get(sha);
        assertEquals(t.sourceSha256(), java.util.HexFormat.of().formatHex(sha));
        int len = b.getInt();
        byte[] name = new byte[len];
        b.get(name);
        assertEquals("r50k_base", new String(name, StandardCharsets.UTF_8));
        assertEquals(4L * t.count(), b.remaining());
        assertEquals(t.ids()[0], b.getInt());
    }

    @Test
    void rebuildsWhenSourceChangesOrCacheIsDamaged() throws IOException {
        Path src = write("train.txt", TEXT);
        Path cache = dir.resolve("c.tokens");
        TokenFile.load(src, cache, tok, log::add);
        write("train.txt", TEXT + " more text . \n");
        TokenFile changed = TokenFile.load(src, cache, tok, log::add);
        assertFalse(changed.reused());
        assertTrue(log.get(1).contains("source hash differs"), log.toString());
        assertArrayEquals(tok.encodeLines(TEXT + " more text . \n"), changed.ids());

        byte[] bytes = Files.readAllBytes(cache);
        Files.write(cache, java.util.Arrays.copyOf(bytes, bytes.length - 3)); // truncated
        TokenFile repaired = TokenFile.load(src, cache, tok, log::add);
        assertFalse(repaired.reused());
        assertTrue(log.get(2).contains("unreadable") && log.get(2).contains("truncated"), log.toString());
        assertTrue(TokenFile.load(src, cache, tok, log::add).reused());

        Files.write(cache, "garbage that is long enough to hold a full header, but bad magic".getBytes());
        assertFalse(TokenFile.load(src, cache, tok, log::add).reused());
        assertTrue(log.get(4).contains("bad magic"), log.toString());
    }

    @Test
    void refusesNonUtf8NamingFileOffsetAndLine() throws IOException {
        Path src = dir.resolve("latin1.txt");
        byte[] text = "ok line\ncaf\u00e9\n".getBytes(StandardCharsets.ISO_8859_1); // é is 0xE9 alone
        Files.write(src, text);
        IOException e = assertThrows(IOException.class, () -> TokenFile.load(src, dir.resolve("x.tokens"), tok, log::add));
        assertEquals(src + " is not valid UTF-8: bad byte(s) e9 at byte offset 11 (line 2)", e.getMessage());
        assertFalse(Files.exists(dir.resolve("x.tokens")));
    }

    @Test
    void refusesTruncatedUtf8AtEnd() throws IOException {
        Path src = dir.resolve("cut.txt");
        byte[] full = "ab\u20ac".getBytes(StandardCharsets.UTF_8); // € is 3 bytes
        Files.write(src, java.util.Arrays.copyOf(full, full.length - 1));
        IOException e = assertThrows(IOException.class, () -> TokenFile.load(src, dir.resolve("x.tokens"), tok, log::add));
        assertTrue(e.getMessage().contains("at byte offset 2 (line 1)"), e.getMessage());
    }

    @Test
    void refusesEmptyFile() throws IOException {
        Path src = write("empty.txt", "");
        IOException e = assertThrows(IOException.class, () -> TokenFile.load(src, dir.resolve("x.tokens"), tok, log::add));
        assertEquals(src + " is empty (0 bytes): there is no text to tokenize", e.getMessage());
    }

    @Test
    void dropsByteOrderMark() throws IOException {
        Path src = write("bom.txt", "\uFEFFHello world");
        assertArrayEquals(new int[] {15496, 995}, TokenFile.load(src, dir.resolve("b.tokens"), tok, log::add).ids());
    }

    private Path write(String name, String text) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, text, StandardCharsets.UTF_8);
        return p;
    }
}
