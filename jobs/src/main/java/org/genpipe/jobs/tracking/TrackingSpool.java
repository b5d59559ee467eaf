package org.genpipe.jobs.tracking;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.genpipe.common.io.BadInputException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The tracking calls a run could not send, kept for {@code pipeline replay-tracking}: a JSON-lines
 * file ({@code tracking-unsent.jsonl} beside the run's outputs), one call per line in the order it
 * was made, each segment led by a {@code {"call":"run","runId":...}} line naming the run it belongs
 * to; artifact contents in the folder {@code <file>.artifacts/} under their SHA-256. A later run
 * (a resumed training) appends its own segment, so nothing kept earlier is overwritten.
 */
public final class TrackingSpool {
  private static final Logger LOG = LoggerFactory.getLogger(TrackingSpool.class);
  private static final ObjectMapper JSON = new ObjectMapper();
  static final String RUN = "run";
  /** The spool's name in a run folder. */
  public static final String FILE = "tracking-unsent.jsonl";

  /** One call not sent: its name, why, what it carried, and an artifact's bytes. */
  public record Entry(String call, String reason, Map<String, Object> payload, byte[] content) {}

  /** What {@link #replay} did: calls sent, and the calls still kept (0 when the file is gone). */
  public record Replayed(int sent, int left, String runId, String failure) {}

  /** What continuing a run gave: the run logged into, and whether it is the asked one. */
  record Continued(String runId, boolean continued) {}

  private TrackingSpool() {}

  /**
   * The spool of a job whose outputs go to {@code dir}: {@code dir/tracking-unsent.jsonl} when it is a
   * local folder, else a file in the local temporary folder (the spool is written with java.nio).
   */
  public static Path beside(org.apache.hadoop.fs.Path dir) {
    java.net.URI u = dir.toUri();
    return u.getScheme() == null || "file".equals(u.getScheme()) ? Path.of(u.getPath(), FILE)
        : Path.of(System.getProperty("java.io.tmpdir"), "genpipe-" + java.util.UUID.randomUUID() + "-" + FILE);
  }

  /** Where the artifacts of {@code spool} are kept. */
  static Path artifactsDir(Path spool) {
    return spool.resolveSibling(spool.getFileName() + ".artifacts");
  }

  /** Appends a segment for {@code runId} (when known) to {@code spool}, through a temporary file. */
  static void append(Path spool, String runId, List<Entry> entries) throws IOException {
    Path dir = spool.toAbsolutePath().getParent();
    Files.createDirectories(dir);
    StringBuilder lines = new StringBuilder();
    if (Files.exists(spool)) {
      lines.append(Files.readString(spool, StandardCharsets.UTF_8));
    }
    if (runId != null) {
      lines.append(JSON.writeValueAsString(Map.of("call", RUN, "runId", runId))).append('\n');
    }
    for (Entry e : entries) {
      lines.append(JSON.writeValueAsString(line(e, spool))).append('\n');
    }
    write(spool, lines.toString());
  }

  private static Map<String, Object> line(Entry e, Path spool) throws IOException {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("call", e.call());
    if (e.reason() != null) {
      m.put("reason", e.reason());
    }
    m.putAll(e.payload());
    if (e.content() != null) {
      String sha = sha256(e.content());
      Path file = artifactsDir(spool).resolve(sha);
      if (!Files.exists(file)) {
        Files.createDirectories(file.getParent());
        Path tmp = file.resolveSibling("." + sha + ".tmp");
        Files.write(tmp, e.content());
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      }
      m.put("sha256", sha);
    }
    return m;
  }

  private static void write(Path spool, String text) throws IOException {
    Path tmp = spool.resolveSibling("." + spool.getFileName() + ".tmp");
    Files.writeString(tmp, text, StandardCharsets.UTF_8);
    Files.move(tmp, spool, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }

  /**
   * Sends the calls of {@code spool} to {@code tracker} in order. All sent: the file and its artifacts
   * are removed. A call fails: the calls from it on are written back (behind a line naming the run
   * they go to), so a later replay goes on from there and nothing is sent twice.
   */
  public static Replayed replay(Path spool, Tracker tracker) throws IOException {
    if (!Files.isRegularFile(spool)) {
      throw new BadInputException(spool + " does not exist: nothing was kept for replay there");
    }
    List<JsonNode> calls = read(spool);
    String runId = null;
    boolean ready = false;
    int sent = 0;
    for (int i = 0; i < calls.size(); i++) {
      JsonNode c = calls.get(i);
      String call = c.path("call").asText();
      try {
        switch (call) {
          case RUN -> {
            runId = text(c, "runId", spool, i);
            ready = false;
          }
          case "start run" -> {
            runId = tracker.startRun(text(c, "experiment", spool, i), text(c, "runName", spool, i), map(c, "tags"));
            ready = true;
          }
          case "resume run", "attach run" -> {
            boolean reopen = call.equals("resume run");
            Continued k = continueOrStart(tracker, c.path("runId").isTextual() ? c.get("runId").asText() : null,
                reopen, text(c, "experiment", spool, i), text(c, "runName", spool, i), map(c, "tags"));
            runId = k.runId();
            ready = true;
          }
          default -> {
            if (!ready) {
              if (runId == null) {
                throw new BadInputException(spool + " line " + (i + 1) + ": a '" + call + "' call before any line"
                    + " names its run (a {\"call\":\"run\",\"runId\":...} line or a start run)");
              }
              tracker.attachRun(runId);
              ready = true;
            }
            send(tracker, c, call, spool, i);
          }
        }
        sent++;
      } catch (BadInputException e) {
        throw e;
      } catch (Exception e) {
        List<String> left = new ArrayList<>();
        if (runId != null && !call.equals(RUN)) {
          left.add(JSON.writeValueAsString(Map.of("call", RUN, "runId", runId)));
        }
        for (JsonNode rest : calls.subList(i, calls.size())) {
          left.add(JSON.writeValueAsString(rest));
        }
        write(spool, String.join("\n", left) + "\n");
        return new Replayed(sent, calls.size() - i, runId, call + ": " + e.getMessage());
      }
    }
    Files.delete(spool);
    Path dir = artifactsDir(spool);
    if (Files.isDirectory(dir)) {
      try (Stream<Path> files = Files.list(dir)) {
        for (Path f : (Iterable<Path>) files::iterator) {
          Files.delete(f);
        }
      }
      Files.delete(dir);
    }
    return new Replayed(sent, 0, runId, null);
  }

  private static void send(Tracker tracker, JsonNode c, String call, Path spool, int i)
      throws Exception {
    switch (call) {
      case "params" -> {
        // a replay may follow a resume, whose params are partly in the run: only the new ones go in
        logNewParams(tracker, map(c, "params"));
      }
      case "tags" -> tracker.setTags(map(c, "tags"));
      case "metrics" -> {
        List<Tracker.Metric> metrics = new ArrayList<>();
        for (JsonNode m : c.path("metrics")) {
          metrics.add(new Tracker.Metric(m.path("key").asText(), m.path("value").asDouble(), m.path("step").asLong(),
              m.path("timestamp").asLong()));
        }
        tracker.logMetrics(metrics);
      }
      case "artifact" -> {
        String sha = text(c, "sha256", spool, i);
        Path file = artifactsDir(spool).resolve(sha);
        if (!Files.isRegularFile(file)) {
          throw new BadInputException(spool + " line " + (i + 1) + ": the content of artifact "
              + c.path("artifact").asText() + " is missing (expected " + file + ")");
        }
        byte[] content = Files.readAllBytes(file);
        if (!sha256(content).equals(sha)) {
          throw new BadInputException(file + " does not hold what " + spool + " line " + (i + 1) + " kept (SHA-256 "
              + sha256(content) + ", expected " + sha + ")");
        }
        tracker.logArtifact(text(c, "artifact", spool, i), content);
      }
      case "end run" -> {
        String status = text(c, "status", spool, i);
        try {
          tracker.endRun(Tracker.Status.valueOf(status));
        } catch (IllegalArgumentException e) {
          throw new BadInputException(spool + " line " + (i + 1) + ": status '" + status + "' is not one of "
              + List.of(Tracker.Status.values()));
        }
      }
      default -> throw new BadInputException(spool + " line " + (i + 1) + ": unknown call '" + call + "'");
    }
  }

  /**
   * Attaches to ({@code reopen}: reopens as RUNNING) the run {@code runId}; when the store does not
   * have it, starts a new run (tagged {@code genpipe.continues_run} for a resumed one).
   */
  static Continued continueOrStart(Tracker t, String runId, boolean reopen, String experiment, String runName,
      Map<String, String> tags) throws Exception {
    if (runId != null) {
      t.probe(); // a store that is down is not a store without the run: the call is tried again later
      try {
        if (reopen) {
          t.reopenRun(runId);
          t.setTags(tags);
        } else {
          t.attachRun(runId);
        }
        return new Continued(runId, true);
      } catch (Exception e) {
        LOG.info("run {} cannot be {} at {} ({}); logging into a new run", runId, reopen ? "reopened" : "found",
            t.location(), e.getMessage());
      }
    }
    Map<String, String> all = new LinkedHashMap<>(tags);
    if (reopen && runId != null) {
      all.put("genpipe.continues_run", runId);
    }
    return new Continued(t.startRun(experiment, runName, all), false);
  }

  /**
   * Logs only the params the run does not have yet: MLflow params cannot change, so a value that
   * differs from the run's becomes a tag {@code genpipe.resume.param.<key>} = "old -> new".
   */
  static void logNewParams(Tracker t, Map<String, String> params) throws Exception {
    Map<String, String> had = t.runParams();
    Map<String, String> fresh = new LinkedHashMap<>();
    Map<String, String> changed = new LinkedHashMap<>();
    params.forEach((k, v) -> {
      String old = had.get(k);
      if (old == null) {
        fresh.put(k, v);
      } else if (!old.equals(v)) {
        changed.put("genpipe.resume.param." + k, old + " -> " + v);
      }
    });
    if (!fresh.isEmpty()) {
      t.logParams(fresh);
    }
    if (!changed.isEmpty()) {
      t.setTags(changed);
    }
  }

  private static List<JsonNode> read(Path spool) throws IOException {
    List<JsonNode> calls = new ArrayList<>();
    List<String> lines = Files.readAllLines(spool, StandardCharsets.UTF_8);
    for (int i = 0; i < lines.size(); i++) {
      if (lines.get(i).isBlank()) {
        continue;
      }
      JsonNode n;
      try {
        n = JSON.readTree(lines.get(i));
      } catch (IOException e) {
        throw new BadInputException(spool + " line " + (i + 1) + " is not JSON: " + e.getMessage());
      }
      if (!n.path("call").isTextual()) {
        throw new BadInputException(spool + " line " + (i + 1) + " has no \"call\": expected a line that"
            + " a run's tracking wrote");
      }
      calls.add(n);
    }
    return calls;
  }

  private static String text(JsonNode c, String key, Path spool, int i) {
    if (!c.path(key).isTextual()) {
      throw new BadInputException(spool + " line " + (i + 1) + ": '" + c.path("call").asText() + "' has no text '"
          + key + "'");
    }
    return c.get(key).asText();
  }

  private static Map<String, String> map(JsonNode c, String key) {
    return JSON.convertValue(c.path(key), new TypeReference<LinkedHashMap<String, String>>() {});
  }

  private static String sha256(byte[] b) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
