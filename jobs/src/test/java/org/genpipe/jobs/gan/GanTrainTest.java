package org.genpipe.jobs.gan;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.awt.image.BufferedImage;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import org.apache.spark.sql.SparkSession;
import org.genpipe.common.io.BadInputException;
import static org.genpipe.jobs.RunFiles.frames;
import static org.genpipe.jobs.RunFiles.meanValue;
import static org.genpipe.jobs.RunFiles.readAll;

import org.genpipe.jobs.CliTest;
import org.genpipe.jobs.SparkTestSession;
import org.genpipe.jobs.config.PipelineConfig;
import org.genpipe.jobs.evaluate.EvaluateJob;
import org.genpipe.jobs.preprocess.PreprocessJob;
import org.genpipe.jobs.train.TrainJob;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The GAN models through the whole pipeline on Spark local[2]: a tiny set written in CIFAR-10's
 * binary format (class k = a square of its own colour on a dark background) -> preprocess -> train
 * by parameter averaging on 2 workers -> MLflow metrics, class-row sample grids, the GIF, the
 * warning signs -> evaluate (domain FID, balanced classes) -> generate --class.
 */
class GanTrainTest {
  static SparkSession spark;
  @TempDir static Path dir;
  static Path records;
  static TrainJob.Result cgan;

  @BeforeAll
  static void start() throws IOException {
    spark = SparkTestSession.start(Map.of());
    Path raw = dir.resolve("raw");
    writeCifar(raw, 40, 60);
    records = dir.resolve("records");
    PreprocessJob.run(PipelineConfig.load(null, List.of("preprocess.dataset=cifar10", "preprocess.input=" + raw,
        "preprocess.output=" + records, "preprocess.shardSize=100")), spark, false);
    cgan = TrainJob.run(config("cgan", "run-cgan", "train.steps=60", "train.sampleEvery=20", "train.monitor=true"),
        spark, false, false);
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  static PipelineConfig config(String model, String run, String... more) {
    List<String> o = new ArrayList<>(List.of("model.name=" + model, "model.gan.latentSize=16", "model.gan.width=8",
        "model.gan.generatorOptimizer.learningRate=0.002", "model.gan.discriminatorOptimizer.learningRate=0.002",
        "train.records=" + records, "train.output=" + dir.resolve(run), "train.batchSizePerWorker=16",
        "train.averagingFrequency=5", "evaluate.cache=" + dir.resolve("cache"), "evaluate.domain.steps=80",
        "evaluate.domain.batchSize=32", "evaluate.domain.featureSize=16", "tracking.uri=" + dir.resolve("mlruns")));
    o.addAll(List.of(more));
    return PipelineConfig.load(null, o);
  }

  /** CIFAR-10 binary batches: per record a label byte, then the R, G and B planes of 32x32. */
  static void writeCifar(Path raw, int perBatch, int test) throws IOException {
    Files.createDirectories(raw);
    Random rnd = new Random(3);
    for (int b = 1; b <= 6; b++) {
      Path f = raw.resolve(b <= 5 ? "data_batch_" + b + ".bin" : "test_batch.bin");
      try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(f))) {
        for (int i = 0; i < (b <= 5 ? perBatch : test); i++) {
          int label = rnd.nextInt(10);
          int x0 = 4 + rnd.nextInt(12);
          int y0 = 4 + rnd.nextInt(12);
          int[] rgb = {200 * ((label + 1) & 1) + 40, 200 * (((label + 1) >> 1) & 1) + 40, 120 + 12 * label};
          out.write(label);
          for (int c = 0; c < 3; c++) {
            for (int p = 0; p < 1024; p++) {
              int y = p / 32;
              int x = p % 32;
              out.write(y >= y0 && y < y0 + 12 && x >= x0 && x < x0 + 12 ? rgb[c] : 20);
            }
          }
        }
      }
    }
    Files.writeString(raw.resolve("batches.meta.txt"),
        "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n");
  }

  @Test
  void conditionalGanTrainsAcrossWorkersAndShowsWhatHappens() throws Exception {
    Path run = Path.of(cgan.trackingLocation());
    for (String m : List.of("d_loss", "g_loss", "d_real", "d_fake", "sample_diversity", "sample_class_entropy",
        "sample_class_match")) {
      assertThat(run.resolve("metrics/" + m)).as(m).exists();
    }
    // params: the chosen model's own section
    assertThat(run.resolve("params/model.name")).hasContent("cgan");
    assertThat(run.resolve("params/model.gan.loss")).hasContent("non-saturating");
    assertThat(run.resolve("params/model.gan.augment")).hasContent("[]");
    assertThat(run.resolve("params/model.betaVae.beta")).doesNotExist();
    List<String> dLoss = Files.readAllLines(run.resolve("metrics/d_loss"));
    assertThat(dLoss).hasSize(60);
    // D learns to tell real from generated: its loss falls from ~2 ln 2
    assertThat(meanValue(dLoss.subList(50, 60))).isLessThan(meanValue(dLoss.subList(0, 3)));
    // and G moves toward the data: the mean generated image nears the test images' mean image
    var data = org.genpipe.common.records.Minibatch.of(readAll(records, "test"),
        org.genpipe.common.records.PixelRange.ZERO_ONE).images().mean(0);
    var factory = PipelineConfig.load(null, List.of("model.name=cgan", "model.gan.latentSize=16", "model.gan.width=8"))
        .requireModel().factory(new org.genpipe.common.records.ImageShape(32, 32, 3), 10, 42, "test");
    try (var fresh = (org.genpipe.models.GenerativeModel) factory.create();
        var trained = (org.genpipe.models.GenerativeModel) factory.create()) {
      trained.loadState(cgan.state());
      double before = fresh.generate(200, 5, null).mean(0).distance2(data);
      double after = trained.generate(200, 5, null).mean(0).distance2(data);
      assertThat(after).as("mean-image distance before %.2f", before).isLessThan(0.7 * before);
    }
    // warning signs at steps 20, 40 and the end
    assertThat(Files.readAllLines(run.resolve("metrics/sample_diversity"))).hasSize(3);
    for (String line : Files.readAllLines(run.resolve("metrics/sample_class_entropy"))) {
      assertThat(Double.parseDouble(line.split(" ")[1])).isBetween(0.0, 1.0);
    }
    // one row per class: 10 rows of 8 samples
    BufferedImage grid = ImageIO.read(dir.resolve("run-cgan/samples/step-00000060.png").toFile());
    assertThat((double) grid.getHeight() / grid.getWidth()).isGreaterThan(1.1);
    assertThat(frames(dir.resolve("run-cgan/samples.gif"))).isEqualTo(3);
    assertThat(run.resolve("artifacts/samples.gif")).exists();
    assertThat(run.resolve("artifacts/samples.png")).exists();

    // evaluation: balanced classes, no reconstruction metric for a GAN
    EvaluateJob.Result eval = EvaluateJob.run(PipelineConfig.load(null, List.of(
        "evaluate.checkpoint=" + dir.resolve("run-cgan"), "evaluate.cache=" + dir.resolve("cache"),
        "evaluate.domain.steps=80", "evaluate.domain.batchSize=32", "evaluate.domain.featureSize=16",
        "evaluate.kidSubsets=10", "tracking.uri=" + dir.resolve("mlruns"))), spark, false);
    assertThat(eval.metrics()).extracting(EvaluateJob.Metric::name)
        .containsExactly("fid_domain_gen_60_test", "kid_domain_gen_60_test", "kid_domain_gen_60_test_std",
            "diversity_domain_gen_60_test");
    assertThat(eval.value("fid_domain_gen_60_test")).isPositive().isFinite();

    // generate --class by name
    int[] code = new int[1];
    Path cats = dir.resolve("cats.png");
    String out = CliTest.run(code, "generate", "--checkpoint", dir.resolve("run-cgan").toString(), "--class", "cat",
        "-n", "4", "--grid", cats.toString());
    assertThat(code[0]).as(out).isZero();
    assertThat(cats).exists();
    out = CliTest.run(code, "generate", "--checkpoint", dir.resolve("run-cgan").toString(), "--class", "unicorn",
        "--grid", cats.toString());
    assertThat(code[0]).isNotZero();
    assertThat(out).contains("--class unicorn").contains("airplane");
    // an image condition for a model conditioned on classes
    out = CliTest.run(code, "generate", "--checkpoint", dir.resolve("run-cgan").toString(), "--condition-image",
        cats.toString(), "--grid", dir.resolve("translated.png").toString());
    assertThat(code[0]).isEqualTo(2);
    assertThat(out).contains("model cgan is not conditioned on images");
  }

  @Test
  void acganLogsItsClassifierAccuracyAndResumes() throws Exception {
    TrainJob.Result r = TrainJob.run(config("acgan", "run-acgan", "train.steps=10", "train.sampleEvery=0"), spark,
        false, false);
    Path run = Path.of(r.trackingLocation());
    for (String m : List.of("acc_real", "acc_fake", "d_class")) {
      assertThat(run.resolve("metrics/" + m)).as(m).exists();
    }
    // 5 + resume 5 gives the same both-network state as 10 straight
    TrainJob.run(config("acgan", "run-acgan-2", "train.steps=5", "train.sampleEvery=0"), spark, false, false);
    TrainJob.Result resumed = TrainJob.run(config("acgan", "run-acgan-2", "train.steps=10", "train.sampleEvery=0"),
        spark, true, false);
    assertThat(resumed.state().maxAbsDiff(r.state())).isZero();
  }

  @Test
  void unconditionalModelRejectsClassAndConditionalNeedsLabels() {
    assertThatThrownBy(() -> TrainJob.run(config("dcgan", "run-bad", "train.steps=5", "model.gan.loss=wgan-gp"),
        spark, false, false)).isInstanceOf(BadInputException.class).hasMessageContaining("discriminatorNorm: none");
    assertThatThrownBy(() -> PipelineConfig.load(null, List.of("model.name=dcgan", "model.gan.labelSmoothing=0.1",
        "model.gan.loss=hinge"))).hasMessageContaining("labelSmoothing");
  }
}
