package org.genpipe.jobs.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.SparkSession;
import org.genpipe.jobs.checkpoint.Checkpoint;
import org.genpipe.jobs.config.PipelineConfig;
import org.genpipe.jobs.config.SparkSettings;
import org.genpipe.jobs.evaluate.EvaluateJob;
import org.genpipe.jobs.preprocess.PreprocessJob;
import org.genpipe.jobs.spark.SparkSessions;
import org.genpipe.jobs.train.TrainJob;

/**
 * What parameter averaging's frequency does to a GAN: the same small DCGAN (width 16, batch 32 per
 * worker, 2 workers, local[2]) on the same synthetic CIFAR-format set, once per averaging frequency;
 * per run D's loss over the last quarter (mean and standard deviation), D(x) and D(G(z)), and the
 * domain FID of 1,000 samples against the test split.
 */
final class AveragingStudy {
  private AveragingStudy() {}

  static void run(Path work, List<Integer> frequencies, int steps) throws Exception {
    Path raw = work.resolve("raw");
    Path records = work.resolve("records");
    if (!Files.exists(raw.resolve("test_batch.bin"))) {
      BenchInputs.cifar10(raw, 400, 500, new Random(7));
    }
    SparkSession spark = SparkSessions.getOrCreate(
        new SparkSettings("local[2]", java.util.Map.of("spark.ui.enabled", "false")), "genpipe bench-gan study");
    try {
      if (!Files.exists(records.resolve("manifest.json"))) {
        PreprocessJob.run(PipelineConfig.load(null, List.of("preprocess.dataset=cifar10", "preprocess.input=" + raw,
            "preprocess.output=" + records)), spark, true);
      }
      System.out.printf("DCGAN width 16, 2 workers x batch 32, %d steps, Adam 2e-4 (0.5, 0.999), non-saturating loss,"
          + " synthetic CIFAR-format set (2,000 train / 500 test)%n", steps);
      System.out.println("  F = averagingFrequency; D loss over the last quarter of the steps; fid_domain_gen_1k_test (1,000 samples)");
      System.out.printf("  %5s %10s %10s %8s %8s %10s %8s%n", "F", "D loss", "D loss sd", "D(x)", "D(G(z))", "fid_domain",
          "wall s");
      for (int f : frequencies) {
        Path out = work.resolve("runs/f" + f + "-" + System.currentTimeMillis());
        List<String> o = new ArrayList<>(List.of("model.name=dcgan", "model.gan.width=16", "train.records=" + records,
            "train.output=" + out, "train.workers=2", "train.batchSizePerWorker=32", "train.averagingFrequency=" + f,
            "train.steps=" + steps, "train.sampleEvery=0", "train.checkpointEvery=1000000",
            "tracking.uri=" + work.resolve("mlruns"), "evaluate.checkpoint=" + out, "evaluate.samples=1000",
            "evaluate.cache=" + work.resolve("cache"), "evaluate.kidSubsets=10"));
        PipelineConfig config = PipelineConfig.load(null, o);
        TrainJob.Result r = TrainJob.run(config, spark, false, true);
        Configuration conf = spark.sparkContext().hadoopConfiguration();
        List<Checkpoint.HistoryPoint> h = Checkpoint.read(r.checkpoint(), conf).info().history();
        List<Checkpoint.HistoryPoint> tail = h.subList(h.size() - h.size() / 4, h.size());
        double mean = tail.stream().mapToDouble(p -> p.losses().get("d_loss")).average().orElse(Double.NaN);
        double sd = Math.sqrt(tail.stream().mapToDouble(p -> Math.pow(p.losses().get("d_loss") - mean, 2)).sum()
            / Math.max(1, tail.size() - 1));
        double real = tail.stream().mapToDouble(p -> p.losses().get("d_real")).average().orElse(Double.NaN);
        double fake = tail.stream().mapToDouble(p -> p.losses().get("d_fake")).average().orElse(Double.NaN);
        EvaluateJob.Result e = EvaluateJob.run(config, spark, false);
        System.out.printf("  %5d %10.3f %10.3f %8.3f %8.3f %10.2f %8.1f%n", f, mean, sd, real, fake,
            e.metrics().get(0).value(), r.seconds());
      }
    } finally {
      spark.stop();
    }
  }
}
