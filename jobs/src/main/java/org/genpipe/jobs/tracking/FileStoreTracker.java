package org.genpipe.jobs.tracking;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Writes MLflow's file-store layout (what {@code mlflow ui --backend-store-uri DIR} and MLflow 2.x
 * servers read) from pure Java, for offline runs:
 *
 * <pre>
 * DIR/.trash/
 * DIR/&lt;exp id&gt;/meta.yaml                      experiment
 * DIR/&lt;exp id&gt;/&lt;run id&gt;/meta.yaml             run (status, times, artifact_uri)
 * DIR/&lt;exp id&gt;/&lt;run id&gt;/params/&lt;key&gt;         raw value, no newline
 * DIR/&lt;exp id&gt;/&lt;run id&gt;/tags/&lt;key&gt;           raw value, no newline
 * DIR/&lt;exp id&gt;/&lt;run id&gt;/metrics/&lt;key&gt;        "timestamp value step" per line
 * DIR/&lt;exp id&gt;/&lt;run id&gt;/artifacts/...
 * </pre>
 *
 * Experiment ids are decimal numbers ("0" is MLflow's Default experiment); a '/' in a key makes a
 * sub-folder, as MLflow does.
 */
public final class FileStoreTracker implements Tracker {
  private static final Pattern KEY = Pattern.compile("^[\\w\\-. /]{1,250}$");

  private final Path root;
  private Path runDir;
  private String runId;
  private String experimentId;
  private long startTime;
  private String runName;

  public FileStoreTracker(Path root) {
    this.root = root.toAbsolutePath().normalize();
  }

  public Path runDir() {
    return runDir;
  }

  @Override
  public String startRun(String experiment, String runName, Map<String, String> tags) throws IOException {
    Files.createDirectories(root.resolve(".trash"));
    experimentId = findOrCreateExperiment(experiment);
    runId = UUID.randomUUID().toString().replace("-", "");
    runDir = root.resolve(experimentId).resolve(runId);
    Files.createDirectories(runDir.resolve("artifacts"));
    Files.createDirectories(runDir.resolve("metrics"));
    Files.createDirectories(runDir.resolve("params"));
    Files.createDirectories(runDir.resolve("tags"));
    startTime = System.currentTimeMillis();
    this.runName = runName;
    writeRunMeta(runName, Status.RUNNING, null);
    Map<String, String> all = new LinkedHashMap<>(tags);
    all.put("mlflow.runName", runName);
    all.putIfAbsent("mlflow.user", System.getProperty("user.name", "unknown"));
    all.putIfAbsent("mlflow.source.type", "JOB");
    setTags(all);
    return runId;
  }

  @Override
  public void attachRun(String id) throws IOException {
    if (id == null || !id.matches("[0-9a-f]{32}")) {
      throw new IOException("'" + id + "' is not an MLflow run id");
    }
    if (Files.isDirectory(root)) {
      try (Stream<Path> dirs = Files.list(root)) {
        for (Path d : (Iterable<Path>) dirs::iterator) {
          Path meta = d.resolve(id).resolve("meta.yaml");
          if (Files.isRegularFile(meta)) {
            runId = id;
            experimentId = d.getFileName().toString();
            runDir = d.resolve(id);
            for (String line : Files.readAllLines(meta, StandardCharsets.UTF_8)) {
              if (line.startsWith("start_time: ")) {
                startTime = Long.parseLong(line.substring("start_time: ".length()).trim());
              } else if (line.startsWith("run_name: ")) {
                runName = line.substring("run_name: ".length()).trim().replaceAll("^'(.*)'$", "$1").replace("''", "'");
              }
            }
            return;
          }
        }
      }
    }
    throw new IOException("run " + id + " is not in the MLflow file store " + root);
  }

  @Override
  public void reopenRun(String id) throws IOException {
    attachRun(id);
    writeRunMeta(runName, Status.RUNNING, null);
  }

  @Override
  public Map<String, String> runParams() throws IOException {
    Map<String, String> out = new LinkedHashMap<>();
    Path dir = runDir.resolve("params");
    if (Files.isDirectory(dir)) {
      try (Stream<Path> files = Files.walk(dir)) {
        for (Path f : (Iterable<Path>) files.filter(Files::isRegularFile)::iterator) {
          if (!f.getFileName().toString().startsWith(".")) {
            out.put(dir.relativize(f).toString().replace('\\', '/'), Files.readString(f, StandardCharsets.UTF_8));
          }
        }
      }
    }
    return out;
  }

  private String findOrCreateExperiment(String name) throws IOException {
    int max = 0;
    if (Files.isDirectory(root)) {
      try (Stream<Path> dirs = Files.list(root)) {
        for (Path d : (Iterable<Path>) dirs::iterator) {
          Path meta = d.resolve("meta.yaml");
          String id = d.getFileName().toString();
          if (!Files.isRegularFile(meta) || !id.matches("\\d+")) {
            continue;
          }
          max = Math.max(max, Integer.parseInt(id));
          for (String line : Files.readAllLines(meta, StandardCharsets.UTF_8)) {
            if (line.equals("name: " + yamlString(name))) {
              return id;
            }
          }
        }
      }
    }
    // 0 is the Default experiment in MLflow; created here so the store looks like MLflow's own
    if (!Files.isRegularFile(root.resolve("0").resolve("meta.yaml"))) {
      writeExperimentMeta("0", "Default");
    }
    String id = String.valueOf(max + 1);
    writeExperimentMeta(id, name);
    return id;
  }

  private void writeExperimentMeta(String id, String name) throws IOException {
    Path dir = root.resolve(id);
    Files.createDirectories(dir.resolve("tags"));
    long now = System.currentTimeMillis();
    String meta = "artifact_location: " + dir.toUri().toString().replaceAll("/$", "") + "\n"
        + "creation_time: " + now + "\n"
        + "experiment_id: '" + id + "'\n"
        + "last_update_time: " + now + "\n"
        + "lifecycle_stage: active\n"
        + "name: " + yamlString(name) + "\n";
    writeAtomically(dir.resolve("meta.yaml"), meta);
  }

  private void writeRunMeta(String runName, Status status, Long endTime) throws IOException {
    String meta = "artifact_uri: " + runDir.resolve("artifacts").toUri().toString().replaceAll("/$", "") + "\n"
        + "end_time: " + (endTime == null ? "null" : endTime) + "\n"
        + "entry_point_name: ''\n"
        + "experiment_id: '" + experimentId + "'\n"
        + "lifecycle_stage: active\n"
        + "run_id: " + runId + "\n"
        + "run_name: " + yamlString(runName) + "\n"
        + "run_uuid: " + runId + "\n"
        + "source_name: ''\n"
        + "source_type: 4\n"
        + "source_version: ''\n"
        + "start_time: " + startTime + "\n"
        + "status: " + status.code + "\n"
        + "tags: []\n"
        + "user_id: " + yamlString(System.getProperty("user.name", "unknown")) + "\n";
    writeAtomically(runDir.resolve("meta.yaml"), meta);
  }

  @Override
  public void logParams(Map<String, String> params) throws IOException {
    for (Map.Entry<String, String> e : params.entrySet()) {
      writeAtomically(keyPath("params", e.getKey()), e.getValue());
    }
  }

  @Override
  public void logMetrics(List<Metric> metrics) throws IOException {
    Map<String, StringBuilder> byKey = new LinkedHashMap<>();
    for (Metric m : metrics) {
      byKey.computeIfAbsent(m.key(), k -> new StringBuilder())
          .append(m.timestamp()).append(' ').append(formatValue(m.value())).append(' ').append(m.step()).append('\n');
    }
    for (Map.Entry<String, StringBuilder> e : byKey.entrySet()) {
      Path p = keyPath("metrics", e.getKey());
      Files.createDirectories(p.getParent());
      Files.writeString(p, e.getValue(), StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }
  }

  @Override
  public void setTags(Map<String, String> tags) throws IOException {
    for (Map.Entry<String, String> e : tags.entrySet()) {
      writeAtomically(keyPath("tags", e.getKey()), e.getValue());
    }
  }

  @Override
  public void logArtifact(String path, byte[] content) throws IOException {
    if (path.startsWith("/") || path.contains("..")) {
      throw new IllegalArgumentException("artifact path must be relative without '..': " + path);
    }
    Path target = runDir.resolve("artifacts").resolve(path);
    Files.createDirectories(target.getParent());
    Path tmp = target.resolveSibling("." + target.getFileName() + ".tmp");
    Files.write(tmp, content);
    move(tmp, target);
  }

  @Override
  public void endRun(Status status) throws IOException {
    writeRunMeta(runName, status, System.currentTimeMillis());
  }

  @Override
  public String location() {
    return runDir == null ? root.toString() : runDir.toString();
  }

  /** MLflow writes floats with Python's repr: integral values as "1.0". */
  static String formatValue(double v) {
    if (Double.isNaN(v)) {
      return "nan";
    }
    if (Double.isInfinite(v)) {
      return v > 0 ? "inf" : "-inf";
    }
    return Double.toString(v).replace("E", "e");
  }

  private Path keyPath(String kind, String key) {
    if (!KEY.matcher(key).matches() || key.contains("..") || key.startsWith("/")) {
      throw new IllegalArgumentException("invalid MLflow " + kind + " key '" + key
          + "': letters, digits, _ - . space and / only, at most 250 characters");
    }
    return runDir.resolve(kind).resolve(key);
  }

  private static String yamlString(String s) {
    return s.matches("[A-Za-z0-9_][\\w\\-. ]*") && !s.matches("(?i)null|true|false|yes|no|~|\\d.*")
        ? s
        : "'" + s.replace("'", "''") + "'";
  }

  private static void writeAtomically(Path target, String content) throws IOException {
    Files.createDirectories(target.getParent());
    Path tmp = target.resolveSibling("." + target.getFileName() + ".tmp");
    Files.writeString(tmp, content, StandardCharsets.UTF_8);
    move(tmp, target);
  }

  private static void move(Path tmp, Path target) throws IOException {
    try {
      Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (AtomicMoveNotSupportedException e) {
      Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
    }
  }
}
