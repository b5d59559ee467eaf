package org.genpipe.jobs.tracking;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.genpipe.common.io.BadInputException;

/** Runs read back from an MLflow file store, in the layout {@link FileStoreTracker} writes (MLflow's own). */
final class FileRunStore implements RunStore {
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
  private static final String[] STATUS = {"", "RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"};
  private final Path root;

  FileRunStore(Path root) {
    this.root = root.toAbsolutePath().normalize();
  }

  @Override
  public List<TrackedRun> runs(String experiment) throws IOException {
    List<String> names = new ArrayList<>();
    for (Path dir : experimentDirs()) {
      JsonNode meta = YAML.readTree(dir.resolve("meta.yaml").toFile());
      String name = meta.path("name").asText();
      names.add(name);
      if (name.equals(experiment) && "active".equals(meta.path("lifecycle_stage").asText("active"))) {
        List<TrackedRun> runs = new ArrayList<>();
        try (Stream<Path> children = Files.list(dir)) {
          for (Path run : (Iterable<Path>) children.sorted()::iterator) {
            if (Files.isRegularFile(run.resolve("meta.yaml"))) {
              TrackedRun r = read(dir.getFileName().toString(), run);
              if (r != null) {
                runs.add(r);
              }
            }
          }
        }
        runs.sort(Comparator.comparingLong(TrackedRun::startTime).reversed());
        return runs;
      }
    }
    throw new BadInputException("the MLflow file store " + root + " has no experiment '" + experiment + "'"
        + (names.isEmpty() ? " (it has none)" : "; it has: " + String.join(", ", names)));
  }

  @Override
  public TrackedRun run(String runId) throws IOException {
    for (Path dir : experimentDirs()) {
      Path run = dir.resolve(runId);
      if (Files.isRegularFile(run.resolve("meta.yaml"))) {
        return read(dir.getFileName().toString(), run);
      }
    }
    throw new BadInputException("run " + runId + " is not in the MLflow file store " + root);
  }

  private List<Path> experimentDirs() throws IOException {
    if (!Files.isDirectory(root)) {
      throw new BadInputException("the MLflow file store " + root + " does not exist (tracking.uri)");
    }
    try (Stream<Path> dirs = Files.list(root)) {
      return dirs.filter(d -> d.getFileName().toString().matches("\\d+") && Files.isRegularFile(d.resolve("meta.yaml")))
          .sorted().toList();
    }
  }

  private static TrackedRun read(String experimentId, Path run) throws IOException {
    JsonNode meta = YAML.readTree(run.resolve("meta.yaml").toFile());
    if (!"active".equals(meta.path("lifecycle_stage").asText("active"))) {
      return null;
    }
    int status = meta.path("status").asInt(0);
    Map<String, Double> metrics = new LinkedHashMap<>();
    for (Map.Entry<String, Path> e : files(run.resolve("metrics")).entrySet()) {
      double value = Double.NaN;
      long bestStep = Long.MIN_VALUE;
      long bestTime = Long.MIN_VALUE;
      for (String line : Files.readAllLines(e.getValue(), StandardCharsets.UTF_8)) {
        String[] p = line.trim().split(" ");
        if (p.length < 2) {
          continue;
        }
        long time = Long.parseLong(p[0]);
        long step = p.length > 2 ? Long.parseLong(p[2]) : 0;
        if (step > bestStep || (step == bestStep && time >= bestTime)) {
          bestStep = step;
          bestTime = time;
          value = parse(p[1]);
        }
      }
      metrics.put(e.getKey(), value);
    }
    Map<String, String> params = new LinkedHashMap<>();
    for (Map.Entry<String, Path> e : files(run.resolve("params")).entrySet()) {
      params.put(e.getKey(), Files.readString(e.getValue(), StandardCharsets.UTF_8));
    }
    Map<String, String> tags = new LinkedHashMap<>();
    for (Map.Entry<String, Path> e : files(run.resolve("tags")).entrySet()) {
      tags.put(e.getKey(), Files.readString(e.getValue(), StandardCharsets.UTF_8));
    }
    JsonNode end = meta.path("end_time");
    return new TrackedRun(meta.path("run_id").asText(run.getFileName().toString()), meta.path("run_name").asText(""),
        experimentId, status >= 0 && status < STATUS.length ? STATUS[status] : String.valueOf(status),
        meta.path("start_time").asLong(0), end.isNull() || end.isMissingNode() ? 0 : end.asLong(),
        meta.path("artifact_uri").asText(""), metrics, params, tags);
  }

  /** key -> file under dir, a key's '/' being a sub-folder (as MLflow writes them). */
  private static Map<String, Path> files(Path dir) throws IOException {
    Map<String, Path> out = new LinkedHashMap<>();
    if (!Files.isDirectory(dir)) {
      return out;
    }
    try (Stream<Path> all = Files.walk(dir)) {
      for (Path f : (Iterable<Path>) all.filter(Files::isRegularFile).sorted()::iterator) {
        String name = f.getFileName().toString();
        if (!name.startsWith(".")) {
          out.put(dir.relativize(f).toString().replace('\\', '/'), f);
        }
      }
    }
    return out;
  }

  private static double parse(String v) {
    return switch (v) {
      case "nan" -> Double.NaN;
      case "inf" -> Double.POSITIVE_INFINITY;
      case "-inf" -> Double.NEGATIVE_INFINITY;
      default -> Double.parseDouble(v);
    };
  }
}
