package org.genpipe.jobs.preprocess;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.apache.spark.sql.SparkSession;
import org.genpipe.common.data.OnBadRecord;
import org.genpipe.common.data.PreprocessSettings;
import org.genpipe.jobs.cli.ConfigOptions;
import org.genpipe.jobs.cli.Validated;
import org.genpipe.jobs.config.PipelineConfig;
import org.genpipe.jobs.inspect.ManifestSummary;
import org.genpipe.jobs.spark.SparkSessions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
    name = "preprocess",
    mixinStandardHelpOptions = true,
    description = {
      "Turn a raw data set in its official format into sharded Parquet records and a manifest.json.",
      "Data sets: fashion-mnist, cifar10, cityscapes, captcha (folder of <text>.png), captcha-render (embedded)."
    })
public final class PreprocessCommand implements Callable<Integer>, Validated {
  @Mixin ConfigOptions options;

  @Option(names = "--overwrite", description = "Replace an existing output (the old one is removed only after the new one is complete).")
  boolean overwrite;

  @Option(
      names = "--on-bad-record",
      paramLabel = "fail|skip",
      description = "Same as --set preprocess.onBadRecord=...: fail (default) or skip unusable items and count them in the manifest.")
  OnBadRecord onBadRecord;

  private PipelineConfig config() {
    List<String> extra = new ArrayList<>();
    if (onBadRecord != null) {
      extra.add("preprocess.onBadRecord=" + onBadRecord);
    }
    PipelineConfig config = options.load(extra);
    config.requirePreprocess();
    return config;
  }

  @Override
  public List<String> validate() {
    PreprocessSettings p = config().requirePreprocess();
    return List.of("preprocess " + p.dataset() + (p.input() == null || p.input().isBlank() ? "" : " from " + p.input())
        + " -> " + p.output() + " (" + p.shardSize() + " records per shard, bad records: " + p.onBadRecord()
        + (overwrite ? ", an existing output replaced" : ", an existing output refused") + ")");
  }

  @Override
  public Integer call() {
    PipelineConfig config = config();
    SparkSession spark = SparkSessions.getOrCreate(config.spark(), "genpipe preprocess " + config.preprocess().dataset()
        + " -> " + config.preprocess().output());
    try {
      PreprocessJob.Result r = PreprocessJob.run(config, spark, overwrite);
      System.out.println(ManifestSummary.describe(r.manifest()));
      System.out.printf("wrote %d records in %d shards to %s in %.1f s%n",
          r.manifest().total(), r.manifest().shards().size(), r.output(), r.millis() / 1000.0);
      return 0;
    } finally {
      spark.stop();
    }
  }
}
