package org.genpipe.jobs.evaluate;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.apache.spark.sql.SparkSession;
import org.genpipe.jobs.checkpoint.Checkpoint;
import org.genpipe.jobs.cli.ConfigOptions;
import org.genpipe.jobs.cli.Validated;
import org.genpipe.jobs.config.EvaluateSettings;
import org.genpipe.jobs.config.PipelineConfig;
import org.genpipe.jobs.spark.SparkSessions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
    name = "evaluate",
    mixinStandardHelpOptions = true,
    description = {
      "FID and KID of a checkpoint on Spark: every executor generates samples (and reconstructions, for",
      "autoencoders; for image-to-image models one translation per pair of the split, with L1, PSNR, SSIM and",
      "a segmentation score), extracts features and returns float64 statistics; the reference split's statistics are",
      "computed once and cached (evaluate.cache). Features: evaluate.extractor = domain (a classifier trained",
      "on the records; metrics fid_domain_*) or inception (evaluate.inceptionGraph = classify_image_graph_def.pb",
      "of inception-2015-12-05; metrics fid_inception_*). Results: console, <run>/evaluation/step-N.json and",
      "the training run in MLflow. --repeats K: the mean over K generation seeds, with each metric's spread.",
      "Example: pipeline evaluate --config conf/eval-beta-vae-fashion-mnist.yaml --checkpoint runs/beta-vae"
    })
public final class EvaluateCommand implements Callable<Integer>, Validated {
  @Mixin ConfigOptions options;

  @Option(names = "--checkpoint", paramLabel = "DIR",
      description = "Checkpoint or run folder (overrides evaluate.checkpoint).")
  String checkpoint;

  @Option(names = "--export-stats", paramLabel = "NPZ",
      description = "Also write the reference statistics as a pytorch-fid .npz (overrides evaluate.exportStats).")
  String exportStats;

  @Option(names = "--repeats", paramLabel = "K",
      description = "Generate with K seeds (seed .. seed+K-1): each metric is their mean and <metric>_std their"
          + " spread, what a difference between runs must beat (overrides evaluate.repeats).")
  Integer repeats;

  private PipelineConfig config() {
    List<String> extra = new ArrayList<>();
    if (repeats != null) {
      extra.add("evaluate.repeats=" + repeats);
    }
    if (checkpoint != null) {
      extra.add("evaluate.checkpoint=" + checkpoint);
    }
    if (exportStats != null) {
      extra.add("evaluate.exportStats=" + exportStats);
    }
    PipelineConfig config = options.load(extra);
    config.requireEvaluate();
    return config;
  }

  @Override
  public List<String> validate() {
    EvaluateSettings e = config().requireEvaluate();
    if (!EvaluateSettings.given(e.checkpoint())) {
      throw new org.genpipe.common.config.ConfigException(
          "evaluate.checkpoint: missing: a checkpoint folder or a run folder (or --checkpoint DIR)");
    }
    return List.of("evaluate " + e.checkpoint() + " with the " + e.extractor() + " extractor on the "
        + e.split() + " split" + (EvaluateSettings.given(e.records()) ? " of " + e.records() : " of its training records"));
  }

  @Override
  public Integer call() {
    PipelineConfig config = config();
    SparkSession spark = SparkSessions.getOrCreate(config.spark(), "genpipe evaluate " + config.evaluate().checkpoint());
    try {
      print(EvaluateJob.run(config, spark, true));
      return 0;
    } finally {
      spark.stop();
    }
  }

  /** The summary every evaluation entry point prints. */
  public static void print(EvaluateJob.Result r) {
    System.out.printf("evaluated %s at step %,d (%s) in %.1f s%n", r.model(), r.step(), r.checkpoint(), r.seconds());
    System.out.println("features:    " + r.extractor());
    for (EvaluateJob.Metric m : r.metrics()) {
      if (!m.name().endsWith("_std")) {
        String std = r.metrics().stream().filter(s -> s.name().equals(m.name() + "_std")).findFirst()
            .map(s -> String.format(" +- %.6g", s.value())).orElse("");
        String clamped = m.protocol().getOrDefault("clamped_eigenvalues", "0");
        String how = m.protocol().containsKey("samples") ? String.format("%s samples, %s, reference %s x%s%s",
            m.protocol().get("samples"), m.protocol().get("resize"), m.protocol().get("reference_split"),
            m.protocol().get("reference_images"), "0".equals(clamped) ? "" : "; eigenvalues clamped: " + clamped)
            : m.protocol().containsKey("pairs") ? m.protocol().get("pairs") + " pairs"
            : m.protocol().containsKey("texts") ? m.protocol().get("texts") + " texts read"
            : m.protocol().containsKey("pixels") ? m.protocol().get("pixels") + " labelled pixels"
            : m.protocol().getOrDefault("definition", "");
        System.out.printf("  %-38s %.6g%s   (%s)%n", m.name(), m.value(), std, how);
      }
    }
    for (String w : r.warnings()) {
      System.out.println("warning: " + w);
    }
    System.out.println("report:      " + r.report());
    System.out.println("MLflow run:  " + r.trackingLocation());
    if (r.notLogged() != null) {
      System.out.println("warning: " + r.notLogged());
    }
  }
}
