package org.genpipe.jobs.tracking;

import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.mlflow.api.proto.Service;
import org.mlflow.tracking.MlflowClient;

/**
 * An MLflow tracking server: experiments, runs, params, metrics (batched) and tags through the
 * official MLflow Java client; artifacts from pure Java (the client's own artifact calls need a
 * Python mlflow), by HTTP PUT to the server's artifact endpoint for {@code mlflow-artifacts:/} runs
 * (server started with {@code --serve-artifacts}), or by writing the file for {@code file:} runs.
 */
public final class RestTracker implements Tracker {
  /** MLflow's log-batch limits. */
  static final int MAX_METRICS = 1000;
  static final int MAX_PARAMS = 100;

  private final String uri;
  private final HttpClient http = HttpClient.newBuilder()
      // HTTP/1.1: MLflow 3's uvicorn answers a POST or PUT that asks for an h2c upgrade (Java's default for
      // http://) with 400 "Invalid HTTP request received"
      .version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build();
  private MlflowClient client;
  private String runId;
  private String artifactUri;
  private String experimentId;

  public RestTracker(String uri) {
    this.uri = uri.replaceAll("/+$", "");
  }

  private MlflowClient client() {
    if (client == null) {
      client = new MlflowClient(uri);
    }
    return client;
  }

  /**
   * Fails fast when the server cannot be reached (the MLflow client itself retries for minutes):
   * MLflow servers answer {@code GET /health} with "OK".
   */
  private void checkReachable() throws IOException, InterruptedException {
    HttpRequest get = HttpRequest.newBuilder(URI.create(uri + "/health")).timeout(Duration.ofSeconds(10)).GET().build();
    HttpResponse<String> resp;
    try {
      resp = http.send(get, HttpResponse.BodyHandlers.ofString());
    } catch (IOException e) {
      throw new IOException("MLflow server " + uri + " cannot be reached: " + e, e);
    }
    if (resp.statusCode() != 200) {
      throw new IOException("MLflow server " + uri + " answered GET /health with HTTP " + resp.statusCode());
    }
  }

  @Override
  public void probe() throws IOException, InterruptedException {
    checkReachable();
  }

  @Override
  public String startRun(String experiment, String runName, Map<String, String> tags)
      throws IOException, InterruptedException {
    checkReachable();
    experimentId = existingExperiment(experiment);
    if (experimentId == null) {
      experimentId = client().createExperiment(experiment);
    }
    Service.CreateRun.Builder create = Service.CreateRun.newBuilder()
        .setExperimentId(experimentId)
        .setRunName(runName)
        .setStartTime(System.currentTimeMillis());
    for (Map.Entry<String, String> e : tags.entrySet()) {
      create.addTags(Service.RunTag.newBuilder().setKey(e.getKey()).setValue(e.getValue()));
    }
    create.addTags(Service.RunTag.newBuilder().setKey("mlflow.runName").setValue(runName));
    Service.RunInfo info = client().createRun(create.build());
    runId = info.getRunId();
    artifactUri = info.getArtifactUri();
    return runId;
  }

  /**
   * The id of the experiment of that name, or null. Asked directly: the Java client retries a 404
   * (its answer for "no such experiment") as if rate-limited, logging two warnings per new experiment.
   */
  private String existingExperiment(String name) throws IOException, InterruptedException {
    HttpRequest get = HttpRequest.newBuilder(URI.create(uri + "/api/2.0/mlflow/experiments/get-by-name?experiment_name="
        + URLEncoder.encode(name, StandardCharsets.UTF_8))).timeout(Duration.ofSeconds(30)).GET().build();
    HttpResponse<String> resp = http.send(get, HttpResponse.BodyHandlers.ofString());
    if (resp.statusCode() == 404) {
      return null;
    }
    if (resp.statusCode() != 200) {
      throw new IOException("MLflow server " + uri + " answered experiments/get-by-name with HTTP "
          + resp.statusCode() + ": " + resp.body());
    }
    return new com.fasterxml.jackson.databind.ObjectMapper().readTree(resp.body()).at("/experiment/experiment_id")
        .asText();
  }

  @Override
  public void attachRun(String id) throws IOException, InterruptedException {
    checkReachable();
    Service.RunInfo info = client().getRun(id).getInfo();
    runId = info.getRunId();
    experimentId = info.getExperimentId();
    artifactUri = info.getArtifactUri();
  }

  @Override
  public void reopenRun(String id) throws IOException, InterruptedException {
    attachRun(id);
    new MlflowRest(uri).post("runs/update", Map.of("run_id", runId, "status", "RUNNING"));
  }

  @Override
  public Map<String, String> runParams() {
    Map<String, String> out = new java.util.LinkedHashMap<>();
    for (Service.Param p : client().getRun(runId).getData().getParamsList()) {
      out.put(p.getKey(), p.getValue());
    }
    return out;
  }

  @Override
  public void logParams(Map<String, String> params) {
    List<Service.Param> all = params.entrySet().stream()
        .map(e -> Service.Param.newBuilder().setKey(e.getKey()).setValue(e.getValue()).build())
        .collect(Collectors.toList());
    for (int i = 0; i < all.size(); i += MAX_PARAMS) {
      client().logBatch(runId, List.of(), all.subList(i, Math.min(all.size(), i + MAX_PARAMS)), List.of());
    }
  }

  @Override
  public void logMetrics(List<Metric> metrics) {
    List<Service.Metric> all = new ArrayList<>();
    for (Metric m : metrics) {
      all.add(Service.Metric.newBuilder().setKey(m.key()).setValue(m.value()).setStep(m.step())
          .setTimestamp(m.timestamp()).build());
    }
    for (int i = 0; i < all.size(); i += MAX_METRICS) {
      client().logBatch(runId, all.subList(i, Math.min(all.size(), i + MAX_METRICS)), List.of(), List.of());
    }
  }

  @Override
  public void setTags(Map<String, String> tags) {
    List<Service.RunTag> all = tags.entrySet().stream()
        .map(e -> Service.RunTag.newBuilder().setKey(e.getKey()).setValue(e.getValue()).build())
        .collect(Collectors.toList());
    client().logBatch(runId, List.of(), List.of(), all);
  }

  @Override
  public void logArtifact(String path, byte[] content) throws IOException, InterruptedException {
    if (artifactUri.startsWith("mlflow-artifacts:")) {
      String rest = artifactUri.substring("mlflow-artifacts:".length()).replaceAll("^/+", "");
      String url = uri + "/api/2.0/mlflow-artifacts/artifacts/" + encodePath(rest) + "/" + encodePath(path);
      HttpRequest put = HttpRequest.newBuilder(URI.create(url))
          .timeout(Duration.ofSeconds(60))
          .header("Content-Type", "application/octet-stream")
          .PUT(HttpRequest.BodyPublishers.ofByteArray(content))
          .build();
      HttpResponse<String> resp = http.send(put, HttpResponse.BodyHandlers.ofString());
      if (resp.statusCode() / 100 != 2) {
        throw new IOException("PUT " + url + " answered HTTP " + resp.statusCode() + ": " + resp.body());
      }
    } else if (artifactUri.startsWith("file:") || artifactUri.startsWith("/")) {
      Path dir = artifactUri.startsWith("/") ? Path.of(artifactUri) : Path.of(URI.create(artifactUri));
      Path target = dir.resolve(path);
      Files.createDirectories(target.getParent());
      Path tmp = target.resolveSibling("." + target.getFileName() + ".tmp");
      Files.write(tmp, content);
      Files.move(tmp, target, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    } else {
      throw new IOException("run artifact location " + artifactUri + " is neither mlflow-artifacts:/ (start the server"
          + " with --serve-artifacts) nor file:; artifacts cannot be uploaded from Java there");
    }
  }

  @Override
  public void endRun(Status status) {
    client().setTerminated(runId, Service.RunStatus.valueOf(status.name()), System.currentTimeMillis());
  }

  @Override
  public String location() {
    return runId == null ? uri : uri + "/#/experiments/" + experimentId + "/runs/" + runId;
  }

  @Override
  public void close() {
    if (client != null) {
      client.close();
    }
  }

  private static String encodePath(String p) {
    List<String> parts = new ArrayList<>();
    for (String s : p.split("/")) {
      parts.add(URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20"));
    }
    return String.join("/", parts);
  }
}
