package org.genpipe.jobs.tracking;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrackingTest {
  static final ObjectMapper JSON = new ObjectMapper();
  @TempDir Path dir;

  @Test
  void fileStoreWritesMlflowsLayoutExactly() throws Exception {
    Path root = dir.resolve("mlruns");
    FileStoreTracker t = new FileStoreTracker(root);
    String runId = t.startRun("beta-vae-fashion-mnist", "run-1", Map.of("mlflow.source.git.commit", "abc123"));
    t.logParams(Map.of("model.betaVae.beta", "4.0", "train.workers", "2"));
    t.logMetrics(List.of(new Tracker.Metric("loss", 1.5, 0, 1700000000000L),
        new Tracker.Metric("loss", 1.0, 1, 1700000000001L), new Tracker.Metric("eval/kl", 2.0, 1, 1700000000002L)));
    t.logArtifact("samples/step-1.png", new byte[] {1, 2, 3});
    t.endRun(Tracker.Status.FINISHED);

    assertThat(runId).matches("[0-9a-f]{32}");
    assertThat(root.resolve(".trash")).isDirectory();
    assertThat(Files.readString(root.resolve("0/meta.yaml"))).contains("name: Default", "experiment_id: '0'");
    String exp = Files.readString(root.resolve("1/meta.yaml"));
    assertThat(exp).contains("experiment_id: '1'", "lifecycle_stage: active", "name: beta-vae-fashion-mnist",
        "artifact_location: " + root.resolve("1").toUri().toString().replaceAll("/$", ""), "creation_time: ", "last_update_time: ");
    Path run = root.resolve("1").resolve(runId);
    String meta = Files.readString(run.resolve("meta.yaml"));
    assertThat(meta).contains("run_id: " + runId, "run_uuid: " + runId, "experiment_id: '1'", "status: 3",
        "source_type: 4", "entry_point_name: ''", "source_name: ''", "source_version: ''", "tags: []",
        "run_name: run-1", "lifecycle_stage: active", "artifact_uri: " + run.resolve("artifacts").toUri().toString().replaceAll("/$", ""));
    assertThat(meta).containsPattern("start_time: \\d{13}").containsPattern("end_time: \\d{13}");
    assertThat(Files.readString(run.resolve("metrics/loss"))).isEqualTo("1700000000000 1.5 0\n1700000000001 1.0 1\n");
    assertThat(Files.readString(run.resolve("metrics/eval/kl"))).isEqualTo("1700000000002 2.0 1\n");
    assertThat(Files.readString(run.resolve("params/model.betaVae.beta"))).isEqualTo("4.0");
    assertThat(Files.readString(run.resolve("tags/mlflow.source.git.commit"))).isEqualTo("abc123");
    assertThat(Files.readString(run.resolve("tags/mlflow.runName"))).isEqualTo("run-1");
    assertThat(Files.readAllBytes(run.resolve("artifacts/samples/step-1.png"))).containsExactly(1, 2, 3);

    // a second run of the same experiment lands in the same experiment folder
    FileStoreTracker t2 = new FileStoreTracker(root);
    t2.startRun("beta-vae-fashion-mnist", "run-2", Map.of());
    assertThat(Path.of(t2.location()).getParent()).isEqualTo(root.resolve("1"));
  }

  /**
   * A loopback HTTP server that speaks the part of MLflow's REST API the pipeline uses and records
   * the requests. No MLflow server can be installed here (no PyPI), so this stands in for one; it
   * checks methods, paths and JSON fields against MLflow's REST API documentation.
   */
  static final class FakeMlflow implements AutoCloseable {
    final HttpServer server;
    final List<String> calls = Collections.synchronizedList(new ArrayList<>());
    final Map<String, JsonNode> bodies = Collections.synchronizedMap(new LinkedHashMap<>());
    final Map<String, byte[]> artifacts = Collections.synchronizedMap(new LinkedHashMap<>());
    final List<JsonNode> batches = Collections.synchronizedList(new ArrayList<>());

    FakeMlflow() throws IOException {
      server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
      server.createContext("/", this::handle);
      server.start();
    }

    String uri() {
      return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    private void handle(HttpExchange ex) throws IOException {
      String method = ex.getRequestMethod();
      String path = ex.getRequestURI().getRawPath();
      byte[] body = ex.getRequestBody().readAllBytes();
      calls.add(method + " " + path);
      String answer;
      int code = 200;
      if (method.equals("GET") && path.equals("/health")) {
        answer = "OK";
      } else if (method.equals("GET") && path.equals("/api/2.0/mlflow/experiments/get-by-name")) {
        assertThat(ex.getRequestURI().getQuery()).isEqualTo("experiment_name=tiny-test");
        code = 404;
        answer = "{\"error_code\":\"RESOURCE_DOES_NOT_EXIST\",\"message\":\"no experiment\"}";
      } else if (method.equals("POST") && path.equals("/api/2.0/mlflow/experiments/create")) {
        bodies.put("create-experiment", JSON.readTree(body));
        answer = "{\"experiment_id\":\"7\"}";
      } else if (method.equals("POST") && path.equals("/api/2.0/mlflow/runs/create")) {
        bodies.put("create-run", JSON.readTree(body));
        answer = "{\"run\":{\"info\":{\"run_id\":\"r1\",\"run_uuid\":\"r1\",\"experiment_id\":\"7\","
            + "\"status\":\"RUNNING\",\"artifact_uri\":\"mlflow-artifacts:/7/r1/artifacts\"}}}";
      } else if (method.equals("POST") && path.equals("/api/2.0/mlflow/runs/log-batch")) {
        batches.add(JSON.readTree(body));
        answer = "{}";
      } else if (method.equals("POST") && path.equals("/api/2.0/mlflow/runs/update")) {
        bodies.put("update", JSON.readTree(body));
        answer = "{\"run_info\":{\"run_id\":\"r1\",\"status\":\"FINISHED\"}}";
      } else if (method.equals("PUT") && path.startsWith("/api/2.0/mlflow-artifacts/artifacts/")) {
        assertThat(ex.getRequestHeaders().getFirst("Content-Type")).isEqualTo("application/octet-stream");
        artifacts.put(path.substring("/api/2.0/mlflow-artifacts/artifacts/".length()), body);
        answer = "{}";
      } else {
        code = 404;
        answer = "{\"error_code\":\"ENDPOINT_NOT_FOUND\"}";
      }
      byte[] out = answer.getBytes(StandardCharsets.UTF_8);
      ex.getResponseHeaders().add("Content-Type", "application/json");
      ex.sendResponseHeaders(code, out.length);
      ex.getResponseBody().write(out);
      ex.close();
    }

    @Override
    public void close() {
      server.stop(0);
    }
  }

  @Test
  void restTrackerFollowsMlflowsRestApi() throws Exception {
    try (FakeMlflow fake = new FakeMlflow(); RestTracker t = new RestTracker(fake.uri())) {
      assertThat(t.startRun("tiny-test", "run-a", Map.of("genpipe.model", "beta-vae"))).isEqualTo("r1");
      t.logParams(Map.of("seed", "42"));
      List<Tracker.Metric> many = new ArrayList<>();
      for (int i = 0; i < 1500; i++) {
        many.add(new Tracker.Metric("loss", i, i, 1000L + i));
      }
      t.logMetrics(many);
      t.setTags(Map.of("averaging.workers", "2"));
      t.logArtifact("samples/step 1.png", new byte[] {9, 8});
      t.endRun(Tracker.Status.FINISHED);

      assertThat(fake.bodies.get("create-experiment").get("name").asText()).isEqualTo("tiny-test");
      JsonNode run = fake.bodies.get("create-run");
      assertThat(run.get("experiment_id").asText()).isEqualTo("7");
      assertThat(run.get("run_name").asText()).isEqualTo("run-a");
      assertThat(run.get("start_time").asLong()).isPositive();
      assertThat(run.get("tags").toString()).contains("\"key\":\"genpipe.model\"", "\"value\":\"beta-vae\"");
      // metrics batched within MLflow's limit of 1000 per log-batch
      List<JsonNode> metricBatches = fake.batches.stream().filter(b -> b.has("metrics")).toList();
      assertThat(metricBatches).hasSize(2);
      assertThat(metricBatches.get(0).get("metrics")).hasSize(1000);
      JsonNode m = metricBatches.get(1).get("metrics").get(0);
      assertThat(m.get("key").asText()).isEqualTo("loss");
      assertThat(m.get("step").asLong()).isEqualTo(1000);
      assertThat(m.get("timestamp").asLong()).isEqualTo(2000);
      assertThat(metricBatches.get(0).get("run_id").asText()).isEqualTo("r1");
      assertThat(fake.batches.stream().anyMatch(b -> b.path("params").toString().contains("\"seed\""))).isTrue();
      assertThat(fake.artifacts.get("7/r1/artifacts/samples/step%201.png")).containsExactly(9, 8);
      assertThat(fake.bodies.get("update").get("status").asText()).isEqualTo("FINISHED");
      assertThat(fake.bodies.get("update").get("end_time").asLong()).isPositive();
    }
  }

  @Test
  void anUnreachableServerNeverFailsTheCallerAndWhatWasNotSentIsKept() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      port = s.getLocalPort();
    }
    ResilientTracker t = new ResilientTracker(new RestTracker("http://127.0.0.1:" + port), 2, 10);
    t.startRun("x", "y", Map.of());
    t.logParams(Map.of("a", "1"));
    t.logMetrics(List.of(new Tracker.Metric("loss", 1.0, 0, 1L)));
    t.logArtifact("loss.png", new byte[] {1});
    t.endRun(Tracker.Status.FINISHED);
    Path spool = dir.resolve("run/tracking-unsent.jsonl");
    String report = t.finish(120, spool);
    t.close();
    assertThat(report).contains("not logged", "metrics=1", "artifact=1", spool.toString());
    List<String> lines = Files.readAllLines(spool);
    assertThat(lines).hasSize(5);
    assertThat(lines.get(2)).contains("\"call\":\"metrics\"", "\"key\":\"loss\"");
  }
}
