package org.genpipe.jobs.bench;

import java.io.OutputStream;
import java.math.BigDecimal;
import java.math.MathContext;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import org.apache.spark.sql.SparkSession;
import org.genpipe.common.records.ImageShape;
import org.genpipe.jobs.config.PipelineConfig;
import org.genpipe.jobs.config.SparkSettings;
import org.genpipe.jobs.evaluate.EvaluateJob;
import org.genpipe.jobs.evaluate.FrechetDistance;
import org.genpipe.jobs.evaluate.NpzStats;
import org.genpipe.jobs.preprocess.PreprocessJob;
import org.genpipe.jobs.spark.SparkSessions;
import org.genpipe.jobs.train.TrainJob;
import org.genpipe.models.classify.DomainClassifier;
import org.genpipe.models.classify.DomainClassifierSettings;
import org.genpipe.models.classify.Targets;
import org.genpipe.models.nn.Noise;
import org.genpipe.models.nn.OptimizerSettings;
import org.nd4j.linalg.api.ndarray.INDArray;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
    name = "bench-fid",
    mixinStandardHelpOptions = true,
    description = {
      "Benchmark evaluation: (1) the Frechet distance of two --dim statistics here and with scipy.linalg.sqrtm",
      "(--python's scipy, as pytorch-fid computes it) on the same matrices, both against",
      "the exact value: the matrices are H B H^T / d with H a Hadamard matrix and B block-diagonal (2x2 blocks of",
      "dyadic numbers), so they are exact in float64 and tr((S1 S2)^1/2) has a closed form, evaluated with 50",
      "digits; (2) feature-extraction images/s of the domain classifier; (3) the evaluation job with 1 and 2",
      "Spark executors (local[1], local[2]) on a beta-VAE trained briefly on the embedded digits."
    })
public final class FidBenchmarkCommand implements Callable<Integer> {
  @Option(names = "--dim", defaultValue = "2048", description = "Feature dimension, a power of 2 (default ${DEFAULT-VALUE}).")
  int dim;

  @Option(names = "--repeats", defaultValue = "3", description = "Timed repeats, the best counts (default ${DEFAULT-VALUE}).")
  int repeats;

  @Option(names = "--python", defaultValue = PythonReference.DEFAULT_PYTHON,
      description = "Python with scipy (default ${DEFAULT-VALUE}, made by scripts/reference-env).")
  String python;

  @Option(names = "--samples", defaultValue = "10000", description = "Generated samples in the job runs (default ${DEFAULT-VALUE}).")
  long samples;

  @Option(names = "--work", defaultValue = "data/bench-fid", description = "Scratch folder (default ${DEFAULT-VALUE}).")
  Path work;

  @Override
  public Integer call() throws Exception {
    if (Integer.bitCount(dim) != 1 || dim < 2) {
      throw new org.genpipe.common.io.BadInputException("--dim must be a power of 2, got " + dim);
    }
    frechet();
    extraction();
    jobScaling();
    return 0;
  }

  /** Two statistics with an exact Frechet distance. */
  private record Exact(NpzStats.Stats a, NpzStats.Stats b, BigDecimal fid) {}

  private void frechet() throws Exception {
    System.out.printf("Frechet distance, %d-d statistics (exact value known):%n", dim);
    Exact e = exact(dim, 7);
    Files.createDirectories(work);
    Path fa = work.resolve("a.npz");
    Path fb = work.resolve("b.npz");
    for (var pair : List.of(java.util.Map.entry(fa, e.a()), java.util.Map.entry(fb, e.b()))) {
      try (OutputStream out = Files.newOutputStream(pair.getKey())) {
        NpzStats.write(pair.getValue(), out);
      }
    }
    double exact = e.fid().doubleValue();
    FrechetDistance.of(e.a().mu(), e.a().sigma(), e.b().mu(), e.b().sigma()); // warm-up
    double best = Double.MAX_VALUE;
    FrechetDistance.Result ours = null;
    for (int i = 0; i < repeats; i++) {
      long t = System.nanoTime();
      ours = FrechetDistance.of(e.a().mu(), e.a().sigma(), e.b().mu(), e.b().sigma());
      best = Math.min(best, (System.nanoTime() - t) / 1e9);
    }
    System.out.printf("  exact                         %.12f%n", exact);
    System.out.printf("  this project (%s)  %.12f  rel. error %.2e  %.2f s%n", ours.factor(), ours.distance(),
        Math.abs(ours.distance() - exact) / exact, best);
    String scipy = PythonReference.run(python, "fid_scipy.py", "fid_scipy", "scipy", java.util.Map.of(), fa.toString(), fb.toString(),
        String.valueOf(repeats));
    if (scipy != null) {
      double value = PythonReference.number(scipy, "fid_scipy");
      double seconds = PythonReference.number(scipy, "seconds");
      System.out.printf("  scipy.linalg.sqrtm            %.12f  rel. error %.2e  %.2f s%n", value,
          Math.abs(value - exact) / exact, seconds);
      System.out.printf("  speed-up over scipy: %.1fx (target >= 2x, error no worse)%n", seconds / best);
    }
  }

  /**
   * S = H B H^T / d with H the Sylvester Hadamard matrix (H H^T = d I) and B block-diagonal with SPD
   * 2x2 blocks 2^k [[p, q], [q, r]] (small integers, k in -12..4): every entry is a dyadic number that
   * float64 holds exactly, and S1 S2 = H B1 B2 H^T / d, so tr((S1 S2)^1/2) is the sum over blocks of
   * sqrt(tr M + 2 sqrt(det M)) for M = B1_b B2_b.
   */
  static Exact exact(int d, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    double[][][] blocks = new double[2][d / 2][];
    double[][] mus = new double[2][d];
    MathContext mc = new MathContext(50);
    BigDecimal meanTerm = BigDecimal.ZERO;
    BigDecimal traces = BigDecimal.ZERO;
    for (int s = 0; s < 2; s++) {
      for (int b = 0; b < d / 2; b++) {
        double scale = Math.scalb(1.0, r.nextInt(-12, 5));
        int p = r.nextInt(1, 1024);
        int q = r.nextInt(-1023, 1024);
        int rr = r.nextInt(1, 1024);
        while ((long) p * rr <= (long) q * q) {
          q /= 2;
        }
        blocks[s][b] = new double[] {scale * p, scale * q, scale * rr};
        traces = traces.add(new BigDecimal(scale * p)).add(new BigDecimal(scale * rr));
      }
      for (int i = 0; i < d; i++) {
        mus[s][i] = Math.scalb((double) r.nextInt(-4096, 4096), -10);
      }
    }
    for (int i = 0; i < d; i++) {
      BigDecimal diff = new BigDecimal(mus[0][i]).subtract(new BigDecimal(mus[1][i]));
      meanTerm = meanTerm.add(diff.multiply(diff));
    }
    BigDecimal traceRoot = BigDecimal.ZERO;
    for (int b = 0; b < d / 2; b++) {
      double[] x = blocks[0][b];
      double[] y = blocks[1][b];
      BigDecimal a11 = bd(x[0]).multiply(bd(y[0])).add(bd(x[1]).multiply(bd(y[1])));
      BigDecimal a12 = bd(x[0]).multiply(bd(y[1])).add(bd(x[1]).multiply(bd(y[2])));
      BigDecimal a21 = bd(x[1]).multiply(bd(y[0])).add(bd(x[2]).multiply(bd(y[1])));
      BigDecimal a22 = bd(x[1]).multiply(bd(y[1])).add(bd(x[2]).multiply(bd(y[2])));
      BigDecimal det = a11.multiply(a22).subtract(a12.multiply(a21));
      traceRoot = traceRoot.add(a11.add(a22).add(det.sqrt(mc).multiply(BigDecimal.valueOf(2))).sqrt(mc));
    }
    BigDecimal fid = meanTerm.add(traces).subtract(traceRoot.multiply(BigDecimal.valueOf(2)), mc);
    return new Exact(new NpzStats.Stats(mus[0], conjugate(blocks[0], d)), new NpzStats.Stats(mus[1],
        conjugate(blocks[1], d)), fid);
  }

  private static BigDecimal bd(double v) {
    return new BigDecimal(v);
  }

  /** H B H^T / d for block-diagonal B, exactly: (H B H^T)_ij = sum_b H_i. B_b H_j. (entries +-1). */
  private static double[][] conjugate(double[][] blocks, int d) {
    double[][] s = new double[d][d];
    for (int i = 0; i < d; i++) {
      for (int j = i; j < d; j++) {
        double sum = 0;
        for (int b = 0; b < d / 2; b++) {
          int u = 2 * b;
          int v = u + 1;
          double hiu = hadamard(i, u);
          double hiv = hadamard(i, v);
          double hju = hadamard(j, u);
          double hjv = hadamard(j, v);
          double[] x = blocks[b];
          sum += hiu * (x[0] * hju + x[1] * hjv) + hiv * (x[1] * hju + x[2] * hjv);
        }
        s[i][j] = sum / d;
        s[j][i] = s[i][j];
      }
    }
    return s;
  }

  /** Sylvester's Hadamard matrix: (-1)^popcount(i & j). */
  private static double hadamard(int i, int j) {
    return (Integer.bitCount(i & j) & 1) == 0 ? 1 : -1;
  }

  private void extraction() {
    System.out.println("feature extraction, domain classifier (batch 250, one thread per OMP_NUM_THREADS="
        + System.getenv().getOrDefault("OMP_NUM_THREADS", "(unset)") + "):");
    for (ImageShape shape : List.of(new ImageShape(28, 28, 1), new ImageShape(32, 32, 3))) {
      DomainClassifier c = new DomainClassifier(shape, Targets.ofClasses(10),
          new DomainClassifierSettings(1, 64, 128, OptimizerSettings.adam(1e-3, 0.9, 0.999)), 1);
      INDArray images = Noise.gaussian(3, 250, shape.channels(), shape.height(), shape.width());
      for (int i = 0; i < 10; i++) {
        c.features(images);
      }
      long t = System.nanoTime();
      int n = 0;
      while (System.nanoTime() - t < 3e9) {
        c.features(images);
        n += 250;
      }
      System.out.printf("  %dx%dx%d: %,.0f images/s%n", shape.height(), shape.width(), shape.channels(),
          n / ((System.nanoTime() - t) / 1e9));
    }
  }

  private void jobScaling() throws Exception {
    Path records = work.resolve("records");
    Path run = work.resolve("run");
    List<String> o = new java.util.ArrayList<>(BenchInputs.digitRecords(records, 11000));
    o.addAll(List.of("preprocess.captcha.testFraction=0.1", "train.records=" + records,
        "train.output=" + run, "train.steps=200", "train.sampleEvery=0", "tracking.uri=" + work.resolve("mlruns"),
        "evaluate.checkpoint=" + run, "evaluate.cache=" + work.resolve("cache"), "evaluate.samples=" + samples));
    PipelineConfig config = PipelineConfig.load(null, o);
    System.out.printf("evaluation job, %,d generated samples + reconstructions of the test split, beta-VAE:%n", samples);
    for (String master : List.of("local[2]", "local[1]", "local[2]")) {
      SparkSession spark = SparkSessions.getOrCreate(new SparkSettings(master, java.util.Map.of("spark.ui.enabled",
          "false")), "genpipe bench-fid");
      try {
        if (!Files.exists(records.resolve("manifest.json"))) {
          PreprocessJob.run(config, spark, false);
        }
        if (!Files.isDirectory(run.resolve("checkpoints"))) {
          TrainJob.run(config, spark, false, false);
        }
        List<String> withWorkers = new java.util.ArrayList<>(o);
        withWorkers.add("evaluate.workers=" + master.replaceAll("\\D", ""));
        PipelineConfig c = PipelineConfig.load(null, withWorkers);
        EvaluateJob.Result r = EvaluateJob.run(c, spark, false);
        System.out.printf("  %s: %.1f s, %,.0f generated images/s end to end (%s = %.4f)%n", master, r.seconds(),
            samples / r.seconds(), r.metrics().get(0).name(), r.metrics().get(0).value());
      } finally {
        spark.stop();
      }
    }
    System.out.println("  (the first local[2] run also trains the domain classifier and computes the reference"
        + " statistics; the last two use the caches)");
  }
}
