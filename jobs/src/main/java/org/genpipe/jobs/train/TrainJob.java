package org.genpipe.jobs.train;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.SparkSession;
import org.genpipe.common.config.ConfigLoader;
import org.genpipe.common.image.AnimatedGif;
import org.genpipe.common.image.ImageGrid;
import org.genpipe.common.image.Images;
import org.genpipe.common.image.LinePlot;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.io.HadoopConf;
import org.genpipe.common.io.Storage;
import org.genpipe.common.provenance.Provenance;
import org.genpipe.common.records.ImageRecord;
import org.genpipe.common.records.Manifest;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.ShardReader;
import org.genpipe.jobs.checkpoint.Checkpoint;
import org.genpipe.jobs.config.PipelineConfig;
import org.genpipe.jobs.config.TrackingSettings;
import org.genpipe.jobs.config.TrainSettings;
import org.genpipe.jobs.tracking.ResilientTracker;
import org.genpipe.jobs.tracking.Tracker;
import org.genpipe.jobs.tracking.TrackingSpool;
import org.genpipe.models.Condition;
import org.genpipe.models.GenerativeModel;
import org.genpipe.models.ImageConditioned;
import org.genpipe.models.ModelFactory;
import org.genpipe.models.ModelState;
import org.genpipe.models.TrainableModel;
import org.genpipe.models.nn.Noise;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The training job: any {@link TrainableModel} trained by parameter averaging on Spark, with
 * checkpoints, resume, fixed-noise sample grids, a loss plot and MLflow tracking.
 *
 * <p>Run folder ({@code train.output}): {@code checkpoints/step-N/}, {@code samples/step-N.png},
 * {@code loss.png}, the model's report pictures, {@code config.yaml}.
 */
public final class TrainJob {
  private static final Logger LOG = LoggerFactory.getLogger(TrainJob.class);
  private static final long FIXED_NOISE_SALT = 0x46495845444e4fL;
  private static final String SAMPLES_DIR = "samples";
  /** Checkpoint intervals in the first barrier stage, and in every stage at least. */
  static final int STAGE_CHECKPOINTS = 10;
  /**
   * How long the later barrier stages run, about (whole checkpoint intervals, from the rounds' times
   * so far): starting one cost ~0.55 s here (the first round of a stage against ~0.06 s for the
   * others), every 30 s at frequency 10 when a stage was 10 checkpoint intervals, and a stage on a
   * GPU would be over in seconds.
   */
  static final double STAGE_SECONDS = 600;
  private static final int REPORT_SAMPLE = 1000;
  /** At most this many floats of held-out images for the report pictures (1000 28x28 images; 254 at 256x256x3). */
  private static final long REPORT_FLOATS = 50_000_000L;
  /** Held-out pairs shown in every sample grid of an image-conditioned model (pix2pix's three triplets). */
  private static final int FIXED_PAIRS = 3;
  /** Held-out records a model that reads images is measured on at every sample point. */
  private static final int HELD_OUT_SAMPLE = 256;

  /** What a finished run leaves. */
  public record Result(
      Path output, long steps, long examples, ModelState state, Path checkpoint, String experiment,
      String trackingLocation, double seconds, String notLogged, List<String> pictures, List<RoundTime> rounds) {

    /** One averaging round of this session: its wall time and its slowest worker's compute time. */
    public record RoundTime(double seconds, double computeSeconds) {}

    /** The rounds' compute time (slowest worker per round). */
    public double computeSeconds() {
      return roundComputeSeconds(0, rounds.size());
    }

    /** Share of the run's wall time not spent computing (slowest worker per round). */
    public double overhead() {
      return overhead(seconds, computeSeconds());
    }

    /** Wall seconds of rounds [from, to) of this session. */
    public double roundSeconds(int from, int to) {
      return rounds.subList(from, to).stream().mapToDouble(RoundTime::seconds).sum();
    }

    /** Compute seconds (slowest worker per round) of rounds [from, to) of this session. */
    public double roundComputeSeconds(int from, int to) {
      return rounds.subList(from, to).stream().mapToDouble(RoundTime::computeSeconds).sum();
    }

    /**
     * The share of wall time not spent computing in rounds [from, to) (round 0 also builds the graphs
     * and reads the data slices).
     */
    public double roundOverhead(int from, int to) {
      return overhead(roundSeconds(from, to), roundComputeSeconds(from, to));
    }

    /** 1 - compute / wall, at least 0 (0 for no wall time). */
    public static double overhead(double wall, double compute) {
      return wall > 0 ? Math.max(0, 1 - compute / wall) : 0;
    }
  }

  /** Thrown when SIGTERM or SIGINT stopped the run after a round: checkpoint written, MLflow run KILLED. */
  public static final class StoppedException extends RuntimeException {
    private final int exitCode;

    StoppedException(String message, int exitCode) {
      super(message);
      this.exitCode = exitCode;
    }

    /** 128 + the signal's number, as a shell reports a process the signal ended. */
    public int exitCode() {
      return exitCode;
    }
  }

  /** Thrown when a loss or the averaged state turns NaN or infinite. */
  public static final class DivergedException extends RuntimeException {
    public DivergedException(String message) {
      super(message);
    }
  }

  /** A checkpoint could not be written (disk full, permissions, an object store's error); the last good one is named. */
  public static final class CheckpointFailedException extends RuntimeException {
    CheckpointFailedException(String message, Throwable cause) {
      super(message, cause);
    }
  }

  private TrainJob() {}

  /**
   * Checkpoint intervals in the next barrier stage: {@value #STAGE_CHECKPOINTS} while fewer than 20
   * rounds were timed (the first stage's first round builds the graphs), else enough for about
   * {@value #STAGE_SECONDS} s at the mean time of the last 100 rounds, and at least {@value #STAGE_CHECKPOINTS}.
   */
  static int stageIntervals(List<Result.RoundTime> rounds, long checkpointEvery) {
    if (rounds.size() < 20) {
      return STAGE_CHECKPOINTS;
    }
    double seconds = rounds.subList(Math.max(1, rounds.size() - 100), rounds.size()).stream()
        .mapToDouble(Result.RoundTime::seconds).average().orElse(0);
    double intervals = Math.ceil(STAGE_SECONDS / (seconds * checkpointEvery));
    return (int) Math.max(STAGE_CHECKPOINTS, Math.min(Integer.MAX_VALUE, intervals));
  }

  public static Result run(PipelineConfig config, SparkSession spark, boolean resume, boolean showProgress) {
    return run(config, spark, resume, showProgress, null);
  }

  /**
   * Plans the run from the records, restores a checkpoint ({@code resume}) or starts fresh, opens the
   * MLflow run, trains round by round, and finishes with the pictures and artifacts.
   *
   * @param factoryOverride a model factory to use instead of the config's model (tests' small models)
   */
  public static Result run(
      PipelineConfig config, SparkSession spark, boolean resume, boolean showProgress, ModelFactory factoryOverride) {
    try (Session session = new Session(config, spark, showProgress, factoryOverride)) {
      session.restore(resume);
      session.startTracking();
      return session.train();
    }
  }

  /** One call of {@link #run}: its phases in order, and what they hand to each other. */
  private static final class Session implements AutoCloseable {
    private final PipelineConfig config;
    private final SparkSession spark;
    private final boolean showProgress;
    private final TrainSettings ts;
    private final Configuration conf;
    private final JavaSparkContext jsc;
    private final Path recordsDir;
    private final Path runDir;
    private final Manifest.Checked checked;
    private final Manifest manifest;
    private final ModelFactory factory;
    private final DataPlan plan;
    private final long totalSteps;
    private final String configYaml;
    private final TrainableModel driverModel;
    // where training stands: what a checkpoint records
    private ModelState state;
    private long step;
    private long round;
    private long examples;
    private final List<Checkpoint.HistoryPoint> history = new ArrayList<>();
    private Path resumedFrom;
    private String resumedRunId;
    private Path lastCheckpoint;
    // this session's tracking and timing
    private ResilientTracker tracker;
    private String experiment;
    private Tracker.Status status = Tracker.Status.FAILED;
    private Broadcast<RoundJob> jobOnce;
    private BarrierAveraging barrier;
    private final List<Result.RoundTime> roundTimes = new ArrayList<>();
    private final List<String> pictures = new ArrayList<>();
    private ProgressBar bar;

    /** The plan: records, model, data slices per worker and the number of steps. */
    Session(PipelineConfig config, SparkSession spark, boolean showProgress, ModelFactory factoryOverride) {
      this.config = config;
      this.spark = spark;
      this.showProgress = showProgress;
      ts = config.requireTrain();
      conf = spark.sparkContext().hadoopConfiguration();
      jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
      recordsDir = Storage.path(ts.records());
      runDir = Storage.path(ts.output());
      checked = Manifest.readChecked(recordsDir, conf);
      manifest = checked.manifest();
      factory = factoryOverride != null ? factoryOverride
          : config.requireModel().factory(manifest.imageShape(), manifest.classes().size(), config.seed(),
              recordsDir.toString());
      plan = DataPlan.of(manifest, recordsDir, ts.split(), ts.workers(), ts.batchSizePerWorker());
      totalSteps = ts.steps() > 0 ? ts.steps() : ts.epochs() * plan.batchesPerEpoch(ts.batchSizePerWorker());
      configYaml = config.toYaml();
      driverModel = factory.create();
      state = driverModel.state();
    }

    /** The run folder's latest checkpoint when resuming (checked against the config), else a fresh start. */
    void restore(boolean resume) {
      try {
        if (resume) {
          resumedFrom = Checkpoint.latest(runDir, conf);
          if (resumedFrom == null) {
            throw new BadInputException("--resume: " + runDir + " has no complete checkpoint under " + Checkpoint.DIR
                + "/");
          }
          Checkpoint.Loaded c = Checkpoint.read(resumedFrom, conf);
          checkResumable(c, driverModel, config, resumedFrom);
          state = c.state();
          driverModel.loadState(state);
          step = c.info().step();
          round = c.info().round();
          examples = c.info().examples();
          history.addAll(c.info().history());
          resumedRunId = c.info().trackingRunId();
          lastCheckpoint = resumedFrom;
          LOG.info("resuming from {} at step {}", resumedFrom, step);
        } else if (Checkpoint.latest(runDir, conf) != null) {
          throw new BadInputException(runDir + " already holds checkpoints of a run; pass --resume to continue it"
              + " or choose another train.output");
        }
        Storage.writeAtomically(new Path(runDir, "config.yaml"), configYaml, conf);
      } catch (IOException e) {
        throw Storage.unreachable(runDir, e);
      }
      if (step >= totalSteps) {
        throw new BadInputException("nothing to do: the run is at step " + step + " of " + totalSteps
            + " (raise train.steps or train.epochs to continue it)");
      }
    }

    /** Opens the MLflow run (a resumed training goes on in the run its checkpoint names) with tags, params, config. */
    void startTracking() {
      TrackingSettings trackingSettings = config.tracking();
      tracker = ResilientTracker.open(trackingSettings);
      experiment = trackingSettings.experiment().isBlank()
          ? driverModel.name() + "-" + manifest.dataset() : trackingSettings.experiment();
      String runName = trackingSettings.runName().isBlank()
          ? driverModel.name() + "-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss"))
          : trackingSettings.runName();
      Map<String, String> tags = new LinkedHashMap<>();
      tags.put("mlflow.source.git.commit", Provenance.buildCommit());
      tags.put("genpipe.version", Provenance.version());
      tags.put("genpipe.model", driverModel.name());
      // promote names a registered model after the experiment by default
      tags.put("genpipe.experiment", experiment);
      tags.put("genpipe.data.digest", checked.dataDigest());
      tags.put("genpipe.data.manifest_sha256", checked.sha256());
      tags.put("genpipe.data.records", recordsDir.toString());
      tags.put("spark.app_id", spark.sparkContext().applicationId());
      tags.put("spark.master", spark.sparkContext().master());
      tags.put("averaging.workers", String.valueOf(ts.workers()));
      tags.put("averaging.batch_size_per_worker", String.valueOf(ts.batchSizePerWorker()));
      tags.put("averaging.frequency", String.valueOf(ts.averagingFrequency()));
      tags.put("averaging.state_transfer",
          ParameterAveraging.handsOverInProcess(jsc, ts.workers()) ? "in-process" : "serialised");
      if (resumedFrom != null) {
        tags.put("genpipe.resumed_from", resumedFrom.toString());
        tags.put("genpipe.resumed_at_step", String.valueOf(step));
        tracker.resumeOrStartRun(resumedRunId, experiment, runName, tags);
      } else {
        tracker.startRun(experiment, runName, tags);
      }
      tracker.logParams(params(config));
      tracker.logArtifact("config.yaml", Checkpoint.utf8(configYaml));
    }

    /** Rounds until the last step (or a stop signal), then the final pictures and artifacts. */
    Result train() {
      RoundJob job = new RoundJob(UUID.randomUUID().toString(), factory, plan, new HadoopConf(conf), config.seed(),
          ts.batchSizePerWorker(), ts.shuffle());
      // the run's constants travel once per executor, not with every round's tasks
      jobOnce = jsc.broadcast(job);
      ParameterAveraging averaging = new ParameterAveraging(jsc, jobOnce, ts.workers());
      if (ts.averaging().barrier()) {
        String why = BarrierAveraging.unavailable(jsc, ts.workers());
        if (why == null) {
          barrier = new BarrierAveraging(jsc, jobOnce, ts.workers(), ts.averaging().sharedMemory());
        } else {
          String message = "train.averaging.mode " + ts.averaging().mode() + ": a barrier stage cannot run here: " + why
              + "; averaging in rounds instead";
          if (ts.averaging().barrierRequired()) {
            LOG.warn(message);
          } else {
            LOG.info(message);
          }
        }
      }
      tracker.setTags(Map.of("averaging.mode", barrier != null ? "barrier" : "rounds"));
      long fixedNoise = Noise.mix(config.seed(), FIXED_NOISE_SALT, 0);
      String heldOut = manifest.counts().containsKey(ts.evalSplit()) ? ts.evalSplit() : ts.split();
      SampleMonitor monitor = ts.monitor() && driverModel instanceof GenerativeModel ? SampleMonitor.create(recordsDir,
          manifest, checked.dataDigest(), heldOut, config.requireEvaluate().domain(), config.seed(),
          Storage.path(config.requireEvaluate().cache()), conf, showProgress) : null;
      // the same held-out records at every sample point: pairs to translate, records to read, or texts to draw
      Minibatch fixedPairs = driverModel instanceof ImageConditioned
          ? heldOutBatch(manifest, recordsDir, heldOut, FIXED_PAIRS, driverModel, conf)
          : driverModel instanceof GenerativeModel g && g.textAlphabet() == null ? null
          : heldOutBatch(manifest, recordsDir, heldOut, HELD_OUT_SAMPLE, driverModel, conf);
      long started = System.nanoTime();
      bar = showProgress ? progressBar(totalSteps, step) : null;
      try (StopSignal stop = StopSignal.install()) {
        Runnable samples = () -> {
          driverModel.loadState(state);
          try {
            pictures.add(writeSamples(driverModel, fixedNoise, fixedPairs, runDir, step, conf, tracker,
                manifest.classes(), monitor));
          } catch (IOException e) {
            throw Storage.unreachable(runDir, e);
          }
        };
        while (step < totalSteps) {
          if (barrier != null) {
            stage(barrier, stop, samples);
          } else {
            long before = step;
            int n = (int) Math.min(ts.averagingFrequency(), totalSteps - step);
            long roundStart = System.nanoTime();
            RoundResult r = averaging.round(new RoundJob.Input(state, step, n));
            accept(r, r.averagedState(), n, (System.nanoTime() - roundStart) / 1e9);
            afterRound(before, stop, samples);
          }
        }
        if (bar != null) {
          bar.close();
          bar = null;
        }
        return finish((System.nanoTime() - started) / 1e9, fixedNoise, fixedPairs, monitor);
      } catch (IOException e) {
        throw Storage.unreachable(runDir, e);
      }
    }

    /**
     * After a round whose averaged state the driver has: the sample grid where one is due, the
     * checkpoint where one is due (or the run ends, or a stop signal came), and the stop.
     */
    private void afterRound(long before, StopSignal stop, Runnable samples) {
      if (samplesDue(before, step) && step < totalSteps) {
        samples.run();
      }
      if (round % ts.checkpointEvery() == 0 || step >= totalSteps || stop.requested()) {
        checkpoint();
      }
      if (stop.requested() && step < totalSteps) {
        status = Tracker.Status.KILLED;
        throw new StoppedException(stop.name() + ": stopped after step " + step + " of " + totalSteps
            + "; checkpoint " + lastCheckpoint + "; MLflow run " + tracker.runId() + " marked KILLED. Continue"
            + " with the same command and --resume", stop.exitCode());
      }
    }

    /** Whether a sample grid is due after the round from step {@code before} to {@code after}. */
    private boolean samplesDue(long before, long after) {
      return ts.sampleEvery() > 0 && after / ts.sampleEvery() > before / ts.sampleEvery();
    }

    /**
     * The next rounds as one barrier stage: to the end of the run, or {@link #stageIntervals}
     * checkpoint intervals (each stage has Spark's attempts, spark.stage.maxConsecutiveAttempts, to
     * itself). Worker 0 reports the rounds as they end; each is accepted as a rounds-mode round is (its
     * wall time: worker 0's; the stage's first round's since the stage was submitted), and the rounds
     * that carry the averaged state (checkpoints, sample grids, the last) are followed by what follows
     * a round in rounds mode, while the workers go on. A stop signal ends the stage after the round then running.
     */
    private void stage(BarrierAveraging barrier, StopSignal stop, Runnable samples) {
      java.util.BitSet stateRounds = new java.util.BitSet();
      int rounds = 0;
      int checkpoints = 0;
      long s = step;
      long r = round;
      int intervals = stageIntervals(roundTimes, ts.checkpointEvery());
      while (s < totalSteps && checkpoints < intervals) {
        long b = s;
        s += Math.min(ts.averagingFrequency(), totalSteps - s);
        r++;
        if (r % ts.checkpointEvery() == 0) {
          checkpoints++;
          stateRounds.set(rounds);
        }
        if (samplesDue(b, s)) {
          stateRounds.set(rounds);
        }
        rounds++;
      }
      long stageStart = System.nanoTime();
      long firstRound = round;
      barrier.run(new BarrierAveraging.Stage(state, step, rounds, ts.averagingFrequency(), totalSteps, stateRounds),
          reported -> {
            long before = step;
            // the stage's first round from its submission (Spark starting the tasks included); the others as
            // worker 0 timed them (report to report: the driver gets them a few at a time)
            double seconds = round == firstRound ? (System.nanoTime() - stageStart) / 1e9 : reported.nanos() / 1e9;
            accept(reported.result(), reported.state(), reported.result().steps(), seconds);
            if (reported.state() != null) {
              afterRound(before, stop, samples);
            }
          }, stop::requested);
    }

    /** Takes an averaged state as the run's, or stops a run whose average became non-finite at {@code atStep}. */
    private void adopt(ModelState averaged, long atStep) {
      if (averaged.firstNonFinite() != null) {
        throw diverged("parameter array '" + averaged.firstNonFinite() + "' became non-finite after averaging at step "
            + atStep);
      }
      state = averaged;
    }

    private DivergedException diverged(String what) {
      return new DivergedException("training diverged: " + what + "; the last good checkpoint is "
          + (lastCheckpoint == null ? "none (no checkpoint was written yet)" : lastCheckpoint.toString()));
    }

    /**
     * Takes a round's averaged state ({@code null}: a round inside a barrier stage, whose state only
     * the stage's end brings), or stops a run that diverged; logs the round's losses and timings.
     */
    private void accept(RoundResult r, ModelState averaged, int n, double roundSeconds) {
      if (r.nonFinite() != null) {
        throw diverged(r.nonFinite());
      }
      if (averaged != null) {
        adopt(averaged, step + n - 1);
      }
      roundTimes.add(new Result.RoundTime(roundSeconds, r.maxComputeNanos() / 1e9));
      List<Tracker.Metric> metrics = new ArrayList<>();
      long now = System.currentTimeMillis();
      Map<String, Double> last = null;
      for (int i = 0; i < r.steps(); i++) {
        last = r.meanLosses(i);
        history.add(new Checkpoint.HistoryPoint(step + i, last));
        for (Map.Entry<String, Double> e : last.entrySet()) {
          metrics.add(new Tracker.Metric(e.getKey(), e.getValue(), step + i, now));
        }
      }
      double imagesPerSecond = r.examples() / roundSeconds;
      metrics.add(new Tracker.Metric("images_per_second", imagesPerSecond, step + n - 1, now));
      metrics.add(new Tracker.Metric("round_seconds", roundSeconds, step + n - 1, now));
      // the slowest worker's compute: round_seconds minus this is the round's averaging overhead
      metrics.add(new Tracker.Metric("round_compute_seconds", r.maxComputeNanos() / 1e9, step + n - 1, now));
      tracker.logMetrics(metrics);
      step += n;
      round++;
      examples += r.examples();
      if (bar != null) {
        bar.stepTo(step);
        bar.setExtraMessage(describe(last, imagesPerSecond));
      }
    }

    /**
     * Writes the checkpoint of this step or stops the run: a training that cannot checkpoint would lose
     * everything after the last good checkpoint, which stays as it was (a checkpoint is staged and
     * renamed whole). Old checkpoints that cannot be deleted are only a warning.
     */
    private void checkpoint() {
      Checkpoint c = new Checkpoint(Checkpoint.FORMAT, driverModel.name(), driverModel.imageShape(), step, round,
          examples, config.seed(), Checkpoint.RNG_SCHEME, configYaml, recordsDir.toString(), checked.dataDigest(),
          Provenance.capture(spark.version(), config.seed(), ConfigLoader.toTree(config)), history, tracker.runId(),
          manifest.classes());
      try {
        lastCheckpoint = c.write(runDir, state, conf);
      } catch (IOException | RuntimeException e) {
        throw new CheckpointFailedException("cannot write the checkpoint of step " + step + " to "
            + Checkpoint.folder(runDir, step) + ": " + Storage.rootCause(e) + "; the run stops here (MLflow run "
            + tracker.runId() + " marked FAILED). The last good checkpoint is " + (lastCheckpoint == null
                ? "none (no checkpoint was written yet): fix the cause and start again"
                : lastCheckpoint + ": fix the cause and continue with the same command and --resume"), e);
      }
      try {
        Checkpoint.prune(runDir, ts.keepCheckpoints(), conf);
      } catch (IOException | RuntimeException e) {
        LOG.warn("could not delete old checkpoints under {}: {}", new Path(runDir, Checkpoint.DIR), e.toString());
      }
    }

    /** The last samples, the animation, the model's reports, the loss plot, the model artifact; the run FINISHED. */
    private Result finish(double seconds, long fixedNoise, Minibatch fixedPairs, SampleMonitor monitor)
        throws IOException {
      double compute = roundTimes.stream().mapToDouble(Result.RoundTime::computeSeconds).sum();
      driverModel.loadState(state);
      pictures.add(writeSamples(driverModel, fixedNoise, fixedPairs, runDir, step, conf, tracker, manifest.classes(),
          monitor));
      pictures.add(writeAnimation(runDir, conf, tracker));
      pictures.addAll(writeReports(driverModel, manifest, recordsDir, ts, config.seed(), runDir, conf, tracker));
      pictures.add(writeLossPlot(history, driverModel.name(), runDir, conf, tracker));
      for (String f : List.of(Checkpoint.STATE, Checkpoint.INFO)) {
        tracker.logArtifact("model/" + f, readBytes(new Path(lastCheckpoint, f), conf));
      }
      tracker.logMetrics(List.of(
          new Tracker.Metric("train_seconds", seconds, step, System.currentTimeMillis()),
          new Tracker.Metric("averaging_overhead", Result.overhead(seconds, compute), step,
              System.currentTimeMillis())));
      status = Tracker.Status.FINISHED;
      tracker.endRun(status);
      String notLogged = tracker.finish(60, TrackingSpool.beside(runDir));
      return new Result(runDir, step, examples, state, lastCheckpoint, experiment, tracker.location(),
          seconds, notLogged, pictures, roundTimes);
    }

    /** A run that did not finish is marked FAILED (or KILLED by a signal), and what it could not log is kept. */
    @Override
    public void close() {
      if (bar != null) {
        bar.close();
      }
      if (tracker != null) {
        if (status != Tracker.Status.FINISHED) {
          tracker.endRun(status);
          String notLogged = tracker.finish(10, TrackingSpool.beside(runDir));
          if (notLogged != null) {
            LOG.warn(notLogged);
          }
        }
        tracker.close();
      }
      driverModel.close();
      if (barrier != null) {
        try {
          barrier.close();
        } catch (IOException e) {
          LOG.debug("closing the barrier coordinator: {}", e.toString());
        }
      }
      if (jobOnce != null) {
        jobOnce.destroy();
      }
    }
  }

  private static void checkResumable(Checkpoint.Loaded c, TrainableModel model, PipelineConfig config, Path dir) {
    if (!c.info().model().equals(model.name())) {
      throw new BadInputException(dir + " is a checkpoint of model " + c.info().model() + ", the config trains "
          + model.name());
    }
    if (c.info().seed() != config.seed()) {
      throw new BadInputException(dir + " was trained with seed " + c.info().seed() + ", the config has seed "
          + config.seed() + "; resuming with another seed would not continue the same run");
    }
    try {
      model.loadState(c.state());
    } catch (IllegalArgumentException e) {
      throw new BadInputException(dir + ": " + e.getMessage(), e);
    }
  }

  /** Config values as flat MLflow params (model.*, train.*, seed). */
  static Map<String, String> params(PipelineConfig config) {
    Map<String, String> out = new LinkedHashMap<>();
    out.put("seed", String.valueOf(config.seed()));
    // the chosen model's own section only (a beta-VAE run has no GAN settings to compare)
    com.fasterxml.jackson.databind.JsonNode model = ConfigLoader.toTree(config.model());
    out.put("model.name", config.model().name());
    String section = config.model().section();
    flatten("model." + section, model.get(section), out);
    flatten("train", ConfigLoader.toTree(config.train()), out);
    return out;
  }

  private static void flatten(String prefix, com.fasterxml.jackson.databind.JsonNode node, Map<String, String> out) {
    if (node == null || node.isNull()) {
      return;
    }
    if (node.isObject()) {
      Iterator<Map.Entry<String, com.fasterxml.jackson.databind.JsonNode>> it = node.fields();
      while (it.hasNext()) {
        Map.Entry<String, com.fasterxml.jackson.databind.JsonNode> e = it.next();
        flatten(prefix + "." + e.getKey(), e.getValue(), out);
      }
    } else {
      out.put(prefix, node.isArray() ? node.toString() : node.asText());
    }
  }

  private static ProgressBar progressBar(long total, long start) {
    ProgressBar bar = new ProgressBarBuilder()
        .setTaskName("train")
        .setInitialMax(total)
        .setUnit(" steps", 1)
        .setStyle(ProgressBarStyle.ASCII)
        .showSpeed()
        .setUpdateIntervalMillis(1000)
        .continuousUpdate()
        .build();
    bar.stepTo(start);
    return bar;
  }

  private static String describe(Map<String, Double> losses, double imagesPerSecond) {
    StringBuilder sb = new StringBuilder();
    if (losses != null) {
      losses.forEach((k, v) -> sb.append(k.length() > 8 ? k.substring(0, 8) : k).append(' ')
          .append(String.format("%.4g", v)).append(' '));
    }
    return sb.append(String.format("| %,.0f img/s", imagesPerSecond)).toString();
  }

  /**
   * The fixed-noise grid of {@code step}: 8 x 8 samples, or for conditional models one row of 8 per
   * class (up to 10 classes) captioned with the class name, or for text-conditioned models one row per
   * text (up to 10 distinct texts of the held-out records), or for image-conditioned models the same
   * held-out pairs as (condition | generated | target) rows; with the monitor's warning signs logged.
   * A model that reads images instead (the CAPTCHA reader) shows its picture of the held-out records
   * and logs its measures on them as {@code held_out_<name>}.
   */
  private static String writeSamples(TrainableModel trained, long noiseSeed, Minibatch fixedPairs, Path runDir,
      long step, Configuration conf, ResilientTracker tracker, List<String> classNames, SampleMonitor monitor)
      throws IOException {
    String name = String.format("%s/step-%08d.png", SAMPLES_DIR, step);
    if (!(trained instanceof GenerativeModel model)) {
      // a model that reads images: its picture of the held-out records and its measures on them
      long now = System.currentTimeMillis();
      List<Tracker.Metric> metrics = new ArrayList<>();
      trained.heldOut(fixedPairs).forEach((k, v) -> metrics.add(new Tracker.Metric("held_out_" + k, v, step, now)));
      tracker.logMetrics(metrics);
      LOG.info("step {} on {} held-out records: {}", step, fixedPairs.size(), metrics.stream()
          .map(m -> m.key() + " " + String.format("%.4f", m.value())).collect(java.util.stream.Collectors.joining(", ")));
      writePicture(trained.reports(fixedPairs, classNames, noiseSeed).values().iterator().next(), name, runDir, conf,
          tracker);
      return name;
    }
    if (model instanceof ImageConditioned ic) {
      INDArray cond = ic.conditions(fixedPairs);
      INDArray generated = model.generate(fixedPairs.size(), noiseSeed, Condition.ofImages(cond));
      writePicture(ImageConditioned.triplets(cond, generated, ic.targets(fixedPairs), model.pixelRange(),
          ic.conditionName()), name, runDir, conf,
          tracker);
      return name;
    }
    // rows of 8 for up to 10 classes, or up to 10 texts of the held-out records; else 64 unconditional samples
    List<String> rows = new ArrayList<>();
    if (model.textAlphabet() != null) {
      fixedPairs.texts().stream().distinct().limit(10).sorted().forEach(rows::add);
    } else {
      for (int c = 0; c < Math.min(model.classCount(), 10); c++) {
        rows.add(c < classNames.size() ? classNames.get(c) : String.valueOf(c));
      }
    }
    int n = rows.isEmpty() ? 64 : 8 * rows.size();
    Condition condition = null;
    if (model.textAlphabet() != null) {
      List<String> texts = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        texts.add(rows.get(i / 8));
      }
      condition = new Condition(null, texts, null);
    } else if (!rows.isEmpty()) {
      int[] labels = new int[n];
      for (int i = 0; i < n; i++) {
        labels[i] = i / 8;
      }
      condition = Condition.ofLabels(labels);
    }
    INDArray images = model.generate(n, noiseSeed, condition);
    ImageGrid grid = new ImageGrid(8, 56);
    for (int i = 0; i < n; i++) {
      grid.add(Images.fromUnitFloats(images, i), !rows.isEmpty() && i % 8 == 0 ? rows.get(i / 8) : null);
    }
    writePicture(grid.render(), name, runDir, conf, tracker);
    if (monitor != null) {
      long now = System.currentTimeMillis();
      List<Tracker.Metric> metrics = new ArrayList<>();
      Map<String, Double> signs = monitor.measure(model, noiseSeed);
      signs.forEach((key, v) -> metrics.add(new Tracker.Metric(key, v, step, now)));
      tracker.logMetrics(metrics);
      String warning = SampleMonitor.warning(signs);
      if (warning != null) {
        LOG.warn("step {}: {}", step, warning);
      }
      LOG.info("step {} samples: {}", step, metrics.stream()
          .map(m -> m.key() + " " + String.format("%.3f", m.value())).collect(java.util.stream.Collectors.joining(", ")));
    }
    return name;
  }

  /** {@code samples.gif}: every sample grid of the run folder in step order (resumed runs included). */
  private static String writeAnimation(Path runDir, Configuration conf, ResilientTracker tracker) throws IOException {
    Path dir = new Path(runDir, SAMPLES_DIR);
    var fs = Storage.fs(dir, conf);
    List<Path> files = new ArrayList<>();
    for (var st : fs.listStatus(dir)) {
      if (st.getPath().getName().matches("step-\\d+\\.png")) {
        files.add(st.getPath());
      }
    }
    files.sort(java.util.Comparator.comparing(Path::getName));
    List<BufferedImage> frames = new ArrayList<>();
    for (Path f : files) {
      frames.add(Images.decode(readBytes(f, conf)));
    }
    byte[] gif = AnimatedGif.encode(frames, 400, 2000);
    String name = "samples.gif";
    Storage.writeAtomically(new Path(runDir, name), gif, conf);
    tracker.logArtifact(name, gif);
    return name;
  }

  private static List<String> writeReports(TrainableModel model, Manifest manifest, Path recordsDir,
      TrainSettings ts, long seed, Path runDir, Configuration conf, ResilientTracker tracker) throws IOException {
    String split = manifest.counts().containsKey(ts.evalSplit()) ? ts.evalSplit() : ts.split();
    int count = (int) Math.max(16, Math.min(REPORT_SAMPLE, REPORT_FLOATS / (2L * manifest.imageShape().pixels())));
    Minibatch batch = heldOutBatch(manifest, recordsDir, split, count, model, conf);
    List<String> names = new ArrayList<>();
    for (Map.Entry<String, BufferedImage> e : model.reports(batch, manifest.classes(), seed).entrySet()) {
      writePicture(e.getValue(), e.getKey(), runDir, conf, tracker);
      names.add(e.getKey());
    }
    return names;
  }

  /** The first {@code n} records of {@code split} as a batch in the model's pixel range. */
  private static Minibatch heldOutBatch(Manifest manifest, Path recordsDir, String split, int n, TrainableModel model,
      Configuration conf) {
    List<ImageRecord> sample = new ArrayList<>();
    Iterator<ImageRecord> it = ShardReader.read(manifest.shardPaths(recordsDir, split), conf);
    while (it.hasNext() && sample.size() < n) {
      sample.add(it.next());
    }
    return Minibatch.of(sample, model.pixelRange());
  }

  private static String writeLossPlot(List<Checkpoint.HistoryPoint> history, String model, Path runDir,
      Configuration conf, ResilientTracker tracker) throws IOException {
    Map<String, List<double[]>> series = new LinkedHashMap<>();
    for (Checkpoint.HistoryPoint p : history) {
      p.losses().forEach((k, v) -> series.computeIfAbsent(k, x -> new ArrayList<>()).add(new double[] {p.step(), v}));
    }
    writePicture(LinePlot.render(model + " losses (mean over workers)", "step", series), "loss.png", runDir, conf,
        tracker);
    return "loss.png";
  }

  private static void writePicture(BufferedImage image, String name, Path runDir, Configuration conf,
      ResilientTracker tracker) throws IOException {
    byte[] png = Images.encodePng(image);
    Storage.writeAtomically(new Path(runDir, name), png, conf);
    tracker.logArtifact(name, png);
  }

  private static byte[] readBytes(Path p, Configuration conf) throws IOException {
    try (var in = Storage.fs(p, conf).open(p)) {
      return in.readAllBytes();
    }
  }
}
