package org.genpipe.jobs;

import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.concurrent.Callable;
import org.apache.spark.sql.SparkSession;
import org.genpipe.jobs.cli.ConfigOptions;
import org.genpipe.jobs.cli.Validated;
import org.genpipe.jobs.config.PipelineConfig;
import org.genpipe.jobs.evaluate.EvaluateCommand;
import org.genpipe.jobs.evaluate.EvaluateJob;
import org.genpipe.jobs.inspect.InspectJob;
import org.genpipe.jobs.preprocess.PreprocessJob;
import org.genpipe.jobs.spark.SparkSessions;
import org.genpipe.jobs.train.TrainCommand;
import org.genpipe.jobs.train.TrainJob;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

@Command(
    name = "quickstart",
    mixinStandardHelpOptions = true,
    description = {
      "Run the pipeline end to end on the embedded data set (CAPTCHAs rendered from a seed; no download):",
      "preprocess -> records + manifest -> inspect grid -> train (parameter averaging, MLflow file store)",
      "-> evaluate (FID/KID with the domain classifier's features, logged into the training run).",
      "Each run trains into a new folder under train.output. Use conf/quickstart.yaml with --config."
    })
public final class QuickstartCommand implements Callable<Integer> {
  @Mixin ConfigOptions options;

  @Override
  public Integer call() throws Exception {
    if (options.configFile() == null) {
      throw new org.genpipe.common.io.BadInputException(
          "quickstart needs its config: ./pipeline quickstart --config conf/quickstart.yaml");
    }
    PipelineConfig base = options.load(List.of());
    String runFolder = base.requireTrain().output().replaceAll("/+$", "") + "/"
        + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss"));
    PipelineConfig config = options.load(List.of("train.output=" + runFolder));
    SparkSession spark = SparkSessions.getOrCreate(config.spark(), "genpipe quickstart");
    try {
      System.out.println("== preprocess: " + config.preprocess().dataset() + " -> " + config.preprocess().output());
      PreprocessJob.Result pre = PreprocessJob.run(config, spark, true);
      System.out.printf("wrote %d records in %d shards in %.1f s%n",
          pre.manifest().total(), pre.manifest().shards().size(), pre.millis() / 1000.0);
      String records = config.preprocess().output();
      InspectJob.Result ins = InspectJob.run(records, null, 36, config.seed(),
          records.replaceAll("/+$", "") + "-grid.png", spark.sparkContext().hadoopConfiguration());
      System.out.println("== inspect");
      System.out.print(ins.summary());
      System.out.println("records:  " + pre.output());
      System.out.println("grid:     " + ins.grid());
      System.out.printf("== train: %s, %d workers x batch %d, averaging every %d steps%n",
          config.requireModel().name(), config.train().workers(), config.train().batchSizePerWorker(),
          config.train().averagingFrequency());
      TrainJob.Result run = TrainJob.run(config, spark, false, true);
      TrainCommand.print(run);
      PipelineConfig eval = options.load(List.of("train.output=" + runFolder, "evaluate.checkpoint=" + runFolder));
      System.out.printf("== evaluate: %s features, reference split %s%n", eval.requireEvaluate().extractor(),
          eval.requireEvaluate().split());
      EvaluateCommand.print(EvaluateJob.run(eval, spark, true));
      String trackingRoot = config.tracking().uri();
      System.out.println("== next");
      System.out.println("  ./pipeline generate --checkpoint " + base.train().output() + " -n 64 --grid samples.png"
          + "   # the newest run under " + base.train().output());
      System.out.println("  ./pipeline evaluate --config " + options.configFile() + " --checkpoint " + runFolder);
      System.out.println("  ./pipeline compare --experiment " + run.experiment()
          + (config.tracking().isServer() ? " --set tracking.uri=" + trackingRoot : ""));
      if (!config.tracking().isServer()) {
        System.out.println("  MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri " + trackingRoot);
      }
      return 0;
    } finally {
      spark.stop();
    }
  }
}
