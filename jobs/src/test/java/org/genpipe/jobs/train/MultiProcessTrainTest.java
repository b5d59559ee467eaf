package org.genpipe.jobs.train;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.scheduler.SparkListenerTaskStart;
import org.apache.spark.sql.SparkSession;
import org.genpipe.common.io.Storage;
import org.genpipe.common.records.Manifest;
import org.genpipe.jobs.DigitRecords;
import org.genpipe.jobs.checkpoint.Checkpoint;
import org.genpipe.jobs.config.PipelineConfig;
import org.genpipe.jobs.config.SparkSettings;
import org.genpipe.jobs.preprocess.PreprocessJob;
import org.genpipe.jobs.spark.SparkSessions;
import org.genpipe.models.GenerativeModel;
import org.genpipe.models.ModelFactory;
import org.genpipe.models.ModelState;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Real multi-process Spark: {@code local-cluster[2,1,1536]} starts a master, two workers and two
 * executor JVMs, with GPU resource scheduling (a GPU per executor and per task). One executor JVM is killed (SIGKILL) in the middle of a round (rounds mode: Spark
 * retries that round's task) or of a barrier stage (barrier mode: Spark reruns the whole stage from
 * its start state), and the run must end with exactly the examples and parameters of an undisturbed run.
 */
class MultiProcessTrainTest {
  @TempDir Path dir;

  @Test
  void twoExecutorJvmsTrainAndAKilledExecutorCostsOnlyARetryOfItsRound() throws Exception {
    Path sparkHome = Path.of(System.getenv().getOrDefault("SPARK_HOME", "target/spark-home"));
    Files.createDirectories(sparkHome.resolve("jars"));
    Files.writeString(sparkHome.resolve("RELEASE"), "Spark 3.5 (generated for tests: classes come from extraClassPath)\n");
    Map<String, String> conf = new HashMap<>();
    conf.put("spark.ui.enabled", "false");
    conf.put("spark.executor.extraClassPath", System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")));
    conf.put("spark.executor.extraJavaOptions", String.join(" ", jvmFlags()));
    conf.put("spark.task.maxFailures", "4");
    // GPU resource scheduling as conf/spark-gpu.yaml sets it up (a GPU per executor and per task), each
    // worker's one "GPU" found by a discovery script: no GPU here, but Spark schedules every task, the
    // barrier stage's included, on the executor's GPU slot, and counts slots by GPUs
    Path gpus = dir.resolve("gpus.sh");
    Files.writeString(gpus, "#!/bin/sh\necho '{\"name\": \"gpu\", \"addresses\": [\"0\"]}'\n");
    gpus.toFile().setExecutable(true);
    conf.put("spark.worker.resource.gpu.amount", "1");
    conf.put("spark.worker.resource.gpu.discoveryScript", gpus.toString());
    conf.put("spark.executor.resource.gpu.amount", "1");
    conf.put("spark.task.resource.gpu.amount", "1");
    SparkSession spark = SparkSessions.getOrCreate(new SparkSettings("local-cluster[2,1,1536]", conf), "genpipe-multiprocess-test");
    List<String> executorGpus = java.util.Collections.synchronizedList(new ArrayList<>());
    spark.sparkContext().addSparkListener(new SparkListener() {
      @Override
      public void onExecutorAdded(org.apache.spark.scheduler.SparkListenerExecutorAdded e) {
        executorGpus.add(e.executorId() + ": " + e.executorInfo().resourcesInfo().get("gpu")
            .map(g -> String.join(",", g.addresses())).getOrElse(() -> "none"));
      }
    });
    try {
      Path records = dir.resolve("records");
      PreprocessJob.run(PipelineConfig.load(null, DigitRecords.preprocess(records, 600, 200)), spark, false);
      ModelState reference = null;
      // rounds: a Spark job per round, the third round's executor killed; barrier: one stage averaging between
      // the executors (through shared memory where the host has /dev/shm, the messages over TCP), a checkpoint
      // every two rounds, an executor killed after the first (Spark reruns the stage, which starts again from
      // that checkpoint's state; the survivor's mapping of the dead executor's memory outlives it)
      for (String mode : List.of("rounds", "barrier")) {
        List<String> o = new ArrayList<>(DigitRecords.preprocess(records, 600, 200));
        o.addAll(List.of(
            "model.betaVae.latentSize=4", "train.records=" + records, "train.output=" + dir.resolve("run-" + mode),
            "train.workers=2", "train.batchSizePerWorker=32", "train.averagingFrequency=15", "train.steps=90",
            "train.sampleEvery=0", "train.checkpointEvery=" + (mode.equals("barrier") ? 2 : 100),
            "train.averaging.mode=" + mode, "tracking.uri=" + dir.resolve("mlruns")));
        PipelineConfig config = PipelineConfig.load(null, o);

        // rounds: the third round's first task; barrier (one stage for the run): once the checkpoint of step 30 is written
        Path checkpoints = dir.resolve("run-" + mode).resolve("checkpoints");
        KillOneExecutor killer = mode.equals("barrier") ? new KillOneExecutor(() -> Files.isDirectory(checkpoints)
            && Files.exists(checkpoints.resolve("step-00000030"))) : new KillOneExecutor(3);
        spark.sparkContext().addSparkListener(killer);
        TrainJob.Result r;
        try {
          r = TrainJob.run(config, spark, false, false);
        } finally {
          killer.close();
          spark.sparkContext().removeSparkListener(killer);
        }

        assertThat(killer.killedPid.get()).as(mode + ": an executor JVM was killed").isPositive();
        assertThat(killer.failedTasks.get()).as(mode + ": the killed task failed and was retried")
            .isGreaterThanOrEqualTo(1);
        assertThat(r.steps()).isEqualTo(90);
        assertThat(r.examples()).as(mode + ": no example counted twice").isEqualTo(90L * 32 * 2);
        assertThat(Path.of(r.trackingLocation()).resolve("tags/averaging.mode")).hasContent(mode);
        assertThat(executorGpus).as("executors seen registering (the killed one's replacement at least) each with its GPU")
            .isNotEmpty().allMatch(e -> e.endsWith(": 0"));

        Checkpoint.Loaded c = Checkpoint.read(r.checkpoint(), spark.sparkContext().hadoopConfiguration());
        var history = c.info().history();
        assertThat(history).hasSize(90);
        assertThat(history.get(89).losses().get("loss")).isLessThan(history.get(0).losses().get("loss") * 0.8);

        if (reference == null) {
          // the same rounds without Spark: two in-process workers averaged after every round
          reference = averagedWithoutSpark(config, records, spark);
          assertThat(r.state().maxAbsDiff(reference)).as("parameters equal an undisturbed run")
              .isLessThanOrEqualTo(1e-6);
        } else {
          assertThat(r.state().maxAbsDiff(reference)).as(mode + ": parameters equal an undisturbed run")
              .isLessThanOrEqualTo(1e-6);
        }
      }
    } finally {
      spark.stop();
    }
  }

  private static ModelState averagedWithoutSpark(PipelineConfig c, Path records, SparkSession spark) throws Exception {
    var conf = spark.sparkContext().hadoopConfiguration();
    Manifest m = Manifest.read(Storage.path(records.toString()), conf);
    DataPlan plan = DataPlan.of(m, Storage.path(records.toString()), "train", 2, 32);
    ModelFactory f = c.model().factory(m.imageShape(), m.classes().size(), c.seed(), "test");
    List<Worker> workers = new ArrayList<>();
    for (int w = 0; w < 2; w++) {
      GenerativeModel model = (GenerativeModel) f.create();
      workers.add(new Worker(w, model, WorkerData.load(w, plan.workers().get(w), conf, c.seed(), true), 32, c.seed()));
    }
    ModelState state = f.create().state();
    for (long step = 0; step < 90; step += 15) {
      RoundResult sum = new RoundResult();
      for (Worker w : workers) {
        sum = RoundResult.merge(sum, w.run(state, step, 15));
      }
      state = sum.averagedState();
    }
    return state;
  }

  private static List<String> jvmFlags() {
    List<String> flags = new ArrayList<>();
    for (String a : java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (a.startsWith("--add-opens") || a.startsWith("-Djdk.reflect")) {
        flags.add(a);
      }
    }
    return flags;
  }

  /**
   * Kills the executor JVM running the first task of the n-th training round, shortly after it
   * starts; or, given a condition, an executor running a task once the condition holds (polled every 20 ms).
   */
  static final class KillOneExecutor extends SparkListener implements AutoCloseable {
    final int round;
    final AtomicBoolean done = new AtomicBoolean();
    final AtomicLong killedPid = new AtomicLong();
    final AtomicLong failedTasks = new AtomicLong();
    private final Map<Integer, Boolean> stagesSeen = new java.util.concurrent.ConcurrentHashMap<>();
    private final Map<Long, String> running = new java.util.concurrent.ConcurrentHashMap<>(); // task id -> executor
    private final Thread watcher;

    KillOneExecutor(int round) {
      this.round = round;
      this.watcher = null;
    }

    KillOneExecutor(java.util.function.BooleanSupplier when) {
      this.round = Integer.MAX_VALUE;
      this.watcher = new Thread(() -> {
        try {
          while (!when.getAsBoolean() || running.isEmpty()) {
            Thread.sleep(20);
          }
        } catch (InterruptedException stopped) {
          return;
        }
        if (!done.getAndSet(true)) {
          kill(running.values().iterator().next());
        }
      });
      watcher.setDaemon(true);
      watcher.start();
    }

    @Override
    public void close() {
      if (watcher != null) {
        watcher.interrupt();
      }
    }

    @Override
    public void onTaskStart(SparkListenerTaskStart start) {
      running.put(start.taskInfo().taskId(), start.taskInfo().executorId());
      stagesSeen.put(start.stageId(), true);
      // each round is one job of one stage with 2 tasks (plus the aggregation's)
      if (stagesSeen.size() < round || done.getAndSet(true)) {
        return;
      }
      String executorId = start.taskInfo().executorId();
      new Thread(() -> {
        try {
          Thread.sleep(50);
        } catch (InterruptedException ignored) {
          return;
        }
        kill(executorId);
      }).start();
    }

    private void kill(String executorId) {
      Optional<ProcessHandle> exec = ProcessHandle.current().descendants()
          .filter(p -> commandLine(p).matches(".*CoarseGrainedExecutorBackend.*--executor-id " + executorId + "( .*|$)"))
          .findFirst();
      if (exec.isEmpty()) {
        ProcessHandle.current().descendants().forEach(p -> System.err.println("descendant " + p.pid() + ": "
            + commandLine(p).replaceAll("-cp \\S+", "-cp ...")));
      }
      exec.ifPresent(p -> {
        killedPid.set(p.pid());
        p.destroyForcibly();
      });
    }

    /** The process's command line, from /proc (ProcessHandle.Info drops long argument lists). */
    static String commandLine(ProcessHandle p) {
      try {
        return new String(Files.readAllBytes(Path.of("/proc/" + p.pid() + "/cmdline"))).replace('\0', ' ').trim();
      } catch (java.io.IOException e) {
        return p.info().commandLine().orElse("");
      }
    }

    @Override
    public void onTaskEnd(SparkListenerTaskEnd end) {
      running.remove(end.taskInfo().taskId());
      if (!end.taskInfo().successful()) {
        failedTasks.incrementAndGet();
      }
    }
  }
}
