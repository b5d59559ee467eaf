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
      "(2) the parameter-averaging overhead: wall time of a 2-worker Spark run (local[2], one ND4J thread per",
      "worker) against the workers' pure compute time, over the rounds after a warm-up (and per 50 rounds); once",
      "with local mode's in-process hand-over of the state, once serialised as between JVMs on a cluster.",
      "The step runs with OMP_NUM_THREADS ND4J threads (the launcher sets 1 unless you set it; convolutions use",
      "oneDNN's own thread pool): for equal threads with PyTorch run OMP_NUM_THREADS=2 ./pipeline bench-train."
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

  @Option(names = "--averaging-frequency", defaultValue = "10", description = "Averaging frequency (default ${DEFAULT-VALUE}).")
  int frequency;

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
    averagingOverhead();
    return 0;
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

  /**
   * Two workers on this machine's two cores get one ND4J thread each, as the launcher gives Spark
   * jobs (OpenMP's thread count is fixed when ND4J loads). Each variant runs in a fresh JVM started
   * with OMP_NUM_THREADS=1, so neither inherits the other's JIT-compiled code: local mode's default
   * in-process hand-over, then the state serialised as between JVMs on a cluster.
   */
  /** The child JVMs of {@link #averagingOverhead} start here. */
  public static void main(String[] args) {
    System.exit(new picocli.CommandLine(new TrainBenchmarkCommand()).execute(args));
  }

  private void averagingOverhead() throws IOException, InterruptedException {
    for (boolean serialize : new boolean[] {false, true}) {
      List<String> cmd = new ArrayList<>();
      cmd.add(ProcessHandle.current().info().command().orElse("java"));
      cmd.addAll(java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments());
      cmd.add("-D" + ParameterAveraging.SERIALIZE_PROPERTY + "=" + serialize);
      cmd.addAll(List.of("-cp", System.getProperty("java.class.path"),
          TrainBenchmarkCommand.class.getName(), "--averaging-only", "--batch=" + batch, "--averaging-warmup=" + averagingWarmup,
          "--averaging-steps=" + averagingSteps, "--averaging-frequency=" + frequency, "--work=" + work));
      ProcessBuilder pb = new ProcessBuilder(cmd).inheritIO();
      pb.environment().put("OMP_NUM_THREADS", "1");
      int rc = pb.start().waitFor();
      if (rc != 0) {
        throw new IllegalStateException("the averaging run (" + String.join(" ", cmd) + ") exited with " + rc);
      }
    }
  }

  private static final int WINDOW = 50;

  /** The overhead of each run of {@link #WINDOW} rounds, e.g. "21.0% 15.2% 12.9%" (the first includes round 1). */
  private static String windows(TrainJob.Result r) {
    StringBuilder sb = new StringBuilder();
    int n = r.rounds().size();
    for (int from = 0; from < n; from += WINDOW) {
      sb.append(String.format("%.1f%% ", 100 * r.roundOverhead(from, Math.min(from + WINDOW, n))));
    }
    return sb.toString().trim();
  }

  private void averagingRun() {
    Path records = work.resolve("records");
    Path runs = work.resolve("runs");
    List<String> o = new ArrayList<>(BenchInputs.digitRecords(records, 4000));
    o.addAll(List.of("train.records=" + records, "train.output=" + runs.resolve("run-" + System.currentTimeMillis()),
        "train.workers=2", "train.batchSizePerWorker=" + batch, "train.averagingFrequency=" + frequency,
        "train.steps=" + (averagingWarmup + averagingSteps), "train.sampleEvery=0", "train.checkpointEvery=1000000",
        "tracking.uri=" + work.resolve("mlruns")));
    PipelineConfig config = PipelineConfig.load(null, o);
    SparkSession spark = SparkSessions.getOrCreate(new SparkSettings("local[2]", java.util.Map.of("spark.ui.enabled", "false")),
        "genpipe bench-train");
    try {
      if (!Files.exists(records.resolve("manifest.json"))) {
        PreprocessJob.run(config, spark, true);
      }
      TrainJob.Result r = TrainJob.run(config, spark, false, true);
      int rounds = r.rounds().size();
      int warmRounds = (int) Math.min(rounds, (averagingWarmup + frequency - 1) / frequency);
      System.out.printf("parameter averaging, 2 workers (local[2]) x batch %d, averagingFrequency %d, %d steps"
          + " (%d rounds), state handed over %s:%n", batch, frequency, r.steps(), rounds,
          Boolean.getBoolean(ParameterAveraging.SERIALIZE_PROPERTY)
              ? "serialised (broadcast + task results, as between JVMs on a cluster)"
              : "in-process (local mode's default)");
      System.out.printf("  whole run: wall %.1f s, compute %.1f s (slowest worker per round), overhead %.1f%%;"
          + " after the first round (graph build + data load): overhead %.1f%%%n",
          r.seconds(), r.computeSeconds(), 100 * r.overhead(), 100 * r.roundOverhead(Math.min(1, rounds), rounds));
      System.out.printf("  overhead per %d rounds: %s%n", WINDOW, windows(r));
      if (warmRounds < rounds) {
        double wall = r.roundSeconds(warmRounds, rounds);
        double compute = r.roundComputeSeconds(warmRounds, rounds);
        System.out.printf("  timed rounds %d-%d (after %d warm-up rounds): wall %.1f s, compute %.1f s, overhead %.1f%%"
            + " (target < 10%%), %.1f ms per round; %,.0f images/s over both workers%n", warmRounds + 1, rounds,
            warmRounds, wall, compute, 100 * TrainJob.Result.overhead(wall, compute),
            1000 * (wall - compute) / (rounds - warmRounds), (double) (rounds - warmRounds) * frequency * 2 * batch / wall);
      }
    } finally {
      spark.stop();
    }
  }
}
