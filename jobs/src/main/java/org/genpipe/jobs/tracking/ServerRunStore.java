package org.genpipe.jobs.tracking;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.genpipe.common.io.BadInputException;

/** Runs read back from an MLflow server: {@code experiments/get-by-name}, {@code runs/search}, {@code runs/get}. */
final class ServerRunStore implements RunStore {
  private static final int PAGE = 500;
  private final MlflowRest rest;

  ServerRunStore(MlflowRest rest) {
    this.rest = rest;
  }

  @Override
  public List<TrackedRun> runs(String experiment) throws IOException {
    String experimentId;
    try {
      experimentId = rest.get("experiments/get-by-name", Map.of("experiment_name", experiment))
          .at("/experiment/experiment_id").asText();
    } catch (MlflowRest.MlflowError e) {
      if (e.notFound()) {
        throw new BadInputException("MLflow server " + rest.uri() + " has no experiment '" + experiment + "'", e);
      }
      throw e;
    }
    List<TrackedRun> runs = new ArrayList<>();
    String token = null;
    do {
      Map<String, Object> body = new LinkedHashMap<>();
      body.put("experiment_ids", List.of(experimentId));
      body.put("max_results", PAGE);
      body.put("order_by", List.of("attributes.start_time DESC"));
      if (token != null) {
        body.put("page_token", token);
      }
      JsonNode page = rest.post("runs/search", body);
      for (JsonNode run : page.path("runs")) {
        runs.add(parse(run));
      }
      token = page.path("next_page_token").asText("");
    } while (!token.isEmpty());
    return runs;
  }

  @Override
  public TrackedRun run(String runId) throws IOException {
    try {
      return parse(rest.get("runs/get", Map.of("run_id", runId)).path("run"));
    } catch (MlflowRest.MlflowError e) {
      if (e.notFound()) {
        throw new BadInputException("MLflow server " + rest.uri() + " has no run " + runId, e);
      }
      throw e;
    }
  }

  static TrackedRun parse(JsonNode run) {
    JsonNode info = run.path("info");
    Map<String, Double> metrics = new LinkedHashMap<>();
    for (JsonNode m : run.path("data").path("metrics")) {
      JsonNode v = m.path("value");
      metrics.put(m.path("key").asText(), v.isNumber() ? v.asDouble() : parseSpecial(v.asText()));
    }
    Map<String, String> params = new LinkedHashMap<>();
    for (JsonNode p : run.path("data").path("params")) {
      params.put(p.path("key").asText(), p.path("value").asText());
    }
    Map<String, String> tags = new LinkedHashMap<>();
    for (JsonNode t : run.path("data").path("tags")) {
      tags.put(t.path("key").asText(), t.path("value").asText());
    }
    return new TrackedRun(info.path("run_id").asText(), info.path("run_name").asText(""),
        info.path("experiment_id").asText(), info.path("status").asText(), info.path("start_time").asLong(0),
        info.path("end_time").asLong(0), info.path("artifact_uri").asText(""), metrics, params, tags);
  }

  private static double parseSpecial(String v) {
    return switch (v.toLowerCase(java.util.Locale.ROOT)) {
      case "nan" -> Double.NaN;
      case "infinity", "inf" -> Double.POSITIVE_INFINITY;
      case "-infinity", "-inf" -> Double.NEGATIVE_INFINITY;
      default -> Double.parseDouble(v);
    };
  }
}
