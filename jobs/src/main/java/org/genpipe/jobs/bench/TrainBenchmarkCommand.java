package org.genpipe.jobs.bench;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import org.apache.spark.sql.SparkSession;
import org.genpipe.common.records.Minibatch;
import org.genpipe.jobs.config.PipelineConfig;
import org.genpipe.jobs.config.SparkSettings;
import org.genpipe.jobs.preprocess.PreprocessJob;
import org.genpipe.jobs.spark.SparkSessions;
import org.genpipe.jobs.train.ParameterAveraging;
import org.genpipe.jobs.train.TrainJob;
import org.genpipe.models.nn.Noise;
import org.genpipe.models.nn.OptimizerSettings;
import org.genpipe.models.vae.BetaVae;
import org.genpipe.models.vae.BetaVaeSettings;
import org.genpipe.models.vae.Divergence;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
    name = "bench-train",
    mixinStandardHelpOptions = true,
    description = {
      "Benchmark training: (1) the beta-VAE step at --batch here and in PyTorch CPU (--python, made by",
      "scripts/reference-env; --torch-threads threads) in alternating blocks, best of each, with the ratio;",
      "(2) the parameter-averaging overhead: a 2-worker Spark run (default local-cluster: two executor JVMs of",
      "one core, one ND4J thread each) per train.averaging.mode (rounds, barrier) and averaging frequency (10, 1):",
      "wall time against the slowest worker's pure compute per round, over the rounds after a warm-up; then the",
      "peer, PyTorch DistributedDataParallel (gloo, 2 processes x 1 thread) on the same network, its overhead",
      "and images/s. The step runs with OMP_NUM_THREADS ND4J threads (the launcher sets 1 unless you set it;",
      "convolutions use oneDNN's own pool): for equal threads with PyTorch run OMP_NUM_THREADS=2 ./pipeline bench-train."
    })
public final class TrainBenchmarkCommand implements Callable<Integer> {
  @Option(names = "--batch", defaultValue = "64", description = "Batch size (default ${DEFAULT-VALUE}).")
  int batch;

  @Option(names = "--warmup", defaultValue = "300", description = "Untimed steps first (SameDiff's JIT warm-up; default ${DEFAULT-VALUE}).")
  int warmup;

  @Option(names = "--steps", defaultValue = "300", description = "Timed steps (default ${DEFAULT-VALUE}).")
  int steps;

  @Option(names = "--torch-threads", defaultValue = "2", description = "PyTorch threads (default ${DEFAULT-VALUE}).")
  int torchThreads;

  @Option(names = "--repeats", defaultValue = "5",
      description = "Timed blocks per side, alternating this project and PyTorch; the best of each is compared "
          + "(default ${DEFAULT-VALUE}).")
  int repeats;

  @Option(names = "--python", defaultValue = PythonReference.DEFAULT_PYTHON,
      description = "Python with torch (default ${DEFAULT-VALUE}, made by scripts/reference-env).")
  String python;

  @Option(names = "--averaging-warmup", defaultValue = "1500", description = "Untimed steps of the 2-worker run first "
      + "(default ${DEFAULT-VALUE}: 150 rounds at frequency 10, while the JIT compiles Spark's per-round code, which "
      + "runs once a round; reported separately).")
  long averagingWarmup;

  @Option(names = "--averaging-steps", defaultValue = "1500", description = "Timed steps of the 2-worker run after "
      + "its warm-up (default ${DEFAULT-VALUE}).")
  long averagingSteps;

  @Option(names = "--averaging-frequencies", split = ",", defaultValue = "10,1",
      description = "Averaging frequencies of the 2-worker runs (default ${DEFAULT-VALUE}; 1: synchronous data-parallel).")
  int[] frequencies;

  @Option(names = "--averaging-modes", split = ",", defaultValue = "rounds,barrier",
      description = "train.averaging.mode of the 2-worker runs (default ${DEFAULT-VALUE}).")
  String[] modes;

  @Option(names = "--averaging-master", defaultValue = "local-cluster[2,1,2048]", description = "Spark master of the "
      + "2-worker runs (default ${DEFAULT-VALUE}: two executor JVMs of one core; local[2] runs the workers in this JVM,"
      + " the state still serialised).")
  String master;

  @Option(names = "--averaging-shared-memory", arity = "1", defaultValue = "true",
      description = "train.averaging.sharedMemory of the barrier runs (default ${DEFAULT-VALUE}: the executors, on one "
          + "host, share their states in /dev/shm; false: TCP over loopback, as between hosts).")
  boolean sharedMemory;

  @Option(names = "--checkpoint-steps", defaultValue = "500", description = "Steps between checkpoints in the 2-worker "
      + "runs (default ${DEFAULT-VALUE}, as the shipped configs: 50 rounds of 10; in barrier mode a stage runs from "
      + "one checkpoint to the next).")
  long checkpointSteps;

  @Option(names = "--averaging-frequency", hidden = true, description = "The child JVM's frequency.")
  int frequency;

  @Option(names = "--averaging-mode", hidden = true, description = "The child JVM's mode.")
  String mode;

  @Option(names = "--part", defaultValue = "all",
      description = "What to run: all, step (part 1), averaging (part 2 with its PyTorch peer) (default ${DEFAULT-VALUE}).")
  String part;

  @Option(names = "--averaging-only", hidden = true, description = "Run only the 2-worker run (the child JVM's part).")
  boolean averagingOnly;

  @Option(names = "--work", defaultValue = "data/bench-train", description = "Scratch folder (default ${DEFAULT-VALUE}).")
  Path work;

  @Override
  public Integer call() throws Exception {
    if (averagingOnly) {
      averagingRun();
      return 0;
    }
    if (!List.of("all", "step", "averaging").contains(part)) {
      throw new picocli.CommandLine.ParameterException(new picocli.CommandLine(this),
          "--part: '" + part + "' is not one of all, step, averaging");
    }
    if (!part.equals("averaging")) {
      stepBenchmark();
    }
    if (!part.equals("step")) {
      averagingOverhead();
    }
    return 0;
  }

  private void stepBenchmark() throws Exception {
    String omp = System.getenv().getOrDefault("OMP_NUM_THREADS", "(unset)");
    System.out.printf("beta-VAE step, batch %d, latent 16, Adam; OMP_NUM_THREADS=%s%n", batch, omp);
    if (!omp.equals(String.valueOf(torchThreads))) {
      System.out.printf("  note: ND4J's ops run with OMP_NUM_THREADS=%s threads (the convolutions in oneDNN's own pool),"
          + " PyTorch with %d: for equal threads run OMP_NUM_THREADS=%d ./pipeline bench-train%n", omp, torchThreads,
          torchThreads);
    }
    AlternatingBlocks.StepTimer timer = betaVaeStep();
    AlternatingBlocks.Best best = AlternatingBlocks.run(repeats, torchThreads,
        block -> timer.millis(block == 0 ? warmup : 0, steps),
        block -> PythonReference.run(python, "beta_vae_torch.py", "ms_per_step", "torch",
            PythonReference.TORCH_ENV, String.valueOf(torchThreads), String.valueOf(batch), "16",
            String.valueOf(Math.min(warmup, 100)), String.valueOf(steps)));
    best.print(repeats, "%.2f", "target <= 0.8");
  }

  /** The beta-VAE's training step on one fixed batch of sigmoid-of-noise images. */
  private AlternatingBlocks.StepTimer betaVaeStep() {
    BetaVae vae = new BetaVae(new BetaVaeSettings(16, 1.0, Divergence.KL, OptimizerSettings.adam(1e-3, 0.9, 0.999)), 0);
    var images = org.nd4j.linalg.ops.transforms.Transforms.sigmoid(Noise.gaussian(1, batch, 1, 28, 28), false);
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < batch; i++) {
      ids.add("b" + i);
    }
    return new AlternatingBlocks.StepTimer(vae, new Minibatch(images, null, null, null, ids));
  }

  /** The child JVMs of {@link #averagingOverhead} start here. */
  public static void main(String[] args) {
    System.exit(new picocli.CommandLine(new TrainBenchmarkCommand()).execute(args));
  }

  /**
   * Each mode at each frequency runs in a fresh JVM started with OMP_NUM_THREADS=1 (one ND4J thread per
   * worker, as the launcher gives Spark jobs; OpenMP's thread count is fixed when ND4J loads), so none
   * inherits another's JIT-compiled code. Under {@code local-cluster} the two workers are two executor
   * JVMs, and the state travels serialised as on a cluster.
   */
  private void averagingOverhead() throws Exception {
    for (int f : frequencies) {
      for (String mode : modes) {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        cmd.addAll(java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments());
        if (!master.startsWith("local-cluster")) {
          cmd.add("-D" + ParameterAveraging.SERIALIZE_PROPERTY + "=true");
        }
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), TrainBenchmarkCommand.class.getName(),
            "--averaging-only", "--batch=" + batch, "--averaging-warmup=" + averagingWarmup,
            "--averaging-steps=" + averagingSteps, "--averaging-frequency=" + f, "--averaging-mode=" + mode,
            "--averaging-master=" + master, "--checkpoint-steps=" + checkpointSteps, "--work=" + work,
            "--averaging-shared-memory=" + sharedMemory));
        ProcessBuilder pb = new ProcessBuilder(cmd).inheritIO();
        pb.environment().put("OMP_NUM_THREADS", "1");
        pb.environment().put("SPARK_HOME", sparkHome().toString());
        pb.environment().put("SPARK_SCALA_VERSION", "2.12");
        pb.environment().putIfAbsent("SPARK_LOCAL_IP", "127.0.0.1");
        int rc = pb.start().waitFor();
        if (rc != 0) {
          throw new IllegalStateException("the averaging run (" + mode + ", frequency " + f + ") exited with " + rc);
        }
      }
    }
    ddpPeer();
  }

  /**
   * A Spark home for {@code local-cluster}'s executor JVMs: Spark's launcher needs the folder; the
   * classes come from {@code spark.executor.extraClassPath} (this JVM's class path).
   */
  private Path sparkHome() throws IOException {
    Path home = work.resolve("spark-home").toAbsolutePath();
    Files.createDirectories(home.resolve("jars"));
    Files.writeString(home.resolve("RELEASE"), "Spark 3.5 (made by bench-train: classes come from extraClassPath)\n");
    return home;
  }

  /** PyTorch DistributedDataParallel (gloo) on the same beta-VAE, 2 processes x 1 thread: the peer at frequency 1. */
  private void ddpPeer() throws IOException, InterruptedException {
    System.out.printf("PyTorch DistributedDataParallel (gloo, 2 processes x 1 thread, batch %d each, the same beta-VAE;"
        + " an allreduce every step):%n", batch);
    String line = PythonReference.run(python, "beta_vae_ddp_torch.py", "ddp_ms_per_step", "torch",
        PythonReference.TORCH_ENV, String.valueOf(batch), "16", "200", "300", String.valueOf(repeats));
    if (line == null) {
      return;
    }
    double alone = PythonReference.number(line, "alone_ms_per_step");
    double local = PythonReference.number(line, "no_sync_ms_per_step");
    double ddp = PythonReference.number(line, "ddp_ms_per_step");
    System.out.printf("  torch %s: one process alone %.2f ms/step; 2 processes without the allreduce (no_sync) %.2f ms;"
        + " DDP %.2f ms: overhead %.1f%% over the 2-process compute (%.1f%% over one process alone); %,.0f images/s"
        + " over both%n", line.replaceAll(".*\"torch\": \"([^\"]+)\".*", "$1"), alone, local, ddp,
        100 * TrainJob.Result.overhead(ddp, local), 100 * TrainJob.Result.overhead(ddp, alone), 2 * batch * 1000 / ddp);
  }

  private static final int WINDOW = 50;

  /** The overhead of each run of {@link #WINDOW} rounds, e.g. "21.0% 15.2% 12.9%" (the first includes round 1). */
  private static String windows(TrainJob.Result r, int window) {
    StringBuilder sb = new StringBuilder();
    int n = r.rounds().size();
    for (int from = 0; from < n; from += window) {
      sb.append(String.format("%.1f%% ", 100 * r.roundOverhead(from, Math.min(from + window, n))));
    }
    return sb.toString().trim();
  }

  private void averagingRun() {
    Path records = work.resolve("records");
    Path runs = work.resolve("runs");
    long steps = averagingWarmup + averagingSteps;
    int checkpointRounds = (int) Math.max(1, checkpointSteps / frequency);
    List<String> o = new ArrayList<>(BenchInputs.digitRecords(records, 4000));
    o.addAll(List.of("train.records=" + records, "train.output=" + runs.resolve("run-" + System.currentTimeMillis()),
        "train.workers=2", "train.batchSizePerWorker=" + batch, "train.averagingFrequency=" + frequency,
        "train.steps=" + steps, "train.sampleEvery=0", "train.checkpointEvery=" + checkpointRounds,
        "train.keepCheckpoints=1", "train.averaging.mode=" + mode, "train.averaging.sharedMemory=" + sharedMemory,
        "tracking.uri=" + work.resolve("mlruns")));
    PipelineConfig config = PipelineConfig.load(null, o);
    java.util.Map<String, String> sparkConf = new java.util.HashMap<>(java.util.Map.of("spark.ui.enabled", "false"));
    if (master.startsWith("local-cluster")) {
      sparkConf.put("spark.executor.extraClassPath", System.getProperty("java.class.path"));
      sparkConf.put("spark.executor.extraJavaOptions", String.join(" ", executorFlags()));
      sparkConf.put("spark.executorEnv.OMP_NUM_THREADS", "1");
    }
    SparkSession spark = SparkSessions.getOrCreate(new SparkSettings(master, sparkConf), "genpipe bench-train");
    try {
      if (!Files.exists(records.resolve("manifest.json"))) {
        PreprocessJob.run(config, spark, true);
      }
      TrainJob.Result r = TrainJob.run(config, spark, false, false);
      int rounds = r.rounds().size();
      int warmRounds = (int) Math.min(rounds, (averagingWarmup + frequency - 1) / frequency);
      System.out.printf("%s mode%s, 2 workers (%s) x batch %d, averagingFrequency %d, %d steps (%d rounds), a checkpoint"
          + " every %d rounds%s:%n", mode, mode.equals("rounds") ? "" : sharedMemory ? " (shared memory)" : " (TCP)",
          master, batch, frequency, r.steps(), rounds, checkpointRounds,
          master.startsWith("local-cluster") ? " (executor JVMs: the state serialised as on a cluster)"
              : " (the state serialised as between JVMs)");
      System.out.printf("  whole run: wall %.1f s, compute %.1f s (slowest worker per round), overhead %.1f%%;"
          + " after the first round (graph build + data load): overhead %.1f%%%n",
          r.seconds(), r.computeSeconds(), 100 * r.overhead(), 100 * r.roundOverhead(Math.min(1, rounds), rounds));
      int window = Math.max(1, rounds / 6);
      System.out.printf("  overhead per %d rounds: %s%n", window, windows(r, window));
      if (warmRounds < rounds) {
        double wall = r.roundSeconds(warmRounds, rounds);
        double compute = r.roundComputeSeconds(warmRounds, rounds);
        System.out.printf("  timed rounds %d-%d (after %d warm-up rounds): wall %.1f s, compute %.1f s, overhead %.1f%%"
            + " (target <= %s), %.2f ms per round; %,.0f images/s over both workers%n", warmRounds + 1, rounds,
            warmRounds, wall, compute, 100 * TrainJob.Result.overhead(wall, compute), frequency == 1 ? "15%" : "3%",
            1000 * (wall - compute) / (rounds - warmRounds), (double) (rounds - warmRounds) * frequency * 2 * batch / wall);
      }
    } finally {
      spark.stop();
    }
  }

  /** This JVM's module and system-property flags, for the executor JVMs. */
  private static List<String> executorFlags() {
    List<String> flags = new ArrayList<>();
    for (String a : java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (a.startsWith("--add-opens") || a.startsWith("-Djdk.reflect") || a.startsWith("-Dorg.bytedeco")) {
        flags.add(a);
      }
    }
    return flags;
  }
}
