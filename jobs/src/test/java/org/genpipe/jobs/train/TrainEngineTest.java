package org.genpipe.jobs.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.io.Storage;
import org.genpipe.common.records.ImageRecord;
import org.genpipe.common.records.ImageShape;
import org.genpipe.common.records.Manifest;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.PixelRange;
import org.genpipe.jobs.DigitRecords;
import org.genpipe.jobs.FaultyFileSystem;
import org.genpipe.jobs.SparkTestSession;
import org.genpipe.jobs.checkpoint.Checkpoint;
import org.genpipe.jobs.config.PipelineConfig;
import org.genpipe.jobs.preprocess.PreprocessJob;
import org.genpipe.models.GenerativeModel;
import org.genpipe.models.ModelFactory;
import org.genpipe.models.ModelState;
import org.genpipe.models.nn.OptimizerSettings;
import org.genpipe.models.testing.TinyAutoencoder;
import org.genpipe.models.testing.TinyGan;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The parameter-averaging engine on Spark local[2,2] (two threads, a failed task tried twice) against
 * the single-machine loop.
 */
class TrainEngineTest {
  static final ImageShape SHAPE = new ImageShape(28, 28, 1);
  static SparkSession spark;
  @TempDir static Path dir;
  static Path records;

  @BeforeAll
  static void start() {
    spark = SparkTestSession.start("local[2,2]", Map.of());
    records = dir.resolve("records");
    PipelineConfig pre = PipelineConfig.load(null, DigitRecords.preprocess(records, 400, 100));
    PreprocessJob.run(pre, spark, false);
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  static PipelineConfig config(String run, String... more) {
    List<String> o = new ArrayList<>(List.of(
        "model.betaVae.latentSize=4", "train.records=" + records, "train.output=" + dir.resolve(run),
        "train.batchSizePerWorker=16", "train.averagingFrequency=5", "train.sampleEvery=0",
        "train.checkpointEvery=1", "tracking.uri=" + dir.resolve("mlruns")));
    o.addAll(List.of(more));
    return PipelineConfig.load(null, o);
  }

  static Configuration conf() {
    return spark.sparkContext().hadoopConfiguration();
  }

  static WorkerData data(PipelineConfig c, int workers, int worker) throws Exception {
    Manifest m = Manifest.read(Storage.path(records.toString()), conf());
    DataPlan plan = DataPlan.of(m, Storage.path(records.toString()), "train", workers, c.train().batchSizePerWorker());
    return WorkerData.load(worker, plan.workers().get(worker), conf(), c.seed(), c.train().shuffle());
  }

  @Test
  void oneWorkerOnSparkGivesTheParametersOfTheSingleMachineLoop() throws Exception {
    PipelineConfig c = config("one", "train.workers=1", "train.steps=15");
    TrainJob.Result r = TrainJob.run(c, spark, false, false);

    ModelFactory f = c.model().factory(SHAPE, 0, c.seed(), "test");
    GenerativeModel model = (GenerativeModel) f.create();
    Worker single = new Worker(0, model, data(c, 1, 0), 16, c.seed());
    ModelState local = single.run(model.state(), 0, 15).averagedState();
    assertThat(r.steps()).isEqualTo(15);
    assertThat(r.examples()).isEqualTo(15 * 16);
    assertThat(r.state().maxAbsDiff(local)).isLessThanOrEqualTo(1e-6);
    // a barrier stage of one task, averaging (a no-op) in the model's memory
    assertThat(Path.of(r.trackingLocation()).resolve("tags/averaging.mode")).hasContent("barrier");
  }

  /**
   * A barrier stage's kept states: exported into two sets of arrays in turn, never into the one kept
   * now (a retried attempt may be reading it), and a set is handed over (to wait for its report to
   * go out) before it is written again.
   */
  @Test
  void keptStatesAlternateBetweenTwoSetsOfArraysAndWaitBeforeOneIsOverwritten() throws Exception {
    PipelineConfig c = config("keep", "train.workers=1");
    GenerativeModel model = (GenerativeModel) new TinyAutoencoder.Factory(SHAPE, OptimizerSettings.sgd(0.5), 7).create();
    Worker w = new Worker(0, model, data(c, 1, 0), 8, c.seed());
    List<ModelState> handedOver = new ArrayList<>();
    ModelState a = w.keepState(0, handedOver::add);
    ModelState atZero = a.copy();
    w.runInPlace(0, 2);
    ModelState b = w.keepState(2, handedOver::add);
    assertThat(b).isNotSameAs(a);
    assertThat(a.maxAbsDiff(atZero)).isZero();
    assertThat(b.maxAbsDiff(model.state())).isZero();
    assertThat(b.maxAbsDiff(atZero)).isGreaterThan(1e-4);
    assertThat(w.kept(2)).isSameAs(b);
    assertThat(w.kept(0)).isNull();
    assertThat(handedOver).isEmpty();
    ModelState atTwo = b.copy();
    w.runInPlace(2, 2);
    ModelState again = w.keepState(4, handedOver::add);
    assertThat(again).isSameAs(a);
    assertThat(handedOver).containsExactly(a);
    assertThat(b.maxAbsDiff(atTwo)).isZero();
    assertThat(again.maxAbsDiff(model.state())).isZero();
    assertThat(w.kept(4)).isSameAs(a);
  }

  /** 2 and 3 workers: one runJob merged on the driver in partition order; 6: Spark's treeAggregate with an intermediate level. */
  @ParameterizedTest
  @ValueSource(ints = {2, 3, 6})
  void workersAveragingEveryStepWithSgdEqualOneMachineWithTheCombinedBatch(int workers) throws Exception {
    ModelFactory f = new TinyAutoencoder.Factory(SHAPE, OptimizerSettings.sgd(0.5), 7);
    PipelineConfig c = config("sgd" + workers, "train.workers=" + workers, "train.averagingFrequency=1", "train.steps=6",
        "train.shuffle=false", "train.batchSizePerWorker=8");
    TrainJob.Result r = TrainJob.run(c, spark, false, false, f);

    GenerativeModel big = (GenerativeModel) f.create();
    List<WorkerData> slices = new ArrayList<>();
    for (int w = 0; w < workers; w++) {
      slices.add(data(c, workers, w));
    }
    for (int k = 0; k < 6; k++) {
      List<ImageRecord> batch = new ArrayList<>();
      for (WorkerData d : slices) {
        batch.addAll(d.batchRecords(k, 8));
      }
      big.trainStep(Minibatch.of(batch, PixelRange.ZERO_ONE), k, 0);
    }
    assertThat(r.state().maxAbsDiff(big.state())).isLessThanOrEqualTo(1e-6);
    // and it really moved: not the initial state
    assertThat(r.state().maxAbsDiff(f.create().state())).isGreaterThan(1e-4);
  }

  @Test
  void resumeContinuesExactlyAsAStraightRun() throws Exception {
    TrainJob.Result straight = TrainJob.run(config("straight", "train.steps=20"), spark, false, false);
    TrainJob.Result first = TrainJob.run(config("resumed", "train.steps=10"), spark, false, false);
    assertThat(first.steps()).isEqualTo(10);
    TrainJob.Result second = TrainJob.run(config("resumed", "train.steps=20"), spark, true, false);
    assertThat(second.steps()).isEqualTo(20);
    assertThat(second.examples()).isEqualTo(straight.examples()).isEqualTo(20L * 16 * 2);
    assertThat(second.state().maxAbsDiff(straight.state())).isZero();
    // the checkpoint holds the whole run's loss history
    Checkpoint.Loaded last = Checkpoint.read(second.checkpoint(), conf());
    assertThat(last.info().history()).hasSize(20);
    assertThat(last.info().step()).isEqualTo(20);
    assertThat(last.info().dataDigest()).hasSize(64);
    assertThat(last.info().provenance().gitCommit()).isNotBlank();
    // one training, one MLflow run: the resume went on in the first run, FINISHED again, loss at every step once
    assertThat(second.trackingLocation()).isEqualTo(first.trackingLocation());
    java.nio.file.Path mlrun = java.nio.file.Path.of(second.trackingLocation());
    assertThat(java.nio.file.Files.readString(mlrun.resolve("meta.yaml"))).contains("status: 3")
        .doesNotContain("end_time: null");
    List<Long> steps = java.nio.file.Files.readAllLines(mlrun.resolve("metrics/loss")).stream()
        .map(l -> Long.parseLong(l.split(" ")[2])).toList();
    assertThat(steps).containsExactlyElementsOf(java.util.stream.LongStream.range(0, 20).boxed().toList());
    // MLflow params cannot change: the raised train.steps is a tag
    assertThat(mlrun.resolve("params/train.steps")).hasContent("10");
    assertThat(mlrun.resolve("tags/genpipe.resume.param.train.steps")).hasContent("10 -> 20");
    assertThat(mlrun.resolve("tags/genpipe.resumed_at_step")).hasContent("10");
  }

  @Test
  void resumeAndRestartAreCheckedAgainstWhatIsInTheRunFolder() {
    assertThatThrownBy(() -> TrainJob.run(config("nothing", "train.steps=5"), spark, true, false))
        .isInstanceOf(BadInputException.class).hasMessageContaining("no complete checkpoint");
    TrainJob.run(config("twice", "train.steps=5"), spark, false, false);
    assertThatThrownBy(() -> TrainJob.run(config("twice", "train.steps=10"), spark, false, false))
        .isInstanceOf(BadInputException.class).hasMessageContaining("--resume");
    assertThatThrownBy(() -> TrainJob.run(config("twice", "train.steps=10", "seed=7"), spark, true, false))
        .isInstanceOf(BadInputException.class).hasMessageContaining("seed");
  }

  @Test
  void aNonFiniteLossStopsTheRunNamingLossAndStepAndKeepsTheLastGoodCheckpoint() throws Exception {
    ModelFactory f = new FaultAt.Factory(new TinyAutoencoder.Factory(SHAPE, OptimizerSettings.sgd(0.1), 1), 7, false);
    PipelineConfig c = config("nan", "train.steps=20", "train.averagingFrequency=2");
    assertThatThrownBy(() -> TrainJob.run(c, spark, false, false, f))
        .isInstanceOf(TrainJob.DivergedException.class)
        .hasMessageContaining("loss loss = NaN at step 7")
        .hasMessageContaining("step-00000006");
    List<org.apache.hadoop.fs.Path> kept = Checkpoint.list(Storage.path(dir.resolve("nan").toString()), conf());
    assertThat(kept.get(kept.size() - 1).getName()).isEqualTo("step-00000006");
  }

  /**
   * train.averaging.mode barrier: the rounds between two checkpoints run as one barrier stage whose
   * workers average among themselves over TCP; the parameters (Adam's moments included), the examples
   * and every step's loss equal rounds mode's bit for bit, straight or resumed. Three workers on two
   * task slots cannot run as one barrier stage: rounds mode runs instead, and the run says so; auto
   * picks barrier for two workers and rounds for three.
   */
  @Test
  void barrierStagesGiveTheParametersOfRoundsModeBitForBit() throws Exception {
    String[] same = {"train.steps=23", "train.averagingFrequency=2", "train.checkpointEvery=3"};
    TrainJob.Result rounds = TrainJob.run(config("mode-rounds", concat(same, "train.averaging.mode=rounds")), spark,
        false, false);
    TrainJob.Result barrier = TrainJob.run(config("mode-barrier", concat(same, "train.averaging.mode=barrier")), spark,
        false, false);
    assertThat(barrier.steps()).isEqualTo(23);
    assertThat(barrier.examples()).isEqualTo(rounds.examples()).isEqualTo(23L * 16 * 2);
    assertThat(barrier.state().maxAbsDiff(rounds.state())).isZero();
    assertThat(Checkpoint.read(barrier.checkpoint(), conf()).info().history())
        .isEqualTo(Checkpoint.read(rounds.checkpoint(), conf()).info().history());
    assertThat(barrier.rounds()).hasSize(12); // 11 rounds of 2 steps and one of 1, in 4 stages
    assertThat(Path.of(barrier.trackingLocation()).resolve("tags/averaging.mode")).hasContent("barrier");
    // the workers (tasks of this JVM, one host) through shared memory above where the host has it; over TCP here
    TrainJob.Result tcp = TrainJob.run(config("mode-barrier-tcp", concat(same, "train.averaging.mode=barrier",
        "train.averaging.sharedMemory=false")), spark, false, false);
    assertThat(tcp.state().maxAbsDiff(rounds.state())).isZero();

    TrainJob.run(config("mode-barrier-resumed", "train.steps=10", "train.averagingFrequency=2",
        "train.checkpointEvery=3", "train.averaging.mode=barrier"), spark, false, false);
    TrainJob.Result resumed = TrainJob.run(config("mode-barrier-resumed", concat(same, "train.averaging.mode=barrier")),
        spark, true, false);
    assertThat(resumed.state().maxAbsDiff(rounds.state())).isZero();

    TrainJob.Result fellBack = TrainJob.run(config("mode-barrier-3", "train.steps=4", "train.workers=3",
        "train.averaging.mode=barrier"), spark, false, false);
    assertThat(Path.of(fellBack.trackingLocation()).resolve("tags/averaging.mode")).hasContent("rounds");
    // auto: barrier stages where they can run, rounds where not
    TrainJob.Result auto2 = TrainJob.run(config("mode-auto-2", "train.steps=4", "train.averaging.mode=auto"), spark,
        false, false);
    assertThat(Path.of(auto2.trackingLocation()).resolve("tags/averaging.mode")).hasContent("barrier");
    TrainJob.Result auto3 = TrainJob.run(config("mode-auto-3", "train.steps=4", "train.workers=3",
        "train.averaging.mode=auto"), spark, false, false);
    assertThat(Path.of(auto3.trackingLocation()).resolve("tags/averaging.mode")).hasContent("rounds");
    assertThatThrownBy(() -> config("mode-bad", "train.averaging.mode=allreduce"))
        .hasMessageContaining("train.averaging.mode").hasMessageContaining("auto, barrier, rounds");
  }

  @Test
  void laterBarrierStagesRunForAboutTenMinutesOfWholeCheckpointIntervals() {
    List<TrainJob.Result.RoundTime> rounds = new ArrayList<>();
    rounds.add(new TrainJob.Result.RoundTime(30, 1)); // the first round builds the graphs: not counted
    for (int i = 0; i < 18; i++) {
      rounds.add(new TrainJob.Result.RoundTime(0.01, 0.009));
    }
    assertThat(TrainJob.stageIntervals(rounds, 50)).as("too few rounds timed").isEqualTo(TrainJob.STAGE_CHECKPOINTS);
    rounds.add(new TrainJob.Result.RoundTime(0.01, 0.009));
    // 0.01 s a round, 50 rounds an interval: 600 s are 1,200 intervals
    assertThat(TrainJob.stageIntervals(rounds, 50)).isEqualTo(1200);
    for (int i = 0; i < 100; i++) {
      rounds.add(new TrainJob.Result.RoundTime(10, 9.9)); // only the last 100 rounds count
    }
    assertThat(TrainJob.stageIntervals(rounds, 50)).as("at least").isEqualTo(TrainJob.STAGE_CHECKPOINTS);
    assertThat(TrainJob.stageIntervals(rounds, 3)).isEqualTo(20);
  }

  private static String[] concat(String[] a, String... b) {
    String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  /**
   * A disk that fills up while the checkpoint of step 10 is written (a fault-injecting Hadoop file
   * system: a full disk cannot be had on demand): the run stops naming the checkpoint, the cause and
   * the last good checkpoint, leaves no partial folder, marks the MLflow run FAILED, and a resume
   * from that checkpoint ends where a run that never failed ends.
   */
  @Test
  void aCheckpointThatCannotBeWrittenStopsTheRunAndTheLastGoodOneStillResumes() throws Exception {
    FaultyFileSystem.register(conf());
    Path local = dir.resolve("diskfull");
    PipelineConfig c = config("diskfull", "train.steps=20", "train.output=" + FaultyFileSystem.SCHEME + "://" + local);
    FaultyFileSystem.failAfter("/" + Checkpoint.DIR + "/", 2); // step 5's state.bin and checkpoint.json
    String message;
    try {
      assertThatThrownBy(() -> TrainJob.run(c, spark, false, false))
          .isInstanceOf(TrainJob.CheckpointFailedException.class)
          .hasMessageContaining("checkpoint of step 10")
          .hasMessageContaining("No space left on device")
          .hasMessageContaining("last good checkpoint is " + FaultyFileSystem.SCHEME + ":")
          .hasMessageContaining("step-00000005")
          .hasMessageContaining("--resume");
      assertThat(FaultyFileSystem.FAILED.get()).isEqualTo(1);
      try {
        TrainJob.run(c, spark, false, false);
        throw new AssertionError("unreachable");
      } catch (BadInputException expected) {
        // the failed run's folder holds a checkpoint: starting again without --resume is refused
        assertThat(expected).hasMessageContaining("--resume");
      }
      FaultyFileSystem.failAfter("/" + Checkpoint.DIR + "/", 0);
      message = org.assertj.core.api.Assertions.catchThrowable(() -> TrainJob.run(c, spark, true, false)).getMessage();
    } finally {
      FaultyFileSystem.heal();
    }
    try (var listing = Files.list(local.resolve(Checkpoint.DIR))) {
      assertThat(listing.map(p -> p.getFileName().toString()).toList()).containsExactly("step-00000005");
    }
    String runId = message.replaceAll("(?s).*MLflow run (\\w+) marked FAILED.*", "$1");
    try (var metas = Files.walk(dir.resolve("mlruns"))) {
      Path meta = metas.filter(p -> p.endsWith(runId + "/meta.yaml")).findFirst().orElseThrow();
      assertThat(Files.readString(meta)).contains("status: 4"); // FAILED
    }

    TrainJob.Result resumed = TrainJob.run(c, spark, true, false);
    TrainJob.Result straight = TrainJob.run(config("diskfull-straight", "train.steps=20"), spark, false, false);
    assertThat(resumed.steps()).isEqualTo(20);
    assertThat(resumed.examples()).isEqualTo(straight.examples());
    assertThat(resumed.state().maxAbsDiff(straight.state())).isZero();
  }

  /**
   * Local mode hands the state to the tasks and back by reference; the serialised path (broadcast +
   * task results, as on a cluster) must give the same parameters bit for bit, and neither leaves
   * anything behind in the JVM.
   */
  @Test
  void inProcessAndSerialisedRoundsGiveTheSameParameters() {
    ModelFactory f = new TinyAutoencoder.Factory(SHAPE, OptimizerSettings.adam(0.01, 0.9, 0.999), 5);
    TrainJob.Result handed = TrainJob.run(config("handed", "train.steps=12", "train.averagingFrequency=3",
        "train.averaging.mode=rounds"), spark, false, false, f);
    TrainJob.Result serialised;
    System.setProperty(ParameterAveraging.SERIALIZE_PROPERTY, "true");
    try {
      assertThat(inProcess()).isFalse();
      serialised = TrainJob.run(config("serialised", "train.steps=12", "train.averagingFrequency=3",
          "train.averaging.mode=rounds"), spark, false, false, f);
    } finally {
      System.clearProperty(ParameterAveraging.SERIALIZE_PROPERTY);
    }
    assertThat(inProcess()).isTrue();
    assertThat(handed.state().maxAbsDiff(serialised.state())).isZero();
    assertThat(handed.state().maxAbsDiff(f.create().state())).isGreaterThan(1e-4);
    assertThat(ParameterAveraging.handedCount()).isZero();
  }

  private static boolean inProcess() {
    return ParameterAveraging.handsOverInProcess(JavaSparkContext.fromSparkContext(spark.sparkContext()), 2);
  }

  /**
   * A task that fails in the middle of a round (worker 1, step 7 of rounds [6, 9)) is tried again by
   * Spark from the round's state (barrier mode: the whole stage, from the stage's start state, here
   * rounds [6, 12)): the run ends as one without the failure, every example counted once.
   */
  @ParameterizedTest
  @ValueSource(strings = {"rounds", "barrier"})
  void aTaskFailingMidRoundIsRetriedFromTheRoundsState(String mode) {
    ModelFactory plain = new TinyAutoencoder.Factory(SHAPE, OptimizerSettings.adam(0.01, 0.9, 0.999), 5);
    String[] same = {"train.steps=12", "train.averagingFrequency=3", "train.checkpointEvery=2",
        "train.averaging.mode=" + mode};
    TrainJob.Result straight = TrainJob.run(config("no-failure-" + mode, same), spark, false, false, plain);
    FaultAt.THROWN.set(false);
    TrainJob.Result retried = TrainJob.run(config("failure-" + mode, same), spark, false, false,
        new FaultAt.Factory(plain, 7, true));
    assertThat(Path.of(retried.trackingLocation()).resolve("tags/averaging.mode")).hasContent(mode);
    assertThat(FaultAt.THROWN.get()).isTrue();
    assertThat(retried.examples()).isEqualTo(straight.examples()).isEqualTo(12L * 16 * 2);
    assertThat(retried.state().maxAbsDiff(straight.state())).isZero();
    assertThat(ParameterAveraging.handedCount()).isZero();
  }

  @Test
  void aTwoNetworkGanTrainsThroughTheSameEngine() {
    ModelFactory f = new TinyGan.Factory(SHAPE, 3);
    TrainJob.Result r = TrainJob.run(config("gan", "train.steps=10"), spark, false, false, f);
    assertThat(r.state().arrays().keySet()).containsExactly("G/params", "G/updater", "D/params", "D/updater", "G/ema");
    assertThat(r.state().maxAbsDiff(f.create().state())).isGreaterThan(0);
    assertThat(r.state().firstNonFinite()).isNull();
  }

  @Test
  void runFolderHasSamplesReportsLossPlotAndTheMlflowRun() throws Exception {
    TrainJob.Result r = TrainJob.run(config("outputs", "train.steps=10", "train.sampleEvery=5"), spark, false, false);
    Path run = dir.resolve("outputs");
    for (String f : List.of("samples/step-00000005.png", "samples/step-00000010.png", "reconstructions.png",
        "samples.png", "latent-map.png", "loss.png", "config.yaml")) {
      assertThat(run.resolve(f)).as(f).isRegularFile();
    }
    Path mlrun = Path.of(r.trackingLocation());
    assertThat(Files.readString(mlrun.resolve("meta.yaml"))).contains("status: 3");
    List<String> loss = Files.readAllLines(mlrun.resolve("metrics/loss"));
    assertThat(loss).hasSize(10);
    assertThat(loss.get(9)).matches("\\d{13} [0-9.eE+-]+ 9");
    assertThat(Files.readString(mlrun.resolve("params/train.averagingFrequency"))).isEqualTo("5");
    // per round (steps 4 and 9): wall time and the slowest worker's compute, which is within it
    List<String> wall = Files.readAllLines(mlrun.resolve("metrics/round_seconds"));
    List<String> compute = Files.readAllLines(mlrun.resolve("metrics/round_compute_seconds"));
    assertThat(compute).hasSize(2);
    for (int i = 0; i < 2; i++) {
      assertThat(compute.get(i)).endsWith(" " + (5 * i + 4));
      double w = Double.parseDouble(wall.get(i).split(" ")[1]);
      double c = Double.parseDouble(compute.get(i).split(" ")[1]);
      assertThat(c).isPositive().isLessThanOrEqualTo(w);
    }
    assertThat(Files.readString(mlrun.resolve("tags/averaging.workers"))).isEqualTo("2");
    assertThat(Files.readString(mlrun.resolve("tags/averaging.state_transfer"))).isEqualTo("in-process");
    assertThat(Files.readString(mlrun.resolve("tags/spark.app_id"))).isEqualTo(spark.sparkContext().applicationId());
    assertThat(mlrun.resolve("artifacts/model/state.bin")).isRegularFile();
    assertThat(mlrun.resolve("artifacts/loss.png")).isRegularFile();

    // generate from the run folder (its latest checkpoint): same seed, same images
    Path a = dir.resolve("gen/a.png");
    Path b = dir.resolve("gen/b.png");
    assertThat(org.genpipe.jobs.Cli.execute("generate", "--checkpoint", run.toString(), "-n", "9", "--seed", "3",
        "--grid", a.toString(), "--folder", dir.resolve("gen/each").toString())).isZero();
    assertThat(org.genpipe.jobs.Cli.execute("generate", "--checkpoint", run.toString(), "-n", "9", "--seed", "3",
        "--grid", b.toString())).isZero();
    assertThat(Files.readAllBytes(a)).isEqualTo(Files.readAllBytes(b));
    assertThat(javax.imageio.ImageIO.read(a.toFile()).getWidth()).isGreaterThan(3 * 28);
    assertThat(dir.resolve("gen/each/00008.png")).isRegularFile();
    assertThat(org.genpipe.jobs.Cli.execute("generate", "--checkpoint", dir.resolve("nowhere").toString(),
        "--grid", a.toString())).isEqualTo(2);
  }

  /**
   * Wraps a model and, at one step, reports a NaN loss (a divergence at a known place) or, once per
   * JVM and only on worker 1's replica, throws (a task failure Spark retries).
   */
  static final class FaultAt implements GenerativeModel {
    static final java.util.concurrent.atomic.AtomicBoolean THROWN = new java.util.concurrent.atomic.AtomicBoolean();

    record Factory(ModelFactory inner, long step, boolean throwOnce) implements ModelFactory {
      @Override
      public GenerativeModel create() {
        return new FaultAt((GenerativeModel) inner.create(), step, throwOnce);
      }
    }

    private final GenerativeModel inner;
    private final long faultStep;
    private final boolean throwOnce;

    FaultAt(GenerativeModel inner, long faultStep, boolean throwOnce) {
      this.inner = inner;
      this.faultStep = faultStep;
      this.throwOnce = throwOnce;
    }

    @Override
    public Map<String, Double> trainStep(Minibatch batch, long step, long seed) {
      Map<String, Double> l = new LinkedHashMap<>(inner.trainStep(batch, step, seed));
      if (step == faultStep && !throwOnce) {
        l.put("loss", Double.NaN);
      }
      if (step == faultStep && throwOnce && org.apache.spark.TaskContext.getPartitionId() == 1
          && THROWN.compareAndSet(false, true)) {
        throw new IllegalStateException("injected task failure at step " + step);
      }
      return l;
    }

    @Override
    public String name() {
      return inner.name();
    }

    @Override
    public ImageShape imageShape() {
      return inner.imageShape();
    }

    @Override
    public PixelRange pixelRange() {
      return inner.pixelRange();
    }

    @Override
    public ModelState state() {
      return inner.state();
    }

    @Override
    public void loadState(ModelState state) {
      inner.loadState(state);
    }

    @Override
    public org.nd4j.linalg.api.ndarray.INDArray generate(int n, long seed, org.genpipe.models.Condition c) {
      return inner.generate(n, seed, c);
    }

    @Override
    public Map<String, java.awt.image.BufferedImage> reports(Minibatch s, List<String> names, long seed) {
      return inner.reports(s, names, seed);
    }

    @Override
    public void close() {}
  }
}
