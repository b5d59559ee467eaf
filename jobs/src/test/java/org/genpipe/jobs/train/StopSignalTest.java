package org.genpipe.jobs.train;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.spark.sql.SparkSession;
import org.genpipe.jobs.DigitRecords;
import org.genpipe.jobs.SparkTestSession;
import org.genpipe.jobs.checkpoint.Checkpoint;
import org.genpipe.jobs.config.PipelineConfig;
import org.genpipe.jobs.preprocess.PreprocessJob;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A real SIGTERM (Process.destroy) to a real `pipeline train` JVM: the run stops after the round it is
 * in, writes a checkpoint there, marks its MLflow run KILLED and exits with 143 saying how to resume;
 * --resume then finishes the same run with the exact example count. In barrier mode the rounds run
 * inside one barrier stage of 1,000 rounds: they still reach the driver as they end (the MLflow loss
 * appears long before the stage's end) and the stop takes effect at the round's end, not the stage's.
 */
class StopSignalTest {
  @TempDir Path dir;

  @ParameterizedTest
  @ValueSource(strings = {"rounds", "barrier"})
  void sigtermStopsAfterTheRoundWithACheckpointAndAKilledRun(String mode) throws Exception {
    Path records = dir.resolve("records");
    List<String> train = List.of("model.betaVae.latentSize=4", "train.records=" + records,
        "train.output=" + dir.resolve("run"), "train.batchSizePerWorker=16", "train.averagingFrequency=5",
        "train.sampleEvery=0", "train.checkpointEvery=1000", "train.steps=100000", "train.monitor=false",
        "tracking.uri=" + dir.resolve("mlruns"), "spark.master=local[2]", "train.averaging.mode=" + mode);
    SparkSession spark = SparkTestSession.start(Map.of());
    try {
      PreprocessJob.run(PipelineConfig.load(null, DigitRecords.preprocess(records, 200, 100)), spark, false);
    } finally {
      spark.stop();
    }
    List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
    for (String a : java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (a.startsWith("--add-opens") || a.startsWith("-Djdk.reflect") || a.startsWith("-Dorg.bytedeco")) {
        cmd.add(a);
      }
    }
    cmd.addAll(List.of("-Xmx2g", "-cp", System.getProperty("surefire.test.class.path",
        System.getProperty("java.class.path")), "org.genpipe.jobs.Cli", "train"));
    for (String s : train) {
      cmd.addAll(List.of("--set", s));
    }
    Path log = dir.resolve("train.log");
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
    pb.environment().put("OMP_NUM_THREADS", "1");
    pb.environment().put("SPARK_LOCAL_IP", "127.0.0.1");
    Process p = pb.start();
    // training has started once the MLflow run has loss values
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
    Path lossFile = null;
    while (lossFile == null && System.nanoTime() < deadline && p.isAlive()) {
      if (Files.isDirectory(dir.resolve("mlruns/1"))) {
        try (var runs = Files.list(dir.resolve("mlruns/1"))) {
          lossFile = runs.map(r -> r.resolve("metrics/loss")).filter(Files::exists).findFirst().orElse(null);
        }
      }
      Thread.sleep(200);
    }
    assertThat(lossFile).as(Files.readString(log)).isNotNull();
    p.destroy(); // SIGTERM
    assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
    String out = Files.readString(log);
    assertThat(p.exitValue()).as(out).isEqualTo(143);
    assertThat(out).contains("error: SIGTERM: stopped after step ", "marked KILLED. Continue with the same command and"
        + " --resume");
    Path mlrun = lossFile.getParent().getParent();
    assertThat(Files.readString(mlrun.resolve("meta.yaml"))).contains("status: 5");
    Checkpoint.Loaded ck = Checkpoint.resolve(dir.resolve("run").toString(), new org.apache.hadoop.conf.Configuration());
    long stoppedAt = ck.info().step();
    assertThat(stoppedAt).isPositive().isLessThan(5_000) // the first checkpoint interval's end (barrier: the stage's)
        .matches(s -> s % 5 == 0, "a round boundary");
    assertThat(Files.readString(mlrun.resolve("tags/averaging.mode"))).isEqualTo(mode);
    assertThat(out).contains("stopped after step " + stoppedAt + " of 100000");

    // --resume goes on from there in the same run, to the end
    List<String> more = new ArrayList<>(train);
    more.set(more.indexOf("train.steps=100000"), "train.steps=" + (stoppedAt + 10));
    spark = SparkTestSession.start(Map.of());
    try {
      TrainJob.Result r = TrainJob.run(PipelineConfig.load(null, more), spark, true, false);
      assertThat(r.steps()).isEqualTo(stoppedAt + 10);
      assertThat(r.examples()).isEqualTo((stoppedAt + 10) * 16 * 2);
      assertThat(Path.of(r.trackingLocation())).isEqualTo(mlrun);
    } finally {
      spark.stop();
    }
    assertThat(Files.readString(mlrun.resolve("meta.yaml"))).contains("status: 3");
  }
}
