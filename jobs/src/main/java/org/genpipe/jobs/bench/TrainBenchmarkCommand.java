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
import org.genpipe.jobs.train.TrainJob;
import org.genpipe.models.nn.Noise;
import org.genpipe.models.vae.BetaVae;
import org.genpipe.models.vae.BetaVaeSettings;
import org.genpipe.models.vae.Divergence;
import org.genpipe.models.nn.OptimizerSettings;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
    name = "bench-train",
    mixinStandardHelpOptions = true,
    description = {
      "Benchmark training: (1) the beta-VAE step at --batch here and in PyTorch CPU (/usr/bin/python3 with",
      "Debian's python3-torch, --torch-threads threads) in alternating blocks, best of each, with the ratio;",
      "(2) the parameter-averaging overhead: wall time of a 2-worker Spark run (local[2], one ND4J thread per",
      "worker) against the workers' pure compute time.",
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

  @Option(names = "--python", defaultValue = "/usr/bin/python3", description = "Python with torch (default ${DEFAULT-VALUE}).")
  String python;

  @Option(names = "--averaging-steps", defaultValue = "1500", description = "Steps of the 2-worker run (default ${DEFAULT-VALUE}: "
      + "150 rounds at frequency 10; Spark's per-round code runs in the JVM's interpreter for the first few dozen).")
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
        block -> PythonReference.run(python, "beta_vae_torch.py", "ms_per_step", "python3-torch",
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
   * jobs; OpenMP's thread count is fixed when ND4J loads, so with more threads here the run goes to a
   * child JVM started with OMP_NUM_THREADS=1.
   */
  private void averagingOverhead() throws IOException, InterruptedException {
    if ("1".equals(System.getenv("OMP_NUM_THREADS"))) {
      averagingRun();
      return;
    }
    List<String> cmd = new ArrayList<>();
    cmd.add(ProcessHandle.current().info().command().orElse("java"));
    cmd.addAll(java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments());
    cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), org.genpipe.jobs.Cli.class.getName(),
        "bench-train", "--averaging-only", "--batch=" + batch, "--averaging-steps=" + averagingSteps,
        "--averaging-frequency=" + frequency, "--work=" + work));
    ProcessBuilder pb = new ProcessBuilder(cmd).inheritIO();
    pb.environment().put("OMP_NUM_THREADS", "1");
    int rc = pb.start().waitFor();
    if (rc != 0) {
      throw new IllegalStateException("the averaging run (" + String.join(" ", cmd) + ") exited with " + rc);
    }
  }

  private void averagingRun() {
    Path records = work.resolve("records");
    Path runs = work.resolve("runs");
    List<String> o = new ArrayList<>(BenchInputs.digitRecords(records, 4000));
    o.addAll(List.of("train.records=" + records, "train.output=" + runs.resolve("run-" + System.currentTimeMillis()),
        "train.workers=2", "train.batchSizePerWorker=" + batch, "train.averagingFrequency=" + frequency,
        "train.steps=" + averagingSteps, "train.sampleEvery=0", "train.checkpointEvery=1000000",
        "tracking.uri=" + work.resolve("mlruns")));
    PipelineConfig config = PipelineConfig.load(null, o);
    SparkSession spark = SparkSessions.getOrCreate(new SparkSettings("local[2]", java.util.Map.of("spark.ui.enabled", "false")),
        "genpipe bench-train");
    try {
      if (!Files.exists(records.resolve("manifest.json"))) {
        PreprocessJob.run(config, spark, true);
      }
      TrainJob.Result r = TrainJob.run(config, spark, false, true);
      System.out.printf("parameter averaging, 2 workers (local[2]) x batch %d, averagingFrequency %d, %d steps:%n",
          batch, frequency, r.steps());
      System.out.printf("  all rounds: wall %.1f s, compute %.1f s (slowest worker per round), overhead %.1f%%%n",
          r.seconds(), r.computeSeconds(), 100 * r.overhead());
      System.out.printf("  after the first round (graph build + data load excluded): wall %.1f s, compute %.1f s,"
          + " overhead %.1f%% (target < 10%%)%n", r.steadySeconds(), r.steadyComputeSeconds(), 100 * r.steadyOverhead());
      System.out.printf("  throughput %,.0f images/s over both workers%n", r.examples() / r.seconds());
    } finally {
      spark.stop();
    }
  }
}
