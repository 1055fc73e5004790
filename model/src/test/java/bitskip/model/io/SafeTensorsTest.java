package bitskip.model.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafeTensorsTest {

    @TempDir
    Path dir;

    @Test
    void roundTripKeepsNamesShapesDataAndMetadata() throws IOException {
        float[] w = {1.5f, -2f, 0f, Float.MIN_VALUE, Float.MAX_VALUE, Float.NaN};
        int[] ids = {0, -1, Integer.MAX_VALUE, Integer.MIN_VALUE};
        long[] steps = {1L << 40, -7};
        byte[] packed = {(byte) 0xff, 0, 7};
        Path file = dir.resolve("ckpt.safetensors");
        SafeTensors.builder()
                .put("layers.0.attn.q_proj.weight", new int[] {2, 3}, w)
                .putInts("ids", new int[] {4}, ids)
                .putLongs("step", new int[] {2}, steps)
                .putBytes("packed", new int[] {3}, packed)
                .put("scalar", new int[] {}, new float[] {3f})
                .put("empty", new int[] {0, 5}, new float[0])
                .metadata("profile", "paper")
                .metadata("format", "bitskip-1")
                .write(file);

        SafeTensors st = SafeTensors.read(file);
        assertEquals(List.of("layers.0.attn.q_proj.weight", "ids", "step", "packed", "scalar", "empty"),
                List.copyOf(st.names()));
        assertArrayEquals(new int[] {2, 3}, st.shape("layers.0.attn.q_proj.weight"));
        assertArrayEquals(w, st.floats("layers.0.attn.q_proj.weight", 2, 3));
        assertArrayEquals(ids, st.ints("ids"));
        assertArrayEquals(steps, st.longs("step"));
        assertArrayEquals(packed, st.bytes("packed"));
        assertArrayEquals(new float[] {3f}, st.floats("scalar"));
        assertArrayEquals(new int[] {}, st.shape("scalar"));
        assertEquals(0, st.floats("empty").length);
        assertEquals(Map.of("profile", "paper", "format", "bitskip-1"), st.metadata());
        assertEquals(SafeTensors.DType.I64, st.dtype("step"));
    }

    @Test
    void largeTensorCrossesCopyChunks() throws IOException {
        float[] big = new float[3_000_001]; // > 4 MiB chunk in elements*4
        for (int i = 0; i < big.length; i++) {
            big[i] = i * 0.25f;
        }
        Path file = dir.resolve("big.safetensors");
        SafeTensors.builder().put("big", new int[] {big.length}, big).write(file);
        assertArrayEquals(big, SafeTensors.read(file).floats("big"));
    }

    /** The bytes a reference writer produces, built by hand from the format description. */
    @Test
    void writerIsByteExactWithTheSpecAndReaderReadsHandBuiltFile() throws IOException {
        String json = "{\"__metadata__\":{\"k\":\"v\"},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"I32\",\"shape\":[1,1],\"data_offsets\":[8,12]}}";
        byte[] jsonBytes = json.getBytes(StandardCharsets.UTF_8);
        int padded = (jsonBytes.length + 7) / 8 * 8; // the reference writer pads with spaces to 8 bytes
        ByteBuffer buf = ByteBuffer.allocate(8 + padded + 12).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(padded);
        buf.put(jsonBytes);
        for (int i = jsonBytes.length; i < padded; i++) {
            buf.put((byte) ' ');
        }
        buf.putFloat(1.0f).putFloat(-2.5f).putInt(42);
        byte[] expected = buf.array();

        Path written = dir.resolve("written.safetensors");
        SafeTensors.builder()
                .metadata("k", "v")
                .put("a", new int[] {2}, new float[] {1.0f, -2.5f})
                .putInts("b", new int[] {1, 1}, new int[] {42})
                .write(written);
        assertArrayEquals(expected, Files.readAllBytes(written));

        Path hand = dir.resolve("hand.safetensors");
        Files.write(hand, expected);
        SafeTensors st = SafeTensors.read(hand);
        assertArrayEquals(new float[] {1.0f, -2.5f}, st.floats("a"));
        assertArrayEquals(new int[] {42}, st.ints("b", 1, 1));
        assertEquals("v", st.metadata("k"));
    }

    @Test
    void readerAcceptsUnpaddedHeaderWithoutMetadataInAnyKeyOrder() throws IOException {
        // Offsets out of key order, no padding, extra whitespace: still valid.
        Path f = file("{ \"y\": {\"data_offsets\": [4, 8], \"shape\": [1], \"dtype\": \"F32\"},"
                + " \"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]} }", 8);
        SafeTensors st = SafeTensors.read(f);
        assertEquals(List.of("x", "y"), List.copyOf(st.names()));
        assertTrue(st.metadata().isEmpty());
    }

    @Test
    void helpersNameFileTensorAndShape() throws IOException {
        Path file = dir.resolve("m.safetensors");
        SafeTensors.builder().put("layers.0.attn.q_proj.weight", new int[] {32, 32}, new float[1024]).write(file);
        SafeTensors st = SafeTensors.read(file);
        String msg = assertThrows(IllegalArgumentException.class,
                () -> st.requireShape("layers.0.attn.q_proj.weight", 64, 32)).getMessage();
        assertEquals("tensor layers.0.attn.q_proj.weight in " + file + " has shape [32, 32], expected [64, 32]", msg);
        msg = assertThrows(IllegalArgumentException.class, () -> st.floats("lm_head.weight")).getMessage();
        assertTrue(msg.startsWith(file + " has no tensor lm_head.weight"), msg);
        msg = assertThrows(IllegalArgumentException.class, () -> st.ints("layers.0.attn.q_proj.weight")).getMessage();
        assertTrue(msg.contains("has dtype F32, expected I32"), msg);
        msg = assertThrows(IllegalArgumentException.class, () -> st.metadata("step")).getMessage();
        assertTrue(msg.contains("no metadata entry \"step\""), msg);
    }

    @Test
    void builderRefusesInconsistentTensors() {
        SafeTensors.Builder b = SafeTensors.builder().put("a", new int[] {2}, new float[2]);
        assertThrows(IllegalArgumentException.class, () -> b.put("a", new int[] {2}, new float[2]));
        String msg = assertThrows(IllegalArgumentException.class, () -> b.put("c", new int[] {2, 3}, new float[5]))
                .getMessage();
        assertTrue(msg.contains("tensor c: shape [2, 3] has 6 elements, but its F32 data has 5"), msg);
        assertThrows(IllegalArgumentException.class, () -> b.put("__metadata__", new int[] {1}, new float[1]));
    }

    // ---------------------------------------------------------------- corruption: each names file and fault

    @Test
    void refusesFileShorterThanHeaderLength() throws IOException {
        Path f = dir.resolve("short.safetensors");
        Files.write(f, new byte[] {1, 2, 3});
        assertMessage(f, "is truncated: it has 3 bytes");
    }

    @Test
    void refusesHeaderLengthBeyondFile() throws IOException {
        Path f = dir.resolve("len.safetensors");
        ByteBuffer b = ByteBuffer.allocate(10).order(ByteOrder.LITTLE_ENDIAN).putLong(1000).put((byte) '{').put((byte) '}');
        Files.write(f, b.array());
        assertMessage(f, "header length 1000 goes beyond the end of the file (10 bytes");
        ByteBuffer neg = ByteBuffer.allocate(10).order(ByteOrder.LITTLE_ENDIAN).putLong(-1L);
        Files.write(f, neg.array());
        assertMessage(f, "header length 18446744073709551615 goes beyond");
    }

    @Test
    void refusesBadJson() throws IOException {
        assertMessage(file("{\"a\": {\"dtype\": \"F32\",", 0), "header is not valid JSON");
        assertMessage(file("[1, 2]", 0), "header does not start with '{'");
        assertMessage(file("{} {}", 0), "header is not valid JSON: text after");
    }

    @Test
    void refusesNonUtf8Header() throws IOException {
        Path f = dir.resolve("utf.safetensors");
        ByteBuffer b = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putLong(4)
                .put((byte) '{').put((byte) 0xff).put((byte) 0xfe).put((byte) '}');
        Files.write(f, b.array());
        assertMessage(f, "header is not valid UTF-8");
    }

    @Test
    void refusesUnknownAndUnsupportedDtype() throws IOException {
        assertMessage(file("{\"w\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                "tensor w in ", "has unknown dtype \"F33\"");
        assertMessage(file("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4),
                "tensor w in ", "has dtype BF16, which bitskip does not read");
    }

    @Test
    void refusesMissingOrMalformedFields() throws IOException {
        assertMessage(file("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "tensor w in ", "\"dtype\" is missing");
        assertMessage(file("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4), "tensor w in ", "\"shape\"");
        assertMessage(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4),
                "tensor w in ", "invalid dimension -1");
        assertMessage(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4),
                "tensor w in ", "\"data_offsets\" must be [begin, end]");
        assertMessage(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4),
                "tensor w in ", "not a valid range");
        assertMessage(file("{\"__metadata__\":{\"k\":1}}", 0), "__metadata__ entry \"k\" must be a string");
    }

    @Test
    void refusesOffsetsNotMatchingShape() throws IOException {
        assertMessage(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 12),
                "tensor w in ", "data_offsets [0, 12] hold 12 bytes, but shape [2, 2] of F32 needs 16");
    }

    @Test
    void refusesOffsetsOutOfRange() throws IOException {
        // As a file truncated in its data section looks.
        assertMessage(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 10),
                "tensor w in ", "go beyond the data section, which has 10 bytes");
    }

    @Test
    void refusesOverlapGapAndTrailingBytes() throws IOException {
        assertMessage(file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "tensors a and b in ", "overlap");
        assertMessage(file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12),
                "bytes [4, 8) of the data section belong to no tensor (gap before tensor b)");
        assertMessage(file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 6),
                "2 bytes after the last tensor");
    }

    @Test
    void refusesDuplicateNames() throws IOException {
        assertMessage(file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "header lists tensor a twice");
    }

    @Test
    void missingFileNamesThePath() {
        Path f = dir.resolve("nope.safetensors");
        IOException e = assertThrows(IOException.class, () -> SafeTensors.read(f));
        assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
    }

    // ---------------------------------------------------------------- atomic writes

    @Test
    void atomicWriteLeavesNoTempFile() throws IOException {
        Path f = dir.resolve("a.safetensors");
        SafeTensors.builder().put("x", new int[] {1}, new float[] {1}).write(f);
        SafeTensors.builder().put("x", new int[] {1}, new float[] {2}).write(f); // replaces
        assertEquals(List.of(f), listDir());
        assertArrayEquals(new float[] {2}, SafeTensors.read(f).floats("x"));
    }

    @Test
    void failedWriteKeepsOldFileAndRemovesTemp() throws IOException {
        Path f = dir.resolve("keep.bin");
        AtomicFiles.write(f, "old".getBytes(StandardCharsets.UTF_8));
        IOException e = assertThrows(IOException.class, () -> AtomicFiles.write(f, out -> {
            out.write(new byte[100_000]); // more than the buffer: part of it reaches the temporary file
            throw new IOException("disk on fire");
        }));
        assertEquals("disk on fire", e.getMessage());
        assertEquals("old", Files.readString(f));
        assertEquals(List.of(f), listDir());

        assertThrows(IllegalStateException.class, () -> AtomicFiles.writeChannel(f, ch -> {
            throw new IllegalStateException("bug in writer");
        }));
        assertEquals("old", Files.readString(f));
        assertEquals(List.of(f), listDir());
    }

    @Test
    void atomicWriteCreatesFoldersAndToleratesClosedStream() throws IOException {
        Path f = dir.resolve("sub/dir/x.txt");
        AtomicFiles.write(f, out -> {
            out.write("hello".getBytes(StandardCharsets.UTF_8));
            out.close();
        });
        assertEquals("hello", Files.readString(f));
    }

    // ---------------------------------------------------------------- helpers

    private List<Path> listDir() throws IOException {
        try (var s = Files.list(dir)) {
            return s.sorted().toList();
        }
    }

    /** A file with the given header (unpadded) and dataBytes zero bytes of data. */
    private Path file(String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).array());
        out.writeBytes(h);
        out.writeBytes(new byte[dataBytes]);
        Path f = Files.createTempFile(dir, "case", ".safetensors");
        Files.write(f, out.toByteArray());
        return f;
    }

    private static void assertMessage(Path f, String... parts) {
        IOException e = assertThrows(IOException.class, () -> SafeTensors.read(f));
        String msg = e.getMessage();
        assertTrue(msg.contains(f.toString()), "message does not name the file: " + msg);
        for (String p : parts) {
            assertTrue(msg.contains(p), "message lacks \"" + p + "\": " + msg);
        }
    }
}
