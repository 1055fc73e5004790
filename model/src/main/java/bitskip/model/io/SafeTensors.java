package bitskip.model.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A set of named tensors in the <a href="https://github.com/huggingface/safetensors">safetensors</a> format,
 * the checkpoint format of bitskip, so that checkpoints open in Python ({@code safetensors.numpy.load_file})
 * and Python checkpoints open here.
 *
 * <p>File layout: an 8-byte little-endian unsigned header length N; N bytes of UTF-8 JSON
 * {@code {"__metadata__": {string: string}, NAME: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}}};
 * then the data section, where each tensor's bytes are row-major little-endian at
 * {@code [begin, end)} relative to the start of the section. The tensors must tile the data section exactly
 * (no gaps, no overlaps, nothing after the last), which is what the reference (Rust) reader enforces too.
 *
 * <p>The writer produces the same bytes as the reference writer for the same tensor order: compact JSON with
 * {@code __metadata__} first, keys {@code dtype, shape, data_offsets} in that order, the header padded with
 * spaces to a multiple of 8 bytes. Tensors are written in insertion order (the reference writer sorts them by
 * dtype and then name; readers do not care, they look tensors up by name).
 *
 * <p>Supported dtypes: F32 ({@code float[]}), I32 ({@code int[]}), I64 ({@code long[]}), U8 ({@code byte[]}).
 * A file with any other dtype is refused as a whole, naming the tensor.
 *
 * <p>Arrays are not copied: the builder keeps the arrays it is given until it writes them, and
 * {@link #floats} etc. return the tensor's own storage. Copy before modifying one that is shared.
 */
public final class SafeTensors {

    /** Element types this class reads and writes, with their safetensors names and sizes. */
    public enum DType {
        F32(4), I32(4), I64(8), U8(1);

        public final int bytes;

        DType(int bytes) {
            this.bytes = bytes;
        }
    }

    /** dtypes of the format that bitskip does not read; a file with one is refused with a precise message. */
    private static final Set<String> OTHER_KNOWN_DTYPES = Set.of("BOOL", "I8", "I16", "U16", "F16", "BF16", "U32",
            "F64", "U64", "F8_E5M2", "F8_E4M3");

    /** The reference implementation refuses headers larger than this; so does this reader. */
    static final long MAX_HEADER_BYTES = 100_000_000L;

    private static final String METADATA_KEY = "__metadata__";
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Tensors are copied between the file and arrays through chunks of this size. */
    private static final int CHUNK_BYTES = 1 << 22;

    private record Tensor(DType dtype, int[] shape, Object data) {}

    private final String source;
    private final Map<String, Tensor> tensors;
    private final Map<String, String> metadata;

    private SafeTensors(String source, Map<String, Tensor> tensors, Map<String, String> metadata) {
        this.source = source;
        this.tensors = Collections.unmodifiableMap(tensors);
        this.metadata = Collections.unmodifiableMap(metadata);
    }

    public static Builder builder() {
        return new Builder();
    }

    // ------------------------------------------------------------------ queries

    /** Where the tensors came from: the file path, or {@code <in-memory safetensors>}. Used in messages. */
    public String source() {
        return source;
    }

    /** Tensor names, in file order (by data offset) or insertion order. */
    public Set<String> names() {
        return tensors.keySet();
    }

    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    public Map<String, String> metadata() {
        return metadata;
    }

    /** The metadata value for key, or throws naming the file and the key. */
    public String metadata(String key) {
        String v = metadata.get(key);
        if (v == null) {
            throw new IllegalArgumentException(source + " has no metadata entry \"" + key + "\" (it has "
                    + metadata.keySet() + ")");
        }
        return v;
    }

    public DType dtype(String name) {
        return tensor(name).dtype;
    }

    /** The tensor's shape (a copy). A scalar has shape {@code []}. */
    public int[] shape(String name) {
        return tensor(name).shape.clone();
    }

    /** Throws unless the tensor exists and has exactly this shape. */
    public void requireShape(String name, int... expected) {
        int[] actual = tensor(name).shape;
        if (!Arrays.equals(actual, expected)) {
            throw new IllegalArgumentException("tensor " + name + " in " + source + " has shape "
                    + Arrays.toString(actual) + ", expected " + Arrays.toString(expected));
        }
    }

    /** The F32 tensor's data (its own storage, not a copy). */
    public float[] floats(String name) {
        return (float[]) typed(name, DType.F32).data;
    }

    /** The F32 tensor's data, after checking its shape. */
    public float[] floats(String name, int... expectedShape) {
        requireShape(name, expectedShape);
        return floats(name);
    }

    public int[] ints(String name) {
        return (int[]) typed(name, DType.I32).data;
    }

    public int[] ints(String name, int... expectedShape) {
        requireShape(name, expectedShape);
        return ints(name);
    }

    public long[] longs(String name) {
        return (long[]) typed(name, DType.I64).data;
    }

    public byte[] bytes(String name) {
        return (byte[]) typed(name, DType.U8).data;
    }

    private Tensor tensor(String name) {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new IllegalArgumentException(source + " has no tensor " + name + nearby(name));
        }
        return t;
    }

    private Tensor typed(String name, DType expected) {
        Tensor t = tensor(name);
        if (t.dtype != expected) {
            throw new IllegalArgumentException("tensor " + name + " in " + source + " has dtype " + t.dtype
                    + ", expected " + expected);
        }
        return t;
    }

    /** A hint listing a few names, so a typo or a renamed parameter is easy to spot. */
    private String nearby(String name) {
        if (tensors.isEmpty()) {
            return " (it has no tensors)";
        }
        List<String> all = new ArrayList<>(tensors.keySet());
        int shown = Math.min(all.size(), 8);
        return " (it has " + all.size() + " tensors: " + String.join(", ", all.subList(0, shown))
                + (shown < all.size() ? ", ..." : "") + ")";
    }

    // ------------------------------------------------------------------ writing

    /** Writes these tensors to path atomically (see {@link AtomicFiles}). */
    public void write(Path path) throws IOException {
        byte[] header = headerBytes();
        AtomicFiles.writeChannel(path, channel -> {
            ByteBuffer prefix = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            prefix.putLong(header.length).flip();
            writeFully(channel, prefix);
            writeFully(channel, ByteBuffer.wrap(header));
            ByteBuffer chunk = ByteBuffer.allocate(CHUNK_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            for (Tensor t : tensors.values()) {
                writeData(channel, chunk, t);
            }
        });
    }

    /** The header JSON, padded with spaces to a multiple of 8 bytes as the reference writer does. */
    byte[] headerBytes() throws JsonProcessingException {
        ObjectNode root = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = root.putObject(METADATA_KEY);
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            Tensor t = e.getValue();
            long size = numel(t.shape) * t.dtype.bytes;
            ObjectNode info = root.putObject(e.getKey());
            info.put("dtype", t.dtype.name());
            ArrayNode shape = info.putArray("shape");
            for (int d : t.shape) {
                shape.add(d);
            }
            info.putArray("data_offsets").add(offset).add(offset + size);
            offset += size;
        }
        byte[] json = JSON.writeValueAsBytes(root);
        int padded = (json.length + 7) / 8 * 8;
        byte[] header = Arrays.copyOf(json, padded);
        Arrays.fill(header, json.length, padded, (byte) ' ');
        return header;
    }

    private static void writeData(FileChannel channel, ByteBuffer chunk, Tensor t) throws IOException {
        int n = Math.toIntExact(numel(t.shape));
        int perChunk = CHUNK_BYTES / t.dtype.bytes;
        for (int start = 0; start < n; start += perChunk) {
            int len = Math.min(perChunk, n - start);
            chunk.clear();
            switch (t.dtype) {
                case F32 -> chunk.asFloatBuffer().put((float[]) t.data, start, len);
                case I32 -> chunk.asIntBuffer().put((int[]) t.data, start, len);
                case I64 -> chunk.asLongBuffer().put((long[]) t.data, start, len);
                case U8 -> chunk.put((byte[]) t.data, start, len);
            }
            chunk.position(0).limit(len * t.dtype.bytes);
            writeFully(channel, chunk);
        }
    }

    private static void writeFully(FileChannel channel, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) {
            channel.write(buf);
        }
    }

    // ------------------------------------------------------------------ reading

    /**
     * Reads and validates a whole file. Every inconsistency is refused with an {@link IOException} that names
     * the file and the tensor or field at fault; nothing is returned from a file that is not fully valid.
     */
    public static SafeTensors read(Path path) throws IOException {
        String file = path.toString();
        if (Files.isDirectory(path)) {
            throw new IOException(file + " is a folder, not a safetensors file");
        }
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            long fileSize = channel.size();
            if (fileSize < 8) {
                throw new IOException(file + " is truncated: it has " + fileSize
                        + " bytes, but a safetensors file starts with an 8-byte header length");
            }
            ByteBuffer prefix = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(channel, prefix, 0, file);
            long headerLen = prefix.flip().getLong(); // unsigned; a negative value is simply huge
            if (headerLen < 0 || headerLen > fileSize - 8) {
                throw new IOException(file + ": header length " + Long.toUnsignedString(headerLen)
                        + " goes beyond the end of the file (" + fileSize + " bytes; truncated or not safetensors)");
            }
            if (headerLen > MAX_HEADER_BYTES) {
                throw new IOException(file + ": header length " + headerLen + " exceeds the format's limit of "
                        + MAX_HEADER_BYTES + " bytes");
            }
            ByteBuffer headerBuf = ByteBuffer.allocate((int) headerLen);
            readFully(channel, headerBuf, 8, file);
            long dataStart = 8 + headerLen;
            long dataLen = fileSize - dataStart;

            String headerText = decodeHeader(headerBuf.array(), file);
            Header header = parseHeader(headerText, file);
            validateLayout(header.entries, dataLen, file);

            Map<String, Tensor> tensors = new LinkedHashMap<>();
            ByteBuffer chunk = ByteBuffer.allocate(CHUNK_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            for (Entry e : header.entries) {
                Object data = readData(channel, chunk, dataStart + e.begin, e, file);
                tensors.put(e.name, new Tensor(e.dtype, e.shape, data));
            }
            return new SafeTensors(file, tensors, header.metadata);
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(file, null, "no such safetensors file");
        }
    }

    private record Entry(String name, DType dtype, int[] shape, long begin, long end) {}

    private record Header(List<Entry> entries, Map<String, String> metadata) {}

    private static String decodeHeader(byte[] bytes, String file) throws IOException {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new IOException(file + ": header is not valid UTF-8", e);
        }
    }

    private static Header parseHeader(String text, String file) throws IOException {
        if (!text.startsWith("{")) {
            throw new IOException(file + ": header does not start with '{' (not a safetensors file?)");
        }
        List<Entry> entries = new ArrayList<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        Set<String> seen = new HashSet<>();
        // A streaming parse: Jackson's tree model would silently keep only the last of two equal keys.
        try (JsonParser p = JSON.getFactory().createParser(text)) {
            p.nextToken(); // START_OBJECT
            JsonToken tok;
            while ((tok = p.nextToken()) == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                if (!seen.add(name)) {
                    throw new IOException(file + ": header lists "
                            + (METADATA_KEY.equals(name) ? "__metadata__" : "tensor " + name) + " twice");
                }
                p.nextToken();
                JsonNode value = p.readValueAsTree();
                if (METADATA_KEY.equals(name)) {
                    parseMetadata(value, metadata, file);
                } else {
                    entries.add(parseEntry(name, value, file));
                }
            }
            if (tok != JsonToken.END_OBJECT) {
                throw new IOException(file + ": header is not valid JSON: unexpected " + tok);
            }
            // Only padding may follow the object.
            if (p.nextToken() != null) {
                throw new IOException(file + ": header is not valid JSON: text after the closing '}'");
            }
        } catch (JsonProcessingException e) {
            throw new IOException(file + ": header is not valid JSON: " + e.getOriginalMessage(), e);
        }
        return new Header(entries, metadata);
    }

    private static void parseMetadata(JsonNode value, Map<String, String> out, String file) throws IOException {
        if (!value.isObject()) {
            throw new IOException(file + ": __metadata__ must be an object of strings, got " + value.getNodeType());
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = value.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            if (!f.getValue().isTextual()) {
                throw new IOException(file + ": __metadata__ entry \"" + f.getKey() + "\" must be a string, got "
                        + f.getValue().getNodeType());
            }
            out.put(f.getKey(), f.getValue().textValue());
        }
    }

    private static Entry parseEntry(String name, JsonNode v, String file) throws IOException {
        String where = "tensor " + name + " in " + file;
        if (!v.isObject()) {
            throw new IOException(where + ": header entry must be an object, got " + v.getNodeType());
        }
        JsonNode dtypeNode = v.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw new IOException(where + ": field \"dtype\" is missing or not a string");
        }
        String dtypeName = dtypeNode.textValue();
        DType dtype;
        try {
            dtype = DType.valueOf(dtypeName);
        } catch (IllegalArgumentException e) {
            throw new IOException(where + (OTHER_KNOWN_DTYPES.contains(dtypeName)
                    ? ": has dtype " + dtypeName + ", which bitskip does not read"
                    : ": has unknown dtype \"" + dtypeName + "\"")
                    + " (supported: " + Arrays.toString(DType.values()) + ")");
        }
        JsonNode shapeNode = v.get("shape");
        if (shapeNode == null || !shapeNode.isArray()) {
            throw new IOException(where + ": field \"shape\" is missing or not an array");
        }
        int[] shape = new int[shapeNode.size()];
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = shapeNode.get(i);
            if (!d.canConvertToInt() || !d.isIntegralNumber() || d.intValue() < 0) {
                throw new IOException(where + ": shape " + shapeNode + " has an invalid dimension " + d);
            }
            shape[i] = d.intValue();
        }
        JsonNode off = v.get("data_offsets");
        if (off == null || !off.isArray() || off.size() != 2 || !off.get(0).isIntegralNumber()
                || !off.get(1).isIntegralNumber() || !off.get(0).canConvertToLong() || !off.get(1).canConvertToLong()) {
            throw new IOException(where + ": field \"data_offsets\" must be [begin, end], got " + off);
        }
        long begin = off.get(0).longValue();
        long end = off.get(1).longValue();
        if (begin < 0 || end < begin) {
            throw new IOException(where + ": data_offsets " + off + " are not a valid range [begin <= end]");
        }
        long numel;
        try {
            numel = numelChecked(shape);
        } catch (ArithmeticException e) {
            throw new IOException(where + ": shape " + Arrays.toString(shape) + " has too many elements");
        }
        if (numel > Integer.MAX_VALUE) {
            throw new IOException(where + ": shape " + Arrays.toString(shape) + " has " + numel
                    + " elements, more than a Java array holds");
        }
        long expected = numel * dtype.bytes;
        if (end - begin != expected) {
            throw new IOException(where + ": data_offsets [" + begin + ", " + end + "] hold " + (end - begin)
                    + " bytes, but shape " + Arrays.toString(shape) + " of " + dtype + " needs " + expected);
        }
        return new Entry(name, dtype, shape, begin, end);
    }

    /** The tensors must tile [0, dataLen) exactly, as the reference reader requires. */
    private static void validateLayout(List<Entry> entries, long dataLen, String file) throws IOException {
        for (Entry e : entries) {
            if (e.end > dataLen) {
                throw new IOException("tensor " + e.name + " in " + file + ": data_offsets [" + e.begin + ", " + e.end
                        + "] go beyond the data section, which has " + dataLen + " bytes (truncated file?)");
            }
        }
        List<Entry> sorted = new ArrayList<>(entries);
        sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        long covered = 0;
        Entry previous = null;
        for (Entry e : sorted) {
            if (e.begin < covered) {
                throw new IOException("tensors " + previous.name + " and " + e.name + " in " + file
                        + " overlap: [" + previous.begin + ", " + previous.end + ") and [" + e.begin + ", " + e.end + ")");
            }
            if (e.begin > covered) {
                throw new IOException(file + ": bytes [" + covered + ", " + e.begin
                        + ") of the data section belong to no tensor (gap before tensor " + e.name + ")");
            }
            covered = e.end;
            // A zero-size tensor does not advance the cover; keep the last tensor that did as "previous".
            if (e.end > e.begin || previous == null) {
                previous = e;
            }
        }
        if (covered != dataLen) {
            throw new IOException(file + ": the data section has " + (dataLen - covered)
                    + " bytes after the last tensor that belong to no tensor");
        }
        // File order (by offset) is the natural order of names().
        entries.clear();
        entries.addAll(sorted);
    }

    private static Object readData(FileChannel channel, ByteBuffer chunk, long position, Entry e, String file)
            throws IOException {
        int n = (int) ((e.end - e.begin) / e.dtype.bytes);
        Object data = switch (e.dtype) {
            case F32 -> new float[n];
            case I32 -> new int[n];
            case I64 -> new long[n];
            case U8 -> new byte[n];
        };
        int perChunk = CHUNK_BYTES / e.dtype.bytes;
        for (int start = 0; start < n; start += perChunk) {
            int len = Math.min(perChunk, n - start);
            chunk.clear().limit(len * e.dtype.bytes);
            readFully(channel, chunk, position + (long) start * e.dtype.bytes, file);
            chunk.flip();
            switch (e.dtype) {
                case F32 -> chunk.asFloatBuffer().get((float[]) data, start, len);
                case I32 -> chunk.asIntBuffer().get((int[]) data, start, len);
                case I64 -> chunk.asLongBuffer().get((long[]) data, start, len);
                case U8 -> chunk.get((byte[]) data, start, len);
            }
        }
        return data;
    }

    private static void readFully(FileChannel channel, ByteBuffer buf, long position, String file) throws IOException {
        long pos = position;
        while (buf.hasRemaining()) {
            int r = channel.read(buf, pos);
            if (r < 0) {
                // The size was checked up front; this means the file shrank while being read.
                throw new IOException(file + " ended early at byte " + pos + " (was it modified while being read?)");
            }
            pos += r;
        }
    }

    private static long numel(int[] shape) {
        long n = 1;
        for (int d : shape) {
            n *= d;
        }
        return n;
    }

    private static long numelChecked(int[] shape) {
        long n = 1;
        for (int d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    // ------------------------------------------------------------------ builder

    /** Collects tensors (in insertion order) and string metadata, then writes or builds. */
    public static final class Builder {
        private final Map<String, Tensor> tensors = new LinkedHashMap<>();
        private final Map<String, String> metadata = new LinkedHashMap<>();

        private Builder() {}

        public Builder put(String name, int[] shape, float[] data) {
            return add(name, DType.F32, shape, data, data == null ? -1 : data.length);
        }

        public Builder putInts(String name, int[] shape, int[] data) {
            return add(name, DType.I32, shape, data, data == null ? -1 : data.length);
        }

        public Builder putLongs(String name, int[] shape, long[] data) {
            return add(name, DType.I64, shape, data, data == null ? -1 : data.length);
        }

        public Builder putBytes(String name, int[] shape, byte[] data) {
            return add(name, DType.U8, shape, data, data == null ? -1 : data.length);
        }

        public Builder metadata(String key, String value) {
            if (key == null || value == null) {
                throw new IllegalArgumentException("metadata key and value must not be null (key " + key + ")");
            }
            metadata.put(key, value);
            return this;
        }

        public SafeTensors build() {
            return new SafeTensors("<in-memory safetensors>", new LinkedHashMap<>(tensors),
                    new LinkedHashMap<>(metadata));
        }

        /** Writes the tensors added so far to path, atomically. */
        public void write(Path path) throws IOException {
            build().write(path);
        }

        private Builder add(String name, DType dtype, int[] shape, Object data, int length) {
            if (name == null || name.isEmpty()) {
                throw new IllegalArgumentException("tensor name must not be empty");
            }
            if (METADATA_KEY.equals(name)) {
                throw new IllegalArgumentException("tensor name " + METADATA_KEY + " is reserved by the format");
            }
            if (tensors.containsKey(name)) {
                throw new IllegalArgumentException("tensor " + name + " was already added");
            }
            if (data == null || shape == null) {
                throw new IllegalArgumentException("tensor " + name + ": data and shape must not be null");
            }
            for (int d : shape) {
                if (d < 0) {
                    throw new IllegalArgumentException("tensor " + name + ": shape " + Arrays.toString(shape)
                            + " has a negative dimension");
                }
            }
            long numel;
            try {
                numel = numelChecked(shape);
            } catch (ArithmeticException e) {
                numel = Long.MAX_VALUE;
            }
            if (numel != length) {
                throw new IllegalArgumentException("tensor " + name + ": shape " + Arrays.toString(shape) + " has "
                        + numel + " elements, but its " + dtype + " data has " + length);
            }
            tensors.put(name, new Tensor(dtype, shape.clone(), data));
            return this;
        }
    }
}
