package org.genpipe.jobs.bench;

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
      "Debian's python3-torch, --torch-threads threads) in one run, with the ratio; (2) the parameter-averaging",
      "overhead: wall time of a 2-worker Spark run (local[2]) against the workers' pure compute time.",
      "ND4J's threads follow OMP_NUM_THREADS (the launcher sets 1 unless you set it)."
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

  @Option(names = "--python", defaultValue = "/usr/bin/python3", description = "Python with torch (default ${DEFAULT-VALUE}).")
  String python;

  @Option(names = "--averaging-steps", defaultValue = "300", description = "Steps of the 2-worker run (default ${DEFAULT-VALUE}).")
  long averagingSteps;

  @Option(names = "--averaging-frequency", defaultValue = "10", description = "Averaging frequency (default ${DEFAULT-VALUE}).")
  int frequency;

  @Option(names = "--work", defaultValue = "data/bench-train", description = "Scratch folder (default ${DEFAULT-VALUE}).")
  Path work;

  @Override
  public Integer call() throws Exception {
    System.out.printf("beta-VAE step, batch %d, latent 16, Adam; OMP_NUM_THREADS=%s%n", batch,
        System.getenv().getOrDefault("OMP_NUM_THREADS", "(unset)"));
    double ours = javaStepMillis();
    System.out.printf("  this project (SameDiff, ND4J %s): %.2f ms/step%n", backend(), ours);
    String torch = torchStepMillis();
    if (torch != null) {
      double ref = PythonReference.number(torch, "ms_per_step");
      System.out.printf("  PyTorch CPU %s: %.2f ms/step%n", torch, ref);
      System.out.printf("  ratio this/PyTorch: %.2f (target <= 0.8)%n", ours / ref);
    }
    averagingOverhead();
    return 0;
  }

  private static String backend() {
    return org.nd4j.linalg.factory.Nd4j.getBackend().getClass().getSimpleName();
  }

  private double javaStepMillis() {
    BetaVae vae = new BetaVae(new BetaVaeSettings(16, 1.0, Divergence.KL, OptimizerSettings.adam(1e-3, 0.9, 0.999)), 0);
    var images = Noise.gaussian(1, batch, 1, 28, 28);
    images = org.nd4j.linalg.ops.transforms.Transforms.sigmoid(images, false);
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < batch; i++) {
      ids.add("b" + i);
    }
    Minibatch mb = new Minibatch(images, null, null, null, ids);
    for (int s = 0; s < warmup; s++) {
      vae.trainStep(mb, s, s);
    }
    long t = System.nanoTime();
    for (int s = 0; s < steps; s++) {
      vae.trainStep(mb, warmup + s, s);
    }
    return (System.nanoTime() - t) / 1e6 / steps;
  }

  private String torchStepMillis() throws Exception {
    return PythonReference.run(python, "beta_vae_torch.py", "ms_per_step", "python3-torch", PythonReference.TORCH_ENV,
        String.valueOf(torchThreads),
        String.valueOf(batch), "16", String.valueOf(Math.min(warmup, 100)), String.valueOf(steps));
  }

  private void averagingOverhead() {
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
