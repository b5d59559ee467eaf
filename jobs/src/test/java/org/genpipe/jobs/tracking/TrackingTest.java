package org.genpipe.jobs.tracking;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrackingTest {
  static final ObjectMapper JSON = new ObjectMapper();
  @TempDir Path dir;
  @TempDir static Path serverHome;
  private static MlflowServer shared;

  /** One real MLflow server for the tests that need no restart (each starts in ~10 s); distinct experiments. */
  private static synchronized MlflowServer shared() throws Exception {
    if (shared == null) {
      shared = new MlflowServer(serverHome.resolve("server"));
    }
    return shared;
  }

  @org.junit.jupiter.api.AfterAll
  static void stopShared() throws Exception {
    if (shared != null) {
      shared.close();
    }
  }

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
   * The REST tracker against a real {@code mlflow server} (SQLite store, --serve-artifacts): what it
   * logs is read back through MLflow's own REST API (what the UI reads) and the artifact is
   * downloaded by the mlflow library, byte for byte.
   */
  @Test
  void restTrackerLogsIntoARealMlflowServer() throws Exception {
    byte[] picture = new byte[2_000_000]; // model-state sized: uvicorn refused such PUTs from an h2c-upgrading client
    new java.util.Random(3).nextBytes(picture);
    MlflowServer server = shared();
    try (RestTracker t = new RestTracker(server.uri())) {
      String runId = t.startRun("tiny-test", "run-a", Map.of("genpipe.model", "beta-vae"));
      t.logParams(Map.of("seed", "42", "model.name", "beta-vae"));
      List<Tracker.Metric> many = new ArrayList<>();
      for (int i = 0; i < 1500; i++) {
        many.add(new Tracker.Metric("loss", 1.0 / (i + 1), i, 1_700_000_000_000L + i));
      }
      t.logMetrics(many); // more than MLflow's 1,000 per log-batch
      t.setTags(Map.of("averaging.workers", "2"));
      t.logArtifact("samples/step 1.png", picture);
      t.endRun(Tracker.Status.FINISHED);
      // the evaluation logs into the finished training run later; a second run joins the experiment
      String secondRun;
      try (RestTracker later = new RestTracker(server.uri()); RestTracker second = new RestTracker(server.uri())) {
        later.attachRun(runId);
        later.logMetrics(List.of(new Tracker.Metric("fid_domain_gen_600_test", 56.3, 1500, 1_700_000_002_000L)));
        secondRun = second.startRun("tiny-test", "run-b", Map.of());
        second.endRun(Tracker.Status.FINISHED);
      }
      assertThat(get(server.uri() + "/api/2.0/mlflow/runs/get?run_id=" + secondRun).at("/run/info/experiment_id"))
          .isEqualTo(get(server.uri() + "/api/2.0/mlflow/runs/get?run_id=" + runId).at("/run/info/experiment_id"));

      JsonNode run = get(server.uri() + "/api/2.0/mlflow/runs/get?run_id=" + runId).get("run");
      assertThat(run.at("/info/status").asText()).isEqualTo("FINISHED");
      assertThat(run.at("/info/run_name").asText()).isEqualTo("run-a");
      assertThat(run.at("/info/end_time").asLong()).isPositive();
      assertThat(run.at("/data/params").toString()).contains("{\"key\":\"seed\",\"value\":\"42\"}");
      assertThat(run.at("/data/tags").toString()).contains("\"genpipe.model\"", "\"averaging.workers\"",
          "\"mlflow.runName\"");
      assertThat(run.at("/data/metrics").toString()).contains("fid_domain_gen_600_test");
      JsonNode history = get(server.uri() + "/api/2.0/mlflow/metrics/get-history?run_id=" + runId
          + "&metric_key=loss&max_results=5000").get("metrics");
      assertThat(history).hasSize(1500);
      List<Long> steps = new ArrayList<>();
      history.forEach(m -> steps.add(m.get("step").asLong()));
      Collections.sort(steps);
      assertThat(steps.get(0)).isZero();
      assertThat(steps.get(1499)).isEqualTo(1499);
      String downloaded = org.genpipe.jobs.PythonTools.python(String.join("\n",
          "import hashlib, sys, tempfile",
          "from mlflow.tracking import MlflowClient",
          "path = MlflowClient(sys.argv[1]).download_artifacts(sys.argv[2], 'samples/step 1.png', tempfile.mkdtemp())",
          "print(hashlib.sha256(open(path, 'rb').read()).hexdigest())"), Map.of(), server.uri(), runId);
      assertThat(downloaded.trim()).isEqualTo(sha256(picture));
    }
  }

  /**
   * A resumed training goes on in its run on a real server: RUNNING again, then FINISHED, metrics
   * continuing at their steps, new params logged, a changed one kept as a tag (MLflow params cannot
   * change); a run the server does not have gives a new run that names it.
   */
  @Test
  void aResumedRunGoesOnInTheSameServerRun() throws Exception {
    try (MlflowServer server = new MlflowServer(dir.resolve("server"))) {
      String runId;
      try (ResilientTracker t = new ResilientTracker(new RestTracker(server.uri()), 2, 10)) {
        t.startRun("resume-test", "run-r", Map.of());
        t.logParams(Map.of("train.steps", "10", "seed", "1"));
        t.logMetrics(List.of(new Tracker.Metric("loss", 2.0, 0, 1L), new Tracker.Metric("loss", 1.5, 1, 2L)));
        t.endRun(Tracker.Status.KILLED);
        assertThat(t.finish(30, dir.resolve("unsent-1.jsonl"))).isNull();
        runId = t.runId();
      }
      try (ResilientTracker t = new ResilientTracker(new RestTracker(server.uri()), 2, 10)) {
        t.resumeOrStartRun(runId, "resume-test", "run-r2", Map.of("genpipe.resumed_at_step", "2"));
        t.logParams(Map.of("train.steps", "20", "seed", "1", "train.workers", "2"));
        t.logMetrics(List.of(new Tracker.Metric("loss", 1.0, 2, 3L)));
        assertThat(t.finish(30, dir.resolve("unsent-2.jsonl"))).isNull(); // the queue drained, the run left open
        assertThat(get(server.uri() + "/api/2.0/mlflow/runs/get?run_id=" + runId).at("/run/info/status").asText())
            .isEqualTo("RUNNING");
      }
      try (ResilientTracker t = new ResilientTracker(new RestTracker(server.uri()), 2, 10)) {
        t.resumeOrStartRun(runId, "resume-test", "unused", Map.of());
        t.endRun(Tracker.Status.FINISHED);
        assertThat(t.finish(30, dir.resolve("unsent-3.jsonl"))).isNull();
      }
      JsonNode run = get(server.uri() + "/api/2.0/mlflow/runs/get?run_id=" + runId).get("run");
      assertThat(run.at("/info/status").asText()).isEqualTo("FINISHED");
      assertThat(run.at("/info/run_name").asText()).isEqualTo("run-r");
      assertThat(run.at("/data/params").toString()).contains("{\"key\":\"train.steps\",\"value\":\"10\"}",
          "{\"key\":\"train.workers\",\"value\":\"2\"}");
      assertThat(run.at("/data/tags").toString()).contains(
          "{\"key\":\"genpipe.resume.param.train.steps\",\"value\":\"10 -> 20\"}");
      JsonNode history = get(server.uri() + "/api/2.0/mlflow/metrics/get-history?run_id=" + runId
          + "&metric_key=loss").get("metrics");
      List<Long> steps = new ArrayList<>();
      history.forEach(m -> steps.add(m.get("step").asLong()));
      Collections.sort(steps);
      assertThat(steps).containsExactly(0L, 1L, 2L);
      // a run this server does not have: a new run, which names the one it continues
      try (ResilientTracker t = new ResilientTracker(new RestTracker(server.uri()), 2, 10)) {
        t.resumeOrStartRun("0123456789abcdef0123456789abcdef", "resume-test", "run-new", Map.of());
        t.endRun(Tracker.Status.FINISHED);
        assertThat(t.finish(30, dir.resolve("unsent-4.jsonl"))).isNull();
        assertThat(t.runId()).isNotEqualTo("0123456789abcdef0123456789abcdef");
        assertThat(get(server.uri() + "/api/2.0/mlflow/runs/get?run_id=" + t.runId()).at("/run/data/tags").toString())
            .contains("{\"key\":\"genpipe.continues_run\",\"value\":\"0123456789abcdef0123456789abcdef\"}");
      }
    }
  }

  /**
   * The offline store the pipeline writes ({@code ./mlruns}) read by the real mlflow library:
   * MLflow 3 reads file stores with MLFLOW_ALLOW_FILE_STORE=true, and {@code mlflow migrate-filestore}
   * moves one into SQLite (what MLflow 3 servers use) with nothing lost.
   */
  @Test
  void theMlflowLibraryReadsTheFileStoreAndMigratesIt() throws Exception {
    Path root = dir.resolve("mlruns");
    FileStoreTracker t = new FileStoreTracker(root);
    String runId = t.startRun("beta-vae-quickstart", "run-1", Map.of("genpipe.model", "beta-vae"));
    t.logParams(Map.of("model.betaVae.beta", "4.0", "train.workers", "2"));
    t.logMetrics(List.of(new Tracker.Metric("loss", 1.5, 0, 1_700_000_000_000L),
        new Tracker.Metric("loss", 1.25, 1, 1_700_000_000_001L), new Tracker.Metric("loss", 1.0, 2, 1_700_000_000_002L),
        new Tracker.Metric("fid_domain_gen_600_test", 56.3, 2, 1_700_000_000_003L)));
    byte[] picture = {(byte) 0x89, 'P', 'N', 'G', 1, 2, 3};
    t.logArtifact("samples/step-2.png", picture);
    t.endRun(Tracker.Status.FINISHED);
    String script = String.join("\n",
        "import hashlib, json, sys, tempfile",
        "from mlflow.tracking import MlflowClient",
        "c = MlflowClient(sys.argv[1])",
        "e = c.get_experiment_by_name('beta-vae-quickstart')",
        "r = c.get_run(sys.argv[2])",
        "h = c.get_metric_history(r.info.run_id, 'loss')",
        "p = c.download_artifacts(r.info.run_id, 'samples/step-2.png', tempfile.mkdtemp())",
        "print(json.dumps({'experiment': e.experiment_id, 'runs': len(c.search_runs([e.experiment_id])),",
        "  'status': r.info.status, 'name': r.info.run_name, 'params': r.data.params,",
        "  'tags': r.data.tags.get('genpipe.model'), 'history': [[m.step, m.value] for m in h],",
        "  'fid': r.data.metrics.get('fid_domain_gen_600_test'),",
        "  'artifacts': [a.path for a in c.list_artifacts(r.info.run_id, 'samples')],",
        "  'sha': hashlib.sha256(open(p, 'rb').read()).hexdigest()}))");
    String expectedHistory = "[[0,1.5],[1,1.25],[2,1.0]]";
    JsonNode fromFiles = JSON.readTree(org.genpipe.jobs.PythonTools.python(script,
        Map.of("MLFLOW_ALLOW_FILE_STORE", "true"), root.toUri().toString(), runId));
    Path db = dir.resolve("migrated.db");
    org.genpipe.jobs.PythonTools.python("import sys; from mlflow.cli import cli; cli()", Map.of(), "migrate-filestore",
        "--source", root.toString(), "--target", "sqlite:///" + db, "--no-progress");
    JsonNode fromSqlite = JSON.readTree(org.genpipe.jobs.PythonTools.python(script, Map.of(), "sqlite:///" + db,
        runId));
    for (JsonNode read : List.of(fromFiles, fromSqlite)) {
      assertThat(read.get("runs").asInt()).isEqualTo(1);
      assertThat(read.get("status").asText()).isEqualTo("FINISHED");
      assertThat(read.get("name").asText()).isEqualTo("run-1");
      assertThat(read.get("params").toString()).isEqualTo("{\"model.betaVae.beta\":\"4.0\",\"train.workers\":\"2\"}");
      assertThat(read.get("tags").asText()).isEqualTo("beta-vae");
      assertThat(read.get("history").toString()).isEqualTo(expectedHistory);
      assertThat(read.get("fid").asDouble()).isEqualTo(56.3);
      assertThat(read.get("artifacts").toString()).isEqualTo("[\"samples/step-2.png\"]");
      assertThat(read.get("sha").asText()).isEqualTo(sha256(picture));
    }
  }

  private static JsonNode get(String url) throws Exception {
    java.net.http.HttpResponse<String> r = java.net.http.HttpClient.newHttpClient().send(
        java.net.http.HttpRequest.newBuilder(java.net.URI.create(url)).build(),
        java.net.http.HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).as(url + ": " + r.body()).isEqualTo(200);
    return JSON.readTree(r.body());
  }

  private static JsonNode post(String url, String body) throws Exception {
    java.net.http.HttpResponse<String> r = java.net.http.HttpClient.newBuilder()
        .version(java.net.http.HttpClient.Version.HTTP_1_1).build().send(
        java.net.http.HttpRequest.newBuilder(java.net.URI.create(url)).header("Content-Type", "application/json")
            .POST(java.net.http.HttpRequest.BodyPublishers.ofString(body)).build(),
        java.net.http.HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).as(url + ": " + r.body()).isEqualTo(200);
    return JSON.readTree(r.body());
  }

  private static String sha256(byte[] b) throws Exception {
    return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(b));
  }

  @Test
  void anUnreachableServerNeverFailsTheCallerAndWhatWasNotSentIsKept() throws Exception {
    int port = MlflowServer.freePort();
    ResilientTracker t = new ResilientTracker(new RestTracker("http://127.0.0.1:" + port), 2, 10);
    t.startRun("x", "y", Map.of());
    t.logParams(Map.of("a", "1"));
    t.logMetrics(List.of(new Tracker.Metric("loss", 1.0, 0, 1L)));
    t.logArtifact("loss.png", new byte[] {1});
    t.endRun(Tracker.Status.FINISHED);
    Path spool = dir.resolve("run/tracking-unsent.jsonl");
    long started = System.nanoTime();
    String report = t.finish(3, spool);
    t.close();
    assertThat((System.nanoTime() - started) / 1e9).as("the drain at the end is bounded").isLessThan(15);
    assertThat(report).contains("not logged", "metrics=1", "artifact=1", spool.toString(), "replay-tracking");
    List<String> lines = Files.readAllLines(spool);
    assertThat(lines).hasSize(5);
    assertThat(lines.get(0)).contains("\"call\":\"start run\"", "\"experiment\":\"x\"");
    assertThat(lines.get(2)).contains("\"call\":\"metrics\"", "\"key\":\"loss\"");
    assertThat(lines.get(3)).contains("\"call\":\"artifact\"", "\"sha256\"");

    // a server answers: replay-tracking creates the run and sends everything, in order
    {
      MlflowServer server = shared();
      int exit = new picocli.CommandLine(new org.genpipe.jobs.Cli()).execute("replay-tracking", spool.toString(),
          "--tracking-uri", server.uri());
      assertThat(exit).isZero();
      assertThat(spool).doesNotExist();
      assertThat(dir.resolve("run/tracking-unsent.jsonl.artifacts")).doesNotExist();
      JsonNode runs = post(server.uri() + "/api/2.0/mlflow/runs/search",
          "{\"experiment_ids\":[\"" + get(server.uri() + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=x")
              .at("/experiment/experiment_id").asText() + "\"]}").get("runs");
      assertThat(runs).hasSize(1);
      JsonNode run = runs.get(0);
      assertThat(run.at("/info/status").asText()).isEqualTo("FINISHED");
      assertThat(run.at("/info/run_name").asText()).isEqualTo("y");
      assertThat(run.at("/data/params").toString()).contains("{\"key\":\"a\",\"value\":\"1\"}");
      assertThat(run.at("/data/metrics").toString()).contains("\"loss\"");
    }
  }

  /**
   * A real server stopped mid-run and started again on the same port and database: the calls made
   * while it was down are held and resent in the background before the run ends (no hole in the
   * metric history), and the run ends FINISHED with nothing spooled.
   */
  @Test
  void callsMadeWhileTheServerIsDownAreResentWhenItIsBack() throws Exception {
    Path serverDir = dir.resolve("server");
    MlflowServer server = new MlflowServer(serverDir);
    String uri = server.uri();
    // resends at most 1 s apart (30 s in use), so that the test does not wait out a long backoff
    ResilientTracker t = new ResilientTracker(new RestTracker(uri), 2, 10, 1000);
    try {
      t.startRun("outage", "run-1", Map.of());
      t.logMetrics(steps(0, 10));
      awaitSteps(uri, t, 10);
      server.close();
      t.logMetrics(steps(10, 20)); // held: the server is gone
      t.setTags(Map.of("during", "outage"));
      Thread.sleep(1500);
      server = new MlflowServer(serverDir, server.port());
      // no further call: the background resend alone brings the held steps
      awaitSteps(uri, t, 20);
      t.logMetrics(steps(20, 30));
      t.endRun(Tracker.Status.FINISHED);
      assertThat(t.finish(60, dir.resolve("unsent.jsonl"))).isNull();
      assertThat(dir.resolve("unsent.jsonl")).doesNotExist();
      JsonNode run = get(uri + "/api/2.0/mlflow/runs/get?run_id=" + t.runId()).get("run");
      assertThat(run.at("/info/status").asText()).isEqualTo("FINISHED");
      assertThat(run.at("/data/tags").toString()).contains("\"during\"");
      assertThat(history(uri, t.runId())).hasSize(30);
    } finally {
      t.close();
      server.close();
    }
  }

  /** A replay that cannot reach the server keeps every call; run again later, it goes on. */
  @Test
  void aFailedReplayKeepsWhatItCouldNotSend() throws Exception {
    int port = MlflowServer.freePort();
    String uri = "http://127.0.0.1:" + port;
    Path spool = dir.resolve("run/tracking-unsent.jsonl");
    TrackingSpool.append(spool, "0123456789abcdef0123456789abcdef", List.of(
        new TrackingSpool.Entry("metrics", "down", Map.of("metrics", steps(0, 3)), null)));
    String before = Files.readString(spool);
    try (RestTracker down = new RestTracker(uri)) {
      TrackingSpool.Replayed r = TrackingSpool.replay(spool, down);
      assertThat(r.sent()).isEqualTo(1); // the run line
      assertThat(r.left()).isEqualTo(1);
      assertThat(r.failure()).contains("cannot be reached");
    }
    assertThat(Files.readString(spool)).isEqualTo(before);
    Files.writeString(spool, "{\"call\":\"metrics\",\"metrics\":[]}\nnot json\n");
    assertThat(org.genpipe.jobs.Cli.execute("replay-tracking", spool.toString(),
        "--tracking-uri", uri)).isEqualTo(2);
  }

  private static List<Tracker.Metric> steps(int from, int to) {
    List<Tracker.Metric> m = new ArrayList<>();
    for (int i = from; i < to; i++) {
      m.add(new Tracker.Metric("loss", 1.0 / (i + 1), i, 1_700_000_000_000L + i));
    }
    return m;
  }

  private static JsonNode history(String uri, String runId) throws Exception {
    return get(uri + "/api/2.0/mlflow/metrics/get-history?run_id=" + runId + "&metric_key=loss&max_results=5000")
        .path("metrics");
  }

  private static void awaitSteps(String uri, ResilientTracker t, int n) throws Exception {
    long deadline = System.nanoTime() + 90_000_000_000L;
    while (true) {
      if (t.runId() != null) {
        try {
          if (history(uri, t.runId()).size() >= n) {
            return;
          }
        } catch (IOException | AssertionError e) {
          // not up yet
        }
      }
      assertThat(System.nanoTime()).as("%d steps reached the server", n).isLessThan(deadline);
      Thread.sleep(250);
    }
  }
}
