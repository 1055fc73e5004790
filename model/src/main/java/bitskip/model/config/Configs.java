package bitskip.model.config;

import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.cfg.CoercionAction;
import com.fasterxml.jackson.databind.cfg.CoercionInputShape;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.type.LogicalType;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.lang.reflect.RecordComponent;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The JSON form of {@link BitSkipConfig} and field-by-field overrides of it. */
public final class Configs {
    public static final ObjectMapper JSON = strict(JsonMapper.builder()
            .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
            .enable(DeserializationFeature.FAIL_ON_MISSING_CREATOR_PROPERTIES)
            // a key given twice is an error, not "the last one wins"
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build());

    /** Integers are integers (not 2.5 or "2"), booleans booleans, strings strings. */
    private static ObjectMapper strict(ObjectMapper m) {
        m.coercionConfigFor(LogicalType.Integer).setCoercion(CoercionInputShape.Float, CoercionAction.Fail)
                .setCoercion(CoercionInputShape.String, CoercionAction.Fail);
        m.coercionConfigFor(LogicalType.Boolean).setCoercion(CoercionInputShape.Integer, CoercionAction.Fail)
                .setCoercion(CoercionInputShape.String, CoercionAction.Fail);
        m.coercionConfigFor(LogicalType.Textual).setCoercion(CoercionInputShape.Integer, CoercionAction.Fail)
                .setCoercion(CoercionInputShape.Float, CoercionAction.Fail)
                .setCoercion(CoercionInputShape.Boolean, CoercionAction.Fail);
        return m;
    }

    /** The Java type of every field, by snake_case name, in declaration order. */
    private static final Map<String, Class<?>> FIELD_TYPES = fieldTypes();

    private Configs() {}

    public static String toJson(BitSkipConfig c) {
        try {
            return JSON.writeValueAsString(c);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Parses a complete configuration (as written by {@link #toJson}); {@code source} names it in errors. */
    public static BitSkipConfig fromJson(String json, String source) {
        JsonNode node;
        try {
            node = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw invalid(source, e);
        }
        if (node == null || !node.isObject()) {
            throw new IllegalArgumentException(source + ": not a valid bitskip configuration: not a JSON object");
        }
        // a configuration written before a field existed means that field's original behaviour
        ObjectNode tree = (ObjectNode) node;
        for (Map.Entry<String, Object> e : BitSkipConfig.ADDED_FIELDS.entrySet()) {
            if (!tree.has(e.getKey())) {
                tree.set(e.getKey(), JSON.valueToTree(e.getValue()));
            }
        }
        return fromTree(tree, source);
    }

    /** The snake_case names of every field. */
    public static List<String> fieldNames() {
        return new ArrayList<>(FIELD_TYPES.keySet());
    }

    private static Map<String, Class<?>> fieldTypes() {
        Map<String, Class<?>> m = new LinkedHashMap<>();
        for (RecordComponent rc : BitSkipConfig.class.getRecordComponents()) {
            m.put(((PropertyNamingStrategies.NamingBase) PropertyNamingStrategies.SNAKE_CASE).translate(rc.getName()), rc.getType());
        }
        return m;
    }

    /**
     * Applies overrides given as strings ({@code "lr" -> "3e-4"}), each to the field of that snake_case name,
     * parsed as that field's Java type: an int or long must be an integer in its range, a float a finite
     * number, a boolean {@code true} or {@code false}. An unknown field or a bad value is refused naming it.
     */
    public static BitSkipConfig override(BitSkipConfig base, Map<String, String> values, String source) {
        ObjectNode tree = JSON.valueToTree(base);
        for (Map.Entry<String, String> e : values.entrySet()) {
            String field = e.getKey().replace('-', '_');
            Class<?> type = typeOf(field, e.getKey(), source);
            String v = e.getValue().trim();
            try {
                if (type == boolean.class) {
                    if (!v.equals("true") && !v.equals("false")) {
                        throw new NumberFormatException("expected true or false");
                    }
                    tree.put(field, Boolean.parseBoolean(v));
                } else if (type == int.class) {
                    tree.put(field, Integer.parseInt(v));
                } else if (type == long.class) {
                    tree.put(field, Long.parseLong(v));
                } else if (type == float.class) {
                    float f = Float.parseFloat(v);
                    if (!Float.isFinite(f)) {
                        throw new NumberFormatException("not a finite float");
                    }
                    tree.put(field, f);
                } else {
                    tree.put(field, v);
                }
            } catch (NumberFormatException ex) {
                throw new IllegalArgumentException(source + ": configuration field " + field + " = '" + v
                        + "' is not " + describe(type) + " (" + ex.getMessage() + ")");
            }
        }
        return fromTree(tree, source);
    }

    /**
     * Applies every field of a JSON object file (a partial configuration) as overrides, each value of its
     * field's JSON type (an integer field takes an integer literal in range, not 2.5 or "2"); a field given
     * twice is refused.
     */
    public static BitSkipConfig overrideFromFile(BitSkipConfig base, Path file) throws IOException {
        JsonNode node;
        try {
            node = JSON.readTree(Files.readString(file));
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(file + ": " + jsonProblem(e), e);
        }
        if (node == null || !node.isObject()) {
            throw new IllegalArgumentException(file + ": a configuration file must hold one JSON object");
        }
        ObjectNode tree = JSON.valueToTree(base);
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            Class<?> type = typeOf(e.getKey(), e.getKey(), file.toString());
            JsonNode v = e.getValue();
            boolean ok = type == boolean.class ? v.isBoolean()
                    : type == int.class ? v.isIntegralNumber() && v.canConvertToInt()
                    : type == long.class ? v.isIntegralNumber() && v.canConvertToLong()
                    : type == float.class ? v.isNumber() && Float.isFinite(v.floatValue())
                    : v.isTextual();
            if (!ok) {
                throw new IllegalArgumentException(file + ": configuration field " + e.getKey() + " must be "
                        + describe(type) + ", got " + v);
            }
            tree.set(e.getKey(), v);
        }
        return fromTree(tree, file.toString());
    }

    /** The Java type of the field of that snake_case name; an unknown name is refused listing the fields. */
    private static Class<?> typeOf(String field, String given, String source) {
        Class<?> t = FIELD_TYPES.get(field);
        if (t == null) {
            throw new IllegalArgumentException(source + ": unknown configuration field '" + given
                    + "'; fields: " + String.join(", ", fieldNames()));
        }
        return t;
    }

    private static String describe(Class<?> type) {
        return type == int.class ? "an integer in [" + Integer.MIN_VALUE + ", " + Integer.MAX_VALUE + "]"
                : type == long.class ? "an integer in the range of a long"
                : type == float.class ? "a finite number"
                : type == boolean.class ? "true or false"
                : "a string";
    }

    /** The record's own check (an IllegalArgumentException naming the field) arrives wrapped by Jackson. */
    private static IllegalArgumentException invalid(String source, JsonProcessingException e) {
        return new IllegalArgumentException(source + ": " + (e.getCause() instanceof IllegalArgumentException
                ? e.getCause().getMessage() : "not a valid bitskip configuration: " + mappingProblem(e)), e);
    }

    /** What is wrong with a JSON text against the record: the field it concerns, then Jackson's words. */
    private static String mappingProblem(JsonProcessingException e) {
        if (e.getOriginalMessage() != null && e.getOriginalMessage().startsWith("Duplicate field ")) {
            return jsonProblem(e);
        }
        if (e instanceof JsonMappingException m && !m.getPath().isEmpty()) {
            String field = m.getPath().get(m.getPath().size() - 1).getFieldName();
            if (field != null) {
                return "field " + field + ": " + e.getOriginalMessage();
            }
        }
        return e.getOriginalMessage();
    }

    /** What is wrong with a JSON text, in words (a duplicate field is named as such). */
    static String jsonProblem(JsonProcessingException e) {
        String m = e.getOriginalMessage();
        if (m != null && m.startsWith("Duplicate field ")) {
            return "field " + m.substring("Duplicate field ".length()) + " is given twice"
                    + (e.getLocation() == null ? "" : " (line " + e.getLocation().getLineNr() + ")");
        }
        return "not valid JSON: " + m;
    }

    private static BitSkipConfig fromTree(ObjectNode tree, String source) {
        try {
            return JSON.treeToValue(tree, BitSkipConfig.class);
        } catch (JsonProcessingException e) {
            throw invalid(source, e);
        }
    }
}
