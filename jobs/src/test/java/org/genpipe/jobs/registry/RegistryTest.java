package org.genpipe.jobs.registry;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.awt.image.BufferedImage;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.genpipe.jobs.CliTest;
import org.genpipe.jobs.tracking.FileStoreTracker;
import org.genpipe.jobs.tracking.MlflowServer;
import org.genpipe.jobs.tracking.RestTracker;
import org.genpipe.jobs.tracking.Tracker;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * promote and compare against a real {@code mlflow server} (SQLite, --serve-artifacts) and the file
 * store: runs are logged by the pipeline's own trackers, the registry is read back through MLflow's
 * REST API.
 */
class RegistryTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  @TempDir static Path dir;
  private static MlflowServer server;

  @BeforeAll
  static void start() throws Exception {
    server = new MlflowServer(dir.resolve("server"));
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
  }

  /** A finished training-like run with a model/ artifact, the given metrics and params. */
  private static String run(Tracker t, String experiment, String name, Map<String, Double> metrics,
      Map<String, String> params) throws Exception {
    String id = t.startRun(experiment, name, Map.of("genpipe.model", "beta-vae", "genpipe.experiment", experiment,
        "genpipe.data.digest", "ab".repeat(32), "mlflow.source.git.commit", "c0ffee"));
    t.logParams(params);
    t.logMetrics(metrics.entrySet().stream().map(e -> new Tracker.Metric(e.getKey(), e.getValue(), 100,
        System.currentTimeMillis())).toList());
    t.logMetrics(List.of(new Tracker.Metric("loss", 9.0, 0, 1L), new Tracker.Metric("loss", 3.0, 99, 2L)));
    t.logArtifact("model/state.bin", new byte[] {1, 2, 3});
    t.logArtifact("model/checkpoint.json", "{}".getBytes());
    t.endRun(Tracker.Status.FINISHED);
    return id;
  }

  private static JsonNode get(String path) throws Exception {
    HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(server.uri() + "/api/2.0/mlflow/" + path)).build(),
        HttpResponse.BodyHandlers.ofString());
    return JSON.readTree(r.body());
  }

  private static String[] promote(String... args) {
    List<String> all = new java.util.ArrayList<>(List.of("promote", "--set", "tracking.uri=" + server.uri()));
    all.addAll(List.of(args));
    int[] code = new int[1];
    String out = CliTest.run(code, all.toArray(String[]::new));
    return new String[] {String.valueOf(code[0]), out};
  }

  @Test
  void promoteMovesTheAliasOnlyWhenTheRunBeatsTheChampionByTheMargin() throws Exception {
    String a;
    String b;
    String c;
    try (RestTracker t = new RestTracker(server.uri())) {
      a = run(t, "vae-exp", "run-a", Map.of("fid_x", 80.0, "ocr_seq_acc_x", 0.5), Map.of("train.steps", "100"));
    }
    try (RestTracker t = new RestTracker(server.uri())) {
      b = run(t, "vae-exp", "run-b", Map.of("fid_x", 70.0, "ocr_seq_acc_x", 0.6), Map.of("train.steps", "300"));
    }
    try (RestTracker t = new RestTracker(server.uri())) {
      c = run(t, "vae-exp", "run-c", Map.of("fid_x", 69.0, "ocr_seq_acc_x", 0.9), Map.of("train.steps", "400"));
    }
    Path report = dir.resolve("promotion.json");
    // no champion: a becomes version 1; the model is named after the experiment
    String[] r = promote("--run", a, "--metric", "fid_x", "--margin", "0.05", "--tag", "data_fingerprint=f1",
        "--report", report.toString());
    assertThat(r[0]).as(r[1]).isEqualTo("0");
    assertThat(r[1]).contains("promoted: vae-exp version 1 is now @champion", "no version holds the alias yet");
    JsonNode v = get("registered-models/alias?name=vae-exp&alias=champion").get("model_version");
    assertThat(v.get("version").asText()).isEqualTo("1");
    assertThat(v.get("run_id").asText()).isEqualTo(a);
    assertThat(v.get("source").asText()).endsWith("/" + a + "/artifacts/model");
    assertThat(v.get("tags").toString()).contains("{\"key\":\"data_digest\",\"value\":\"" + "ab".repeat(32) + "\"}",
        "{\"key\":\"git_commit\",\"value\":\"c0ffee\"}", "{\"key\":\"metric.fid_x\",\"value\":\"80.0000\"}",
        "{\"key\":\"data_fingerprint\",\"value\":\"f1\"}");
    JsonNode rep = JSON.readTree(report.toFile());
    assertThat(rep.get("decision").asText()).isEqualTo("promoted");
    assertThat(rep.get("version").asText()).isEqualTo("1");

    // b: 12.5% better than 80 -> version 2 takes the alias
    r = promote("--run", b, "--metric", "fid_x", "--margin", "0.05", "--report", report.toString());
    assertThat(r[1]).contains("promoted: vae-exp version 2 is now @champion (was version 1)",
        "fid_x 70.0000 vs champion 80.0000 (lower is better; needs <= 76.0000): beats it");
    assertThat(get("registered-models/alias?name=vae-exp&alias=champion").at("/model_version/version").asText())
        .isEqualTo("2");

    // c: 1.4% better than 70: not by 5% -> kept, not registered, the run says why
    r = promote("--run", c, "--metric", "fid_x", "--margin", "0.05", "--report", report.toString());
    assertThat(r[0]).isEqualTo("0");
    assertThat(r[1]).contains("kept: vae-exp@champion stays version 2; run run-c is not registered");
    assertThat(get("registered-models/alias?name=vae-exp&alias=champion").at("/model_version/version").asText())
        .isEqualTo("2");
    assertThat(get("model-versions/search?filter=" + java.net.URLEncoder.encode("name='vae-exp'", "UTF-8"))
        .get("model_versions")).hasSize(2);
    assertThat(get("runs/get?run_id=" + c).at("/run/data/tags").toString()).contains("genpipe.promotion",
        "does not beat it");
    assertThat(JSON.readTree(report.toFile()).get("decision").asText()).isEqualTo("kept");

    // ...but c wins on a higher-is-better metric into another registered model
    r = promote("--run", c, "--model", "readers", "--alias", "best", "--metric", "max:ocr_seq_acc_x");
    assertThat(r[1]).contains("promoted: readers version 1 is now @best");

    // without --metric: promoted as asked
    r = promote("--run", a, "--model", "vae-exp");
    assertThat(r[1]).contains("promoted: vae-exp version 3 is now @champion (was version 2)",
        "no objective metric given");
  }

  @Test
  void badPromotionsAreNamed() throws Exception {
    String running;
    String done;
    try (RestTracker t = new RestTracker(server.uri())) {
      running = t.startRun("other-exp", "still-running", Map.of());
    }
    try (RestTracker t = new RestTracker(server.uri())) {
      done = run(t, "other-exp", "done", Map.of("fid_x", 1.0), Map.of());
    }
    String[] r = promote("--run", running, "--model", "m");
    assertThat(r[0]).isEqualTo("2");
    assertThat(r[1]).contains("is RUNNING: only finished runs are promoted");
    r = promote("--run", done, "--model", "m", "--metric", "fid_y");
    assertThat(r[0]).isEqualTo("2");
    assertThat(r[1]).contains("the candidate run has no metric 'fid_y' (evaluate it first); it has: fid_x, loss");
    r = promote("--run", "0123456789abcdef0123456789abcdef", "--model", "m");
    assertThat(r[0]).isEqualTo("2");
    assertThat(r[1]).contains("has no run 0123456789abcdef0123456789abcdef");
    int[] code = new int[1];
    String out = CliTest.run(code, "promote", "--run", done, "--set", "tracking.uri=" + dir.resolve("mlruns"));
    assertThat(code[0]).isEqualTo(2);
    assertThat(out).contains("the model registry needs an MLflow server");
  }

  @Test
  void compareShowsMetricsAndTheParamsThatDifferFromAServerAndFromTheFileStore() throws Exception {
    Path root = dir.resolve("mlruns");
    for (String where : List.of(server.uri(), root.toString())) {
      for (int i = 0; i < 3; i++) {
        try (Tracker t = where.startsWith("http") ? new RestTracker(where) : new FileStoreTracker(root)) {
          run(t, "cmp-exp", "run-" + i, Map.of("fid_domain_gen_600_test", 90.0 - 10 * i, "kid_domain_gen_600_test",
              1000.0 + i, "diversity_domain_gen_600_test", 0.5), Map.of("train.steps", String.valueOf(100 * (i + 1)),
              "seed", "42"));
        }
        Thread.sleep(5); // distinct start times: newest first
      }
      Path png = dir.resolve("cmp-" + (where.startsWith("http") ? "server" : "files") + ".png");
      int[] code = new int[1];
      String out = CliTest.run(code, "compare", "--experiment", "cmp-exp", "--set", "tracking.uri=" + where, "--chart",
          png.toString());
      assertThat(code[0]).as(out).isZero();
      List<String> lines = out.lines().toList();
      assertThat(lines.get(0)).startsWith("experiment cmp-exp in " + where + ": 3 of 3 runs, newest first");
      assertThat(lines.get(1)).matches("run +run-2 \\(\\w{8}\\) +run-1 \\(\\w{8}\\) +run-0 \\(\\w{8}\\)");
      assertThat(out).containsPattern("fid_domain_gen_600_test +70\\.0000 \\* +80\\.0000 +90\\.0000\n")
          .containsPattern("kid_domain_gen_600_test +1002\\.00 +1001\\.00 +1000\\.00 \\*\n")
          .containsPattern("param\\.train\\.steps +300 +200 +100\n")
          .contains("status ", "FINISHED")
          .doesNotContain("param.seed", "loss"); // the same everywhere; training curves are not compared
      BufferedImage chart = ImageIO.read(png.toFile());
      assertThat(chart.getWidth()).isEqualTo(900);
      assertThat(chart.getHeight()).isEqualTo(3 * 260); // diversity, fid, kid
    }
    int[] code = new int[1];
    String out = CliTest.run(code, "compare", "--experiment", "nope", "--set", "tracking.uri=" + root);
    assertThat(code[0]).isEqualTo(2);
    assertThat(out).contains("has no experiment 'nope'; it has: ", "cmp-exp");
    Files.deleteIfExists(Path.of("compare-nope.png"));
  }
}
