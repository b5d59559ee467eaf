package org.genpipe.jobs.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.sql.SparkSession;
import org.genpipe.common.data.CaptchaSettings;
import org.genpipe.common.io.Storage;
import org.genpipe.common.records.Manifest;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.MinibatchIterator;
import org.genpipe.common.records.PixelRange;
import org.genpipe.common.records.ShardReader;
import org.genpipe.jobs.config.PipelineConfig;
import org.genpipe.jobs.config.SparkSettings;
import org.genpipe.jobs.preprocess.PreprocessJob;
import org.genpipe.jobs.spark.SparkSessions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
    name = "bench-data",
    mixinStandardHelpOptions = true,
    description = {
      "Benchmark the data path: generate realistic-size inputs in the official formats (60,000 + 10,000",
      "Fashion-MNIST, 50,000 + 10,000 CIFAR-10, 500 + 100 Cityscapes pairs, 10,000 CAPTCHAs), then time",
      "preprocess (images/s, Spark session already up) and records -> minibatches of 64 (images/s, one thread)."
    })
public final class DataBenchmarkCommand implements Callable<Integer> {
  @Option(names = "--work", defaultValue = "data/bench", description = "Folder for inputs and records (default: ${DEFAULT-VALUE}); inputs are reused.")
  Path work;

  @Option(names = "--scale", defaultValue = "1.0", description = "Fraction of the realistic sizes (default: ${DEFAULT-VALUE}).")
  double scale;

  @Option(names = "--master", defaultValue = "local[2]", description = "Spark master (default: ${DEFAULT-VALUE}).")
  String master;

  @Option(names = "--shard-size", defaultValue = "4096", description = "Records per shard (default: ${DEFAULT-VALUE}).")
  int shardSize;

  record Row(String dataset, long images, double preprocessSeconds, double readImagesPerSecond) {}

  @Override
  public Integer call() throws Exception {
    Random rnd = new Random(1);
    CaptchaSettings captcha = PipelineConfig.load(null, List.of()).preprocess().captcha();
    Path raw = work.resolve("raw");
    generate(raw.resolve("fashion-mnist"), d -> BenchInputs.fashionMnist(d, n(60_000), n(10_000), rnd));
    generate(raw.resolve("cifar10"), d -> BenchInputs.cifar10(d, n(10_000), n(10_000), rnd));
    generate(raw.resolve("cityscapes"), d -> BenchInputs.pairs(d, n(500), n(100), rnd));
    generate(raw.resolve("captcha"), d -> BenchInputs.captchas(d, n(10_000), captcha, 7));

    SparkSession spark = SparkSessions.getOrCreate(new SparkSettings(master, java.util.Map.of("spark.ui.enabled", "false")), "genpipe bench-data");
    List<Row> rows = new ArrayList<>();
    try {
      warmUp(spark);
      for (String ds : List.of("fashion-mnist", "cifar10", "cityscapes", "captcha")) {
        Path out = work.resolve("records").resolve(ds);
        PipelineConfig config = PipelineConfig.load(null, List.of(
            "preprocess.dataset=" + ds, "preprocess.input=" + raw.resolve(ds),
            "preprocess.output=" + out, "preprocess.shardSize=" + (ds.equals("cityscapes") ? 128 : shardSize),
            "preprocess.onBadRecord=skip"));
        PreprocessJob.Result r = PreprocessJob.run(config, spark, true);
        double read = readRate(r.manifest(), Storage.path(out.toString()));
        rows.add(new Row(ds, r.manifest().total(), r.millis() / 1000.0, read));
        System.out.printf("%s: %d images, preprocess %.1f s (%.0f images/s), minibatches %.0f images/s%n",
            ds, r.manifest().total(), r.millis() / 1000.0, r.manifest().total() / (r.millis() / 1000.0), read);
      }
    } finally {
      spark.stop();
    }
    System.out.println();
    System.out.println("| data set | images | preprocess s | preprocess images/s | records -> minibatches images/s |");
    System.out.println("|---|---:|---:|---:|---:|");
    for (Row r : rows) {
      System.out.printf("| %s | %d | %.1f | %.0f | %.0f |%n",
          r.dataset(), r.images(), r.preprocessSeconds(), r.images() / r.preprocessSeconds(), r.readImagesPerSecond());
    }
    return 0;
  }

  private int n(int full) {
    return Math.max(1, (int) Math.round(full * scale));
  }

  interface Gen {
    void run(Path into) throws Exception;
  }

  /** Generates into a temporary folder renamed when complete, so an interrupted run is not reused. */
  private static void generate(Path dir, Gen gen) throws Exception {
    if (Files.isDirectory(dir)) {
      return;
    }
    long t = System.nanoTime();
    Path tmp = dir.resolveSibling("." + dir.getFileName() + ".tmp");
    org.apache.commons.io.FileUtils.deleteQuietly(tmp.toFile());
    gen.run(tmp);
    Files.move(tmp, dir, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    System.out.printf("generated %s in %.1f s%n", dir, (System.nanoTime() - t) / 1e9);
  }

  /** A tiny preprocess so that JIT and Spark's first job do not count against the first data set. */
  private void warmUp(SparkSession spark) {
    PipelineConfig c = PipelineConfig.load(null, List.of(
        "preprocess.dataset=captcha-render", "preprocess.captcha.count=64", "preprocess.shardSize=16",
        "preprocess.output=" + work.resolve("records/warm-up")));
    PreprocessJob.run(c, spark, true);
  }

  /** Images/s of records -> minibatches (batch 64, [0, 1]) over all train shards, best of 3 passes. */
  static double readRate(Manifest m, org.apache.hadoop.fs.Path dir) {
    Configuration conf = new Configuration();
    double best = 0;
    for (int pass = 0; pass < 3; pass++) {
      long t = System.nanoTime();
      long images = 0;
      Iterator<Minibatch> it = new MinibatchIterator(ShardReader.read(m.shardPaths(dir, "train"), conf), 64, PixelRange.ZERO_ONE);
      while (it.hasNext()) {
        images += it.next().size();
      }
      best = Math.max(best, images / ((System.nanoTime() - t) / 1e9));
    }
    return best;
  }
}
