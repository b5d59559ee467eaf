package org.genpipe.jobs.tracking;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.genpipe.common.config.ConfigException;
import org.genpipe.jobs.config.TrackingSettings;

/**
 * MLflow's model registry on a tracking server: registered models, their versions (each made from a
 * run's {@code model/} artifact) and aliases such as {@code champion}, through the REST API
 * ({@code registered-models/*}, {@code model-versions/*}; the MLflow Java client 2.17 has no alias
 * calls and no version creation with tags). A file store has no registry here: the commands that
 * need one ask for an http(s) tracking URI.
 */
public final class ModelRegistry {
  private final MlflowRest rest;

  /** A registered model's version. */
  public record Version(String model, String version, String runId, String source, Map<String, String> tags) {}

  private ModelRegistry(MlflowRest rest) {
    this.rest = rest;
  }

  /** The registry of the server at {@code settings.uri}; a file store is refused with what to use instead. */
  public static ModelRegistry open(TrackingSettings settings) {
    if (!settings.isServer()) {
      throw new ConfigException("tracking.uri: the model registry needs an MLflow server (http(s)://host:port),"
          + " got the file store " + settings.uri() + "; start one with `mlflow server --backend-store-uri"
          + " sqlite:///mlflow.db --serve-artifacts` and move offline runs there with `mlflow migrate-filestore`");
    }
    return new ModelRegistry(new MlflowRest(settings.uri()));
  }

  public String uri() {
    return rest.uri();
  }

  /** The version holding {@code alias} of {@code model}; empty when the model or the alias does not exist. */
  public Optional<Version> byAlias(String model, String alias) throws IOException {
    try {
      return Optional.of(parse(rest.get("registered-models/alias", Map.of("name", model, "alias", alias))
          .path("model_version")));
    } catch (MlflowRest.MlflowError e) {
      if (e.notFound()) {
        return Optional.empty();
      }
      throw e;
    }
  }

  /** Creates the registered model unless it exists. */
  public void ensureModel(String model, String description) throws IOException {
    try {
      rest.get("registered-models/get", Map.of("name", model));
    } catch (MlflowRest.MlflowError e) {
      if (!e.notFound()) {
        throw e;
      }
      rest.post("registered-models/create", Map.of("name", model, "description", description));
    }
  }

  /** A new version of {@code model} from {@code source} (a run's artifact folder), with tags. */
  public Version createVersion(String model, String source, String runId, Map<String, String> tags,
      String description) throws IOException {
    Map<String, Object> body = new LinkedHashMap<>();
    body.put("name", model);
    body.put("source", source);
    body.put("run_id", runId);
    body.put("description", description);
    List<Map<String, String>> t = new ArrayList<>();
    tags.forEach((k, v) -> t.add(Map.of("key", k, "value", v)));
    body.put("tags", t);
    return parse(rest.post("model-versions/create", body).path("model_version"));
  }

  /** Points {@code alias} of {@code model} at {@code version} (moving it from the version that held it). */
  public void setAlias(String model, String alias, String version) throws IOException {
    rest.post("registered-models/alias", Map.of("name", model, "alias", alias, "version", version));
  }

  /** Tags the run (e.g. what the promotion decided). */
  public void setRunTag(String runId, String key, String value) throws IOException {
    rest.post("runs/set-tag", Map.of("run_id", runId, "key", key, "value", value));
  }

  private static Version parse(JsonNode v) {
    Map<String, String> tags = new LinkedHashMap<>();
    for (JsonNode t : v.path("tags")) {
      tags.put(t.path("key").asText(), t.path("value").asText());
    }
    return new Version(v.path("name").asText(), v.path("version").asText(), v.path("run_id").asText(""),
        v.path("source").asText(""), tags);
  }
}
