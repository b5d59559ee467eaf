package org.genpipe.jobs.evaluate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.spark.sql.SparkSession;
import org.genpipe.common.io.BadInputException;
import org.genpipe.jobs.DigitRecords;
import org.genpipe.jobs.SparkTestSession;
import org.genpipe.jobs.checkpoint.Checkpoint;
import org.genpipe.jobs.config.PipelineConfig;
import org.genpipe.jobs.preprocess.PreprocessJob;
import org.genpipe.jobs.train.TrainJob;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The evaluation job on Spark local[2]: a beta-VAE trained for a few steps on embedded digit records,
 * evaluated with the domain extractor (a real classifier trained on the same records).
 */
class EvaluateJobTest {
  static SparkSession spark;
  @TempDir static Path dir;
  static TrainJob.Result trained;

  @BeforeAll
  static void start() {
    spark = SparkTestSession.start(Map.of());
    Path records = dir.resolve("records");
    PreprocessJob.run(PipelineConfig.load(null, DigitRecords.preprocess(records, 400, 100)), spark, false);
    trained = TrainJob.run(PipelineConfig.load(null, List.of(
        "model.betaVae.latentSize=4", "train.records=" + records, "train.output=" + dir.resolve("run"),
        "train.batchSizePerWorker=16", "train.averagingFrequency=5", "train.steps=20", "train.sampleEvery=0",
        "tracking.uri=" + dir.resolve("mlruns"))), spark, false, false);
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  static PipelineConfig config(String... more) {
    List<String> o = new ArrayList<>(List.of(
        "evaluate.checkpoint=" + dir.resolve("run"), "evaluate.cache=" + dir.resolve("cache"),
        "evaluate.domain.steps=60", "evaluate.domain.batchSize=32", "evaluate.domain.featureSize=16",
        "evaluate.batchSize=64", "evaluate.kidSubsets=10", "tracking.uri=" + dir.resolve("mlruns")));
    o.addAll(List.of(more));
    return PipelineConfig.load(null, o);
  }

  /**
   * A reference split of one 1,200-record shard is read as three tasks (500 + 500 + 200 records after
   * skipping 0, 500 and 1,000): as many reference images and reconstructions as records, the same
   * numbers on 1 and 3 executors.
   */
  @Test
  void aLargeShardIsSplitIntoTasksThatReadEachRecordOnce() throws Exception {
    Path big = dir.resolve("big");
    List<String> pre = new ArrayList<>(DigitRecords.preprocess(big, 2400, 4096));
    pre.add("preprocess.captcha.testFraction=0.5");
    PreprocessJob.run(PipelineConfig.load(null, pre), spark, false);
    EvaluateJob.Result one = EvaluateJob.run(config("evaluate.records=" + big, "evaluate.workers=1",
        "evaluate.samples=100"), spark, false);
    EvaluateJob.Result three = EvaluateJob.run(config("evaluate.records=" + big, "evaluate.workers=3",
        "evaluate.samples=100"), spark, false);
    long test = org.genpipe.common.records.Manifest.readChecked(org.genpipe.common.io.Storage.path(big.toString()),
        new org.apache.hadoop.conf.Configuration()).manifest().counts().get("test");
    assertThat(test).isGreaterThan(1000).isLessThan(1500);
    String rec = "fid_domain_rec_" + test + "_test";
    assertThat(one.metrics().stream().filter(m -> m.name().equals(rec)).findFirst().orElseThrow().protocol())
        .containsEntry("samples", String.valueOf(test)).containsEntry("reference_images", String.valueOf(test));
    assertThat(three.value(rec)).isCloseTo(one.value(rec), within(1e-9 * one.value(rec)));
  }

  @Test
  void reportsFidAndKidIntoTheTrainingRunWhateverTheNumberOfWorkers() throws Exception {
    // 1,100 samples: three generation chunks, spread over different partitions in the two runs
    EvaluateJob.Result two = EvaluateJob.run(config("evaluate.workers=2", "evaluate.samples=1100"), spark, false);
    EvaluateJob.Result three = EvaluateJob.run(config("evaluate.workers=3", "evaluate.samples=1100"), spark, false);
    assertThat(two.metrics()).extracting(EvaluateJob.Metric::name).containsExactly(
        "fid_domain_gen_1100_test", "kid_domain_gen_1100_test", "kid_domain_gen_1100_test_std",
        "diversity_domain_gen_1100_test", "fid_domain_rec_40_test", "kid_domain_rec_40_test",
        "kid_domain_rec_40_test_std");
    for (EvaluateJob.Metric m : two.metrics()) {
      assertThat(m.value()).as(m.name()).isFinite();
      assertThat(three.value(m.name())).as(m.name()).isCloseTo(m.value(), within(1e-9 * Math.abs(m.value()) + 1e-12));
    }
    assertThat(two.value("fid_domain_gen_1100_test")).isPositive();
    EvaluateJob.Metric fid = two.metrics().get(0);
    assertThat(fid.protocol()).containsEntry("extractor", "domain").containsEntry("reference_split", "test")
        .containsEntry("samples", "1100").containsEntry("reference_images", "40")
        .containsEntry("resize", "none (native 28x28x1)");
    // fewer reference images than feature dimensions is warned about; here 40 >= 16: no warning
    assertThat(two.warnings()).noneMatch(w -> w.contains("singular"));

    // the classifier and the reference statistics were computed once and reused
    try (Stream<Path> entries = Files.list(dir.resolve("cache"))) {
      assertThat(entries.map(p -> p.getFileName().toString().replaceAll("-.*", ""))).containsExactlyInAnyOrder(
          "domain", "reference");
    }
    // the report beside the checkpoint, and the metrics in the training run's MLflow entry
    assertThat(Files.readString(Path.of(two.report().toUri()))).contains("fid_domain_gen_1100_test");
    assertThat(two.trackingLocation()).contains("(the training run)").startsWith(trained.trackingLocation());
    Path metric = Path.of(trained.trackingLocation()).resolve("metrics/fid_domain_gen_1100_test");
    List<String> lines = Files.readAllLines(metric);
    assertThat(lines).hasSize(2); // two evaluations, each at the checkpoint's step
    assertThat(lines.get(0)).endsWith(" " + trained.steps());
    assertThat(Path.of(trained.trackingLocation()).resolve("tags/eval.fid_domain_gen_1100_test.extractor"))
        .hasContent("domain");
    // the run's params stay its training settings (what the MLflow UI's comparison lines up)
    try (Stream<Path> params = Files.list(Path.of(trained.trackingLocation()).resolve("params"))) {
      assertThat(params.map(p -> p.getFileName().toString())).noneMatch(n -> n.startsWith("eval"));
    }
  }

  /**
   * --repeats 3: each metric is the mean of seeds S, S+1, S+2 with their sample std; seed S's value is
   * what a single evaluation gives, and the report lists each seed's value.
   */
  @Test
  void repeatsGiveEachMetricItsMeanAndSpreadOverGenerationSeeds() throws Exception {
    EvaluateJob.Result once = EvaluateJob.run(config("evaluate.samples=300"), spark, false);
    EvaluateJob.Result three = EvaluateJob.run(config("evaluate.samples=300", "evaluate.repeats=3"), spark, false);
    assertThat(three.metrics()).extracting(EvaluateJob.Metric::name).containsExactly(
        "fid_domain_gen_300_test", "fid_domain_gen_300_test_std", "kid_domain_gen_300_test",
        "kid_domain_gen_300_test_std", "diversity_domain_gen_300_test", "diversity_domain_gen_300_test_std",
        "fid_domain_rec_40_test", "fid_domain_rec_40_test_std", "kid_domain_rec_40_test", "kid_domain_rec_40_test_std");
    EvaluateJob.Metric fid = three.metrics().get(0);
    List<Double> each = fid.perSeed();
    assertThat(each).hasSize(3);
    assertThat(each.get(0)).isEqualTo(once.value("fid_domain_gen_300_test"));
    assertThat(each.get(1)).isNotEqualTo(each.get(0));
    double mean = (each.get(0) + each.get(1) + each.get(2)) / 3;
    double var = 0;
    for (double v : each) {
      var += (v - mean) * (v - mean) / 2;
    }
    assertThat(fid.value()).isCloseTo(mean, within(1e-12 * mean));
    assertThat(three.value("fid_domain_gen_300_test_std")).isCloseTo(Math.sqrt(var), within(1e-12 * mean)).isPositive();
    assertThat(fid.protocol().get("set")).contains("seeds 42..44");
    assertThat(fid.protocol()).containsKey("repeats");
    String report = Files.readString(Path.of(three.report().toUri()));
    assertThat(report).contains("\"per_seed\"").contains(String.valueOf(each.get(2)));
    assertThatThrownBy(() -> config("evaluate.repeats=0")).hasMessageContaining("evaluate.repeats")
        .hasMessageContaining(">= 1");
  }

  @Test
  void exportedStatisticsServeAsTheReference() {
    Path npz = dir.resolve("ref.npz");
    EvaluateJob.Result exported = EvaluateJob.run(config("evaluate.exportStats=" + npz), spark, false);
    EvaluateJob.Result imported = EvaluateJob.run(config("evaluate.referenceStats=" + npz), spark, false);
    assertThat(imported.value("fid_domain_gen_40_test"))
        .isCloseTo(exported.value("fid_domain_gen_40_test"), within(1e-9));
    assertThat(imported.metrics()).extracting(EvaluateJob.Metric::name)
        .containsExactly("fid_domain_gen_40_test", "fid_domain_rec_40_test");
    assertThat(imported.warnings()).anyMatch(w -> w.contains("kid_domain_gen_40_test: not computed"));
  }

  @Test
  void badInputIsNamed() throws Exception {
    Path wrong = dir.resolve("wrong.npz");
    try (OutputStream out = Files.newOutputStream(wrong)) {
      NpzStats.write(new NpzStats.Stats(new double[3], new double[3][3]), out);
    }
    assertThatThrownBy(() -> EvaluateJob.run(config("evaluate.referenceStats=" + wrong), spark, false))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("wrong.npz: statistics of dimension 3").hasMessageContaining("gives 16-d features");
    assertThatThrownBy(() -> EvaluateJob.run(config("evaluate.referenceStats=" + dir.resolve("none.npz")), spark,
        false)).isInstanceOf(BadInputException.class).hasMessageContaining("none.npz does not exist");
    assertThatThrownBy(() -> EvaluateJob.run(config("evaluate.model=dcgan"), spark, false))
        .hasMessageContaining("is a checkpoint of model beta-vae, evaluate.model says dcgan");
    assertThatThrownBy(() -> EvaluateJob.run(config("evaluate.split=val"), spark, false))
        .hasMessageContaining("has no split 'val'");
    assertThatThrownBy(() -> EvaluateJob.run(config("evaluate.samples=1"), spark, false))
        .hasMessageContaining("at least 2 samples");
    assertThatThrownBy(() -> EvaluateJob.run(config("evaluate.checkpoint=" + dir.resolve("records")), spark, false))
        .hasMessageContaining("is neither a checkpoint folder");
  }

  /** {@code generate/evaluate --checkpoint runs/quickstart}: a folder of run folders means its newest run. */
  @Test
  void aFolderOfRunsResolvesToTheNewestRunsLatestCheckpoint() throws Exception {
    Path runs = dir.resolve("runs");
    for (String name : List.of("20261201-100000", "20261201-090000")) {
      Path target = runs.resolve(name);
      try (var files = Files.walk(dir.resolve("run"))) {
        for (Path f : (Iterable<Path>) files::iterator) {
          Path to = target.resolve(dir.resolve("run").relativize(f).toString());
          if (Files.isDirectory(f)) {
            Files.createDirectories(to);
          } else {
            Files.copy(f, to);
          }
        }
      }
    }
    // the one written last is the newest, whatever its name
    Path newest = runs.resolve("20261201-090000/checkpoints/step-00000020/checkpoint.json");
    Files.setLastModifiedTime(newest, java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis() + 60_000));
    Checkpoint.Loaded c = Checkpoint.resolve(runs.toString(), new org.apache.hadoop.conf.Configuration());
    assertThat(c.dir().toString()).endsWith("runs/20261201-090000/checkpoints/step-00000020");
    assertThat(c.info().step()).isEqualTo(20);
  }
}
