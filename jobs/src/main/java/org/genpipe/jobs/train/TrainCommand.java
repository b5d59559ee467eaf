package org.genpipe.jobs.train;

import java.util.List;
import java.util.concurrent.Callable;
import org.apache.spark.sql.SparkSession;
import org.genpipe.jobs.cli.ConfigOptions;
import org.genpipe.jobs.cli.Validated;
import org.genpipe.jobs.config.PipelineConfig;
import org.genpipe.jobs.config.TrainSettings;
import org.genpipe.jobs.spark.SparkSessions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
    name = "train",
    mixinStandardHelpOptions = true,
    description = {
      "Train the configured model (model.*) on preprocessed records (train.records) by parameter averaging",
      "on Spark: train.workers replicas, train.batchSizePerWorker examples per step each, averaged every",
      "train.averagingFrequency steps. Writes checkpoints, sample grids and a loss plot to train.output and",
      "logs the run to MLflow (tracking.uri: ./mlruns file store or an http(s) server).",
      "Example: pipeline train --config conf/beta-vae-fashion-mnist.yaml --set train.steps=2000"
    })
public final class TrainCommand implements Callable<Integer>, Validated {
  @Mixin ConfigOptions options;

  @Option(names = "--resume", description = "Continue the run in train.output from its latest checkpoint.")
  boolean resume;

  private PipelineConfig config() {
    PipelineConfig config = options.load(List.of());
    config.requireTrain();
    config.requireModel();
    return config;
  }

  @Override
  public List<String> validate() {
    PipelineConfig config = config();
    TrainSettings t = config.train();
    return List.of(
        (resume ? "resume " : "train ") + config.model().name() + " on " + t.records() + " (split " + t.split() + ") -> "
            + t.output(),
        t.workers() + " workers x batch " + t.batchSizePerWorker() + ", averaged every " + t.averagingFrequency()
            + " steps, " + (t.steps() > 0 ? t.steps() + " steps" : t.epochs() + " epochs") + ", seed " + config.seed(),
        "tracking: " + config.tracking().uri()
            + (config.tracking().experiment().isBlank() ? "" : ", experiment " + config.tracking().experiment())
            + (config.tracking().runName().isBlank() ? "" : ", run " + config.tracking().runName()));
  }

  @Override
  public Integer call() {
    PipelineConfig config = config();
    SparkSession spark = SparkSessions.getOrCreate(config.spark(), "genpipe train " + config.model().name() + " -> "
        + config.train().output());
    try {
      TrainJob.Result r = TrainJob.run(config, spark, resume, true);
      print(r);
      return 0;
    } finally {
      spark.stop();
    }
  }

  /** The run summary every training entry point prints. */
  public static void print(TrainJob.Result r) {
    System.out.printf("trained %,d steps (%,d examples) in %.1f s; compute %.1f s, averaging overhead %.1f%%%n",
        r.steps(), r.examples(), r.seconds(), r.computeSeconds(),
        100 * r.overhead());
    System.out.println("run folder:  " + r.output());
    System.out.println("checkpoint:  " + r.checkpoint());
    System.out.println("pictures:    " + String.join(", ", r.pictures()));
    System.out.println("MLflow run:  " + r.trackingLocation()
        + (r.trackingLocation().startsWith("http") ? "" : "  (view: MLFLOW_ALLOW_FILE_STORE=true mlflow ui"
            + " --backend-store-uri " + r.trackingLocation().replaceAll("/[^/]+/[^/]+$", "") + ")"));
    if (r.notLogged() != null) {
      System.out.println("warning: " + r.notLogged());
    }
  }
}
