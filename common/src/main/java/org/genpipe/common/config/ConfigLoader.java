package org.genpipe.common.config;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.exc.ValueInstantiationException;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * Binds YAML configuration to Java records: defaults (a YAML resource beside the root record), then
 * the user's file, then {@code key.sub=value} overrides, merged in that order; unknown keys and
 * invalid values are errors that name the dotted key and what is allowed.
 */
public final class ConfigLoader {
  private static final ObjectMapper YAML =
      new ObjectMapper(
              new YAMLFactory()
                  .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
                  .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES))
          .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
          .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
          .enable(DeserializationFeature.FAIL_ON_MISSING_CREATOR_PROPERTIES)
          .disable(SerializationFeature.FAIL_ON_EMPTY_BEANS);

  /** Keys whose values are credentials: never printed, logged or written. */
  private static final Pattern SECRET_KEY =
      Pattern.compile("(?i).*(secret|password|passwd|token|credential|access\\.key|accesskey).*");

  public static final String REDACTED = "*****";

  private ConfigLoader() {}

  /**
   * Loads {@code file} over the defaults resource {@code defaultsResource} (on the classpath of
   * {@code type}), applies {@code overrides} ("dotted.key=value", value parsed as YAML), and binds.
   */
  public static <T> T load(
      Path file, Class<T> type, String defaultsResource, List<String> overrides) {
    ObjectNode tree = defaults(type, defaultsResource);
    if (file != null) {
      if (!Files.isRegularFile(file)) {
        throw new ConfigException("config file " + file + " does not exist or is not a file");
      }
      JsonNode user;
      try {
        user = YAML.readTree(file.toFile());
      } catch (IOException e) {
        throw new ConfigException(
            "config file " + file + " is not valid YAML: " + e.getMessage(), e);
      }
      if (user != null && !user.isMissingNode() && !user.isNull()) {
        if (!user.isObject()) {
          throw new ConfigException("config file " + file + " must hold a mapping of keys");
        }
        merge(tree, (ObjectNode) user, "");
      }
    }
    for (String override : overrides) {
      applyOverride(tree, override);
    }
    return bind(tree, type, file == null ? "configuration" : file.toString());
  }

  /**
   * Binds a resolved config written earlier (a checkpoint's config) over the current defaults, so
   * that sections added since then take their defaults.
   */
  public static <T> T bindOverDefaults(JsonNode written, Class<T> type, String defaultsResource, String source) {
    ObjectNode tree = defaults(type, defaultsResource);
    if (written != null && written.isObject()) {
      merge(tree, (ObjectNode) written, "");
    }
    return bind(tree, type, source);
  }

  /** Binds a tree (already merged) to {@code type}, translating Jackson errors to user messages. */
  public static <T> T bind(JsonNode tree, Class<T> type, String source) {
    try {
      return YAML.treeToValue(tree, type);
    } catch (UnrecognizedPropertyException e) {
      String key = dotted(e.getPath());
      String parent = key.contains(".") ? key.substring(0, key.lastIndexOf('.')) : "";
      String allowed =
          e.getKnownPropertyIds().stream().map(String::valueOf).sorted().collect(Collectors.joining(", "));
      throw new ConfigException(
          source
              + ": unknown key '"
              + key
              + "'; allowed keys"
              + (parent.isEmpty() ? "" : " under '" + parent + "'")
              + ": "
              + allowed);
    } catch (InvalidFormatException e) {
      String allowed = "";
      if (e.getTargetType() != null && e.getTargetType().isEnum()) {
        allowed =
            "; allowed: "
                + Arrays.stream(e.getTargetType().getEnumConstants())
                    .map(Object::toString)
                    .collect(Collectors.joining(", "));
      }
      throw new ConfigException(
          source
              + ": key '"
              + dotted(e.getPath())
              + "' has invalid value '"
              + e.getValue()
              + "', expected "
              + describe(e.getTargetType())
              + allowed);
    } catch (ValueInstantiationException e) {
      Throwable cause = e.getCause() != null ? e.getCause() : e;
      String prefix = dotted(e.getPath());
      throw new ConfigException(
          source + ": " + (prefix.isEmpty() ? "" : prefix + ".") + cause.getMessage(), cause);
    } catch (MismatchedInputException e) {
      throw new ConfigException(
          source
              + ": key '"
              + dotted(e.getPath())
              + "' expected "
              + describe(e.getTargetType())
              + " ("
              + e.getOriginalMessage().split("\n")[0]
              + ")");
    } catch (JsonProcessingException e) {
      throw new ConfigException(source + ": " + e.getOriginalMessage(), e);
    }
  }

  /** The config as YAML, with the values of credential-like keys replaced by {@link #REDACTED}. */
  public static String toYaml(Object config) {
    try {
      JsonNode tree = YAML.valueToTree(config);
      redact(tree);
      return YAML.writeValueAsString(tree);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot write config as YAML", e);
    }
  }

  /** The config as a tree (redacted), e.g. for JSON manifests. */
  public static JsonNode toTree(Object config) {
    JsonNode tree = YAML.valueToTree(config);
    redact(tree);
    return tree;
  }

  public static boolean isSecretKey(String key) {
    return SECRET_KEY.matcher(key).matches();
  }

  private static void redact(JsonNode node) {
    if (node instanceof ObjectNode obj) {
      Iterator<Map.Entry<String, JsonNode>> it = obj.fields();
      while (it.hasNext()) {
        Map.Entry<String, JsonNode> e = it.next();
        if (isSecretKey(e.getKey()) && e.getValue().isValueNode()) {
          e.setValue(JsonNodeFactory.instance.textNode(REDACTED));
        } else {
          redact(e.getValue());
        }
      }
    } else if (node != null && node.isArray()) {
      node.forEach(ConfigLoader::redact);
    }
  }

  private static ObjectNode defaults(Class<?> type, String resource) {
    if (resource == null) {
      return JsonNodeFactory.instance.objectNode();
    }
    try (InputStream in = type.getResourceAsStream(resource)) {
      if (in == null) {
        throw new IllegalStateException("defaults resource " + resource + " missing beside " + type);
      }
      return (ObjectNode) YAML.readTree(in);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Deep merge: objects merge key by key; anything else replaces. */
  private static void merge(ObjectNode base, ObjectNode update, String path) {
    update
        .fields()
        .forEachRemaining(
            e -> {
              JsonNode old = base.get(e.getKey());
              if (old instanceof ObjectNode o && e.getValue() instanceof ObjectNode u) {
                merge(o, u, path + e.getKey() + ".");
              } else {
                base.set(e.getKey(), e.getValue());
              }
            });
  }

  static void applyOverride(ObjectNode tree, String override) {
    int eq = override.indexOf('=');
    if (eq <= 0) {
      throw new ConfigException(
          "override '" + override + "' must look like key.sub=value (e.g. preprocess.shardSize=2048)");
    }
    String key = override.substring(0, eq).trim();
    String raw = override.substring(eq + 1);
    JsonNode value;
    try {
      value = raw.isEmpty() ? JsonNodeFactory.instance.textNode("") : YAML.readTree(raw);
    } catch (IOException e) {
      value = JsonNodeFactory.instance.textNode(raw);
    }
    if (value == null || value.isMissingNode()) {
      value = JsonNodeFactory.instance.nullNode();
    }
    String[] parts = key.split("\\.");
    ObjectNode node = tree;
    for (int i = 0; i < parts.length - 1; i++) {
      JsonNode child = node.get(parts[i]);
      if (child == null || child.isNull()) {
        child = node.putObject(parts[i]);
      } else if (!child.isObject()) {
        throw new ConfigException(
            "override '" + key + "': '" + String.join(".", Arrays.copyOf(parts, i + 1))
                + "' is a value, not a section");
      }
      node = (ObjectNode) child;
    }
    node.set(parts[parts.length - 1], value);
  }

  private static String dotted(List<JsonMappingException.Reference> path) {
    StringBuilder sb = new StringBuilder();
    for (JsonMappingException.Reference r : path) {
      if (r.getFieldName() != null) {
        if (sb.length() > 0) {
          sb.append('.');
        }
        sb.append(r.getFieldName());
      } else if (r.getIndex() >= 0) {
        sb.append('[').append(r.getIndex()).append(']');
      }
    }
    return sb.toString();
  }

  private static String describe(Class<?> type) {
    if (type == null) {
      return "a value";
    }
    if (type == int.class || type == Integer.class || type == long.class || type == Long.class) {
      return "an integer";
    }
    if (type == double.class || type == Double.class || type == float.class) {
      return "a number";
    }
    if (type == boolean.class || type == Boolean.class) {
      return "true or false";
    }
    if (type == String.class) {
      return "a string";
    }
    if (type.isEnum()) {
      return "one of the named values";
    }
    if (List.class.isAssignableFrom(type) || type.isArray()) {
      return "a list";
    }
    if (Map.class.isAssignableFrom(type) || type.isRecord()) {
      return "a mapping of keys";
    }
    return "a " + type.getSimpleName();
  }
}
