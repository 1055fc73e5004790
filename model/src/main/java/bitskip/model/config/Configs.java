package bitskip.model.config;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/** The JSON form of {@link BitSkipConfig} and field-by-field overrides of it. */
public final class Configs {
    public static final ObjectMapper JSON = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
            .enable(DeserializationFeature.FAIL_ON_MISSING_CREATOR_PROPERTIES);

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
        try {
            return JSON.readValue(json, BitSkipConfig.class);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(source + ": " + (e.getCause() instanceof IllegalArgumentException
                    ? e.getCause().getMessage() : "not a valid bitskip configuration: " + e.getOriginalMessage()), e);
        }
    }

    /** The snake_case names of every field. */
    public static List<String> fieldNames() {
        List<String> names = new ArrayList<>();
        JSON.valueToTree(Presets.build("micro", "paper", "baseline")).fieldNames().forEachRemaining(names::add);
        return names;
    }

    /**
     * Applies overrides given as strings ({@code "lr" -> "3e-4"}), each to the field of that snake_case name,
     * parsed as that field's type. An unknown field or an unparsable value is refused naming it.
     */
    public static BitSkipConfig override(BitSkipConfig base, Map<String, String> values, String source) {
        ObjectNode tree = JSON.valueToTree(base);
        for (Map.Entry<String, String> e : values.entrySet()) {
            String field = e.getKey().replace('-', '_');
            JsonNode current = tree.get(field);
            if (current == null) {
                throw new IllegalArgumentException(source + ": unknown configuration field '" + e.getKey()
                        + "'; fields: " + String.join(", ", fieldNames()));
            }
            String v = e.getValue().trim();
            try {
                if (current.isBoolean()) {
                    if (!v.equals("true") && !v.equals("false")) {
                        throw new NumberFormatException("expected true or false");
                    }
                    tree.put(field, Boolean.parseBoolean(v));
                } else if (current.isIntegralNumber()) {
                    tree.put(field, Long.parseLong(v));
                } else if (current.isNumber()) {
                    tree.put(field, Double.parseDouble(v));
                } else {
                    tree.put(field, v);
                }
            } catch (NumberFormatException ex) {
                throw new IllegalArgumentException(source + ": configuration field " + field + " = '" + v
                        + "' is not a valid " + current.getNodeType().toString().toLowerCase() + " (" + ex.getMessage() + ")");
            }
        }
        return fromTree(tree, source);
    }

    /** Applies every field of a JSON object file (a partial configuration) as overrides. */
    public static BitSkipConfig overrideFromFile(BitSkipConfig base, Path file) throws IOException {
        JsonNode node;
        try {
            node = JSON.readTree(Files.readString(file));
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(file + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (node == null || !node.isObject()) {
            throw new IllegalArgumentException(file + ": a configuration file must hold one JSON object");
        }
        ObjectNode tree = JSON.valueToTree(base);
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            JsonNode current = tree.get(e.getKey());
            if (current == null) {
                throw new IllegalArgumentException(file + ": unknown configuration field '" + e.getKey()
                        + "'; fields: " + String.join(", ", fieldNames()));
            }
            if (current.getNodeType() != e.getValue().getNodeType()
                    && !(current.isNumber() && e.getValue().isNumber())) {
                throw new IllegalArgumentException(file + ": configuration field " + e.getKey() + " must be a "
                        + current.getNodeType().toString().toLowerCase() + ", got " + e.getValue());
            }
            tree.set(e.getKey(), e.getValue());
        }
        return fromTree(tree, file.toString());
    }

    private static BitSkipConfig fromTree(ObjectNode tree, String source) {
        try {
            return JSON.treeToValue(tree, BitSkipConfig.class);
        } catch (JsonProcessingException e) {
            // the record's own check (an IllegalArgumentException naming the field) arrives wrapped
            throw new IllegalArgumentException(source + ": " + (e.getCause() instanceof IllegalArgumentException
                    ? e.getCause().getMessage() : e.getOriginalMessage()), e);
        }
    }
}
