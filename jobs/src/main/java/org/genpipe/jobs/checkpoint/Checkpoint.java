package org.genpipe.jobs.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.io.Storage;
import org.genpipe.common.provenance.Provenance;
import org.genpipe.common.records.ImageShape;
import org.genpipe.models.ModelState;

/**
 * A training checkpoint: the whole model state ({@code state.bin}) and, in {@code checkpoint.json},
 * where training stands (step, round, examples), how noise is drawn (seed; every step's noise is
 * derived from (seed, worker, step), so the seed and the step are the RNG state), the resolved
 * config, provenance and the records' digest ({@link org.genpipe.common.records.Manifest.Checked#dataDigest}), and the loss history for plots. Written to a
 * staging folder and renamed, so a checkpoint folder is always complete.
 *
 * @param history per logged step: the step and its losses averaged over workers
 * @param trackingRunId the MLflow run the training logged to (null if it had not started); the
 *     evaluation job logs its metrics into that run
 * @param classes class names of the training records by label (null in checkpoints written before
 *     they were recorded: none)
 */
public record Checkpoint(
    int formatVersion,
    String model,
    ImageShape imageShape,
    long step,
    long round,
    long examples,
    long seed,
    String rngScheme,
    String config,
    String records,
    @com.fasterxml.jackson.annotation.JsonAlias("dataManifestSha256") String dataDigest,
    Provenance provenance,
    List<HistoryPoint> history,
    String trackingRunId,
    List<String> classes) {

  /** Number of classes the model was trained with (0 when the records had none). */
  public int classCount() {
    return classes == null ? 0 : classes.size();
  }

  public static final int FORMAT = 1;
  public static final String DIR = "checkpoints";
  public static final String INFO = "checkpoint.json";
  public static final String STATE = "state.bin";
  public static final String RNG_SCHEME = "splitmix64(seed, worker, step) per step; data order splitmix64(seed, worker, epoch)";
  private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  public record HistoryPoint(long step, Map<String, Double> losses) {}

  public static Path folder(Path runDir, long step) {
    return new Path(new Path(runDir, DIR), String.format("step-%08d", step));
  }

  /** Writes state and info atomically under {@code runDir/checkpoints/step-NNNNNNNN}. */
  public Path write(Path runDir, ModelState state, Configuration conf) throws IOException {
    Path target = folder(runDir, step);
    Path staging = Storage.stagingDir(target);
    FileSystem fs = Storage.fs(staging, conf);
    try {
      fs.mkdirs(staging);
      try (var out = fs.create(new Path(staging, STATE), true)) {
        state.writeTo(out);
      }
      try (var out = fs.create(new Path(staging, INFO), true)) {
        out.write(JSON.writeValueAsBytes(this));
      }
      Storage.commit(staging, target, true, conf);
    } finally {
      Storage.deleteQuietly(staging, conf);
    }
    return target;
  }

  /** Reads a checkpoint folder; {@code state} is read with it. */
  public static Loaded read(Path dir, Configuration conf) {
    try {
      String info = Storage.readString(new Path(dir, INFO), conf);
      Checkpoint c = JSON.readValue(info, Checkpoint.class);
      if (c.formatVersion() != FORMAT) {
        throw new BadInputException(dir + ": checkpoint format " + c.formatVersion() + ", this pipeline reads " + FORMAT);
      }
      Path statePath = new Path(dir, STATE);
      FileSystem fs = Storage.fs(statePath, conf);
      byte[] bytes;
      try (var in = fs.open(statePath)) {
        bytes = in.readAllBytes();
      }
      return new Loaded(dir, c, ModelState.fromBytes(bytes, statePath.toString()));
    } catch (BadInputException e) {
      throw e;
    } catch (IllegalArgumentException e) {
      throw new BadInputException(e.getMessage(), e);
    } catch (IOException e) {
      throw new BadInputException(dir + " is not a readable checkpoint (" + INFO + " + " + STATE + "): " + e.getMessage(), e);
    }
  }

  /**
   * Reads the checkpoint at {@code location}: a checkpoint folder (with {@value #INFO}), a run
   * folder, whose latest complete checkpoint is read, or a folder of run folders (the quickstart's
   * {@code runs/quickstart/<time>/}), whose newest run's latest checkpoint is read.
   */
  public static Loaded resolve(String location, Configuration conf) {
    Path dir = Storage.path(location);
    try {
      if (!Storage.exists(new Path(dir, INFO), conf)) {
        Path latest = latest(dir, conf);
        if (latest == null) {
          latest = latestOfNewestRun(dir, conf);
        }
        if (latest == null) {
          throw new BadInputException(location + " is neither a checkpoint folder (with " + INFO
              + "), nor a run folder with complete checkpoints under " + DIR + "/, nor a folder of such runs");
        }
        dir = latest;
      }
    } catch (IOException e) {
      throw Storage.unreachable(dir, e);
    }
    return read(dir, conf);
  }

  /** The latest checkpoint of the run folder under {@code dir} whose latest checkpoint is newest; null if none. */
  private static Path latestOfNewestRun(Path dir, Configuration conf) throws IOException {
    FileSystem fs = Storage.fs(dir, conf);
    if (!fs.exists(dir) || !fs.getFileStatus(dir).isDirectory()) {
      return null;
    }
    Path best = null;
    long bestTime = Long.MIN_VALUE;
    String bestName = "";
    for (FileStatus st : fs.listStatus(dir)) {
      Path latest = st.isDirectory() ? latest(st.getPath(), conf) : null;
      if (latest != null) {
        long time = fs.getFileStatus(new Path(latest, INFO)).getModificationTime();
        String name = st.getPath().getName();
        if (time > bestTime || (time == bestTime && name.compareTo(bestName) > 0)) {
          best = latest;
          bestTime = time;
          bestName = name;
        }
      }
    }
    return best;
  }

  /** The run folder a checkpoint folder belongs to ({@code <run>/checkpoints/step-N}). */
  public static Path runDir(Path checkpointDir) {
    return checkpointDir.getParent().getParent();
  }

  /** A checkpoint with its state. */
  public record Loaded(Path dir, Checkpoint info, ModelState state) {
    /** The resolved config the checkpoint's run was trained with. */
    public org.genpipe.jobs.config.PipelineConfig config() {
      return org.genpipe.jobs.config.PipelineConfig.fromYaml(info.config(), dir + "/" + INFO);
    }

    /** The checkpoint's model, built from its config, with its state loaded (the caller closes it). */
    public org.genpipe.models.TrainableModel model() {
      return model(config().requireModel());
    }

    /** The checkpoint's model as a CAPTCHA reader (the caller closes it); {@code option} names where it was given. */
    public org.genpipe.models.reader.CaptchaReader captchaReader(String option) {
      org.genpipe.models.TrainableModel model = model();
      if (model instanceof org.genpipe.models.reader.CaptchaReader reader) {
        return reader;
      }
      model.close();
      throw new BadInputException(option + " " + dir + " is a checkpoint of " + model.name()
          + ", not of a captcha-reader");
    }

    /** The checkpoint's model built from {@code settings} (same architecture), with its state loaded. */
    public org.genpipe.models.TrainableModel model(org.genpipe.models.ModelSettings settings) {
      org.genpipe.models.TrainableModel m =
          settings.factory(info.imageShape(), info.classCount(), info.seed(), dir.toString()).create();
      try {
        m.loadState(state);
      } catch (RuntimeException e) {
        m.close();
        throw e;
      }
      return m;
    }
  }

  /** Complete checkpoints of a run, oldest first. */
  public static List<Path> list(Path runDir, Configuration conf) throws IOException {
    Path dir = new Path(runDir, DIR);
    FileSystem fs = Storage.fs(dir, conf);
    List<Path> out = new ArrayList<>();
    if (!fs.exists(dir)) {
      return out;
    }
    for (FileStatus st : fs.listStatus(dir)) {
      String name = st.getPath().getName();
      if (st.isDirectory() && name.matches("step-\\d{8}") && fs.exists(new Path(st.getPath(), INFO))) {
        out.add(st.getPath());
      }
    }
    out.sort(Comparator.comparing(Path::getName));
    return out;
  }

  /** The latest complete checkpoint of a run, or null. */
  public static Path latest(Path runDir, Configuration conf) throws IOException {
    List<Path> all = list(runDir, conf);
    return all.isEmpty() ? null : all.get(all.size() - 1);
  }

  /** Deletes all but the newest {@code keep} checkpoints. */
  public static void prune(Path runDir, int keep, Configuration conf) throws IOException {
    List<Path> all = list(runDir, conf);
    for (int i = 0; i < all.size() - keep; i++) {
      Storage.deleteQuietly(all.get(i), conf);
    }
  }

  public static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
