package org.genpipe.jobs.pix2pix;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.apache.spark.sql.SparkSession;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.records.ImageShape;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.PixelRange;
import org.genpipe.common.testing.RawFixtures;
import org.genpipe.jobs.CliTest;
import org.genpipe.jobs.SparkTestSession;
import org.genpipe.jobs.config.PipelineConfig;
import org.genpipe.jobs.evaluate.EvaluateJob;
import org.genpipe.jobs.RunFiles;
import org.genpipe.jobs.preprocess.PreprocessJob;
import org.genpipe.jobs.train.TrainJob;
import org.genpipe.models.Condition;
import org.genpipe.models.GenerativeModel;
import org.genpipe.models.ImageConditioned;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Pix2Pix through the pipeline on Spark local[2]: synthetic street scenes written as the official
 * pix2pix Cityscapes JPEG pairs (photo left, label map right) -> preprocess at 64x64 -> train on 2
 * workers by parameter averaging -> MLflow losses and params, (label map | generated | target) grids,
 * the GIF -> evaluate (paired metrics, domain FID/KID, segmentation score against an untrained start)
 * -> resume exactness -> generate from a label-map image and from a val record.
 */
class Pix2PixTrainTest {
  static SparkSession spark;
  @TempDir static Path dir;
  static Path records;
  static TrainJob.Result run;

  @BeforeAll
  static void start() throws IOException {
    spark = SparkTestSession.start(Map.of());
    Path raw = dir.resolve("raw");
    RawFixtures.scenePairs(raw, "train", 64, 64, 1);
    RawFixtures.scenePairs(raw, "val", 8, 64, 2);
    records = dir.resolve("records");
    PreprocessJob.run(PipelineConfig.load(null, List.of("preprocess.dataset=cityscapes", "preprocess.input=" + raw,
        "preprocess.output=" + records, "preprocess.shardSize=32", "preprocess.cityscapes.height=64",
        "preprocess.cityscapes.width=64")), spark, false);
    run = TrainJob.run(config("run", "train.steps=60", "train.sampleEvery=20"), spark, false, false);
  }

  @AfterAll
  static void stop() throws IOException {
    spark.stop();
    String keep = System.getProperty("genpipe.keepTestRun");
    if (keep != null) {
      org.apache.commons.io.FileUtils.copyDirectory(dir.resolve("run").toFile(), Path.of(keep).toFile());
    }
  }

  static PipelineConfig config(String out, String... more) {
    List<String> o = new ArrayList<>(List.of("model.name=pix2pix", "model.pix2pix.size=64",
        "model.pix2pix.generatorWidth=8", "model.pix2pix.discriminatorWidth=8", "train.records=" + records,
        "train.evalSplit=val", "train.output=" + dir.resolve(out), "train.batchSizePerWorker=4",
        "train.averagingFrequency=5", "model.pix2pix.generatorOptimizer.learningRate=0.001",
        "model.pix2pix.discriminatorOptimizer.learningRate=0.001", "evaluate.cache=" + dir.resolve("cache"),
        "tracking.uri=" + dir.resolve("mlruns")));
    o.addAll(List.of(more));
    return PipelineConfig.load(null, o);
  }

  @Test
  void trainsAcrossWorkersAndShowsTripletsLossesAndParams() throws Exception {
    Path mlrun = Path.of(run.trackingLocation());
    for (String m : List.of("d_loss", "g_loss", "g_gan", "g_l1", "d_real", "d_fake")) {
      assertThat(Files.readAllLines(mlrun.resolve("metrics/" + m))).as(m).hasSize(60);
    }
    assertThat(mlrun.resolve("params/model.name")).hasContent("pix2pix");
    assertThat(mlrun.resolve("params/model.pix2pix.l1Weight")).hasContent("100.0");
    assertThat(mlrun.resolve("params/model.pix2pix.discriminator")).hasContent("patch70");
    assertThat(mlrun.resolve("params/model.gan.loss")).doesNotExist();
    // G's L1 to the target falls over training
    List<String> l1 = Files.readAllLines(mlrun.resolve("metrics/g_l1"));
    assertThat(RunFiles.meanValue(l1.subList(50, 60))).isLessThan(0.8 * RunFiles.meanValue(l1.subList(0, 5)));
    // the same three val pairs as (label map | generated | target) rows, at steps 20, 40, 60; animated
    for (int step : new int[] {20, 40, 60}) {
      BufferedImage grid = ImageIO.read(dir.resolve(String.format("run/samples/step-%08d.png", step)).toFile());
      assertThat((double) grid.getHeight() / grid.getWidth()).isBetween(0.9, 1.3);
    }
    assertThat(RunFiles.frames(dir.resolve("run/samples.gif"))).isEqualTo(3);
    assertThat(mlrun.resolve("artifacts/translations.png")).exists();
    assertThat(mlrun.resolve("artifacts/loss.png")).exists();

    // held-out L1 of the trained model well below the untrained one's
    var factory = config("unused").requireModel().factory(new ImageShape(64, 64, 3), 0, 42, "test");
    Minibatch val = Minibatch.of(RunFiles.readAll(records, "val"), PixelRange.MINUS_ONE_ONE);
    try (GenerativeModel fresh = (GenerativeModel) factory.create();
        GenerativeModel trained = (GenerativeModel) factory.create()) {
      trained.loadState(run.state());
      double before = l1(fresh, val);
      double after = l1(trained, val);
      assertThat(after).as("val L1 before %.3f", before).isLessThan(0.7 * before);
    }
  }

  private static double l1(GenerativeModel m, Minibatch val) {
    ImageConditioned ic = (ImageConditioned) m;
    INDArray gen = m.generate(val.size(), 3, Condition.ofImages(ic.conditions(val)));
    INDArray target = ic.targets(val).add(1.0).muli(0.5);
    return gen.sub(target).norm1Number().doubleValue() / gen.length();
  }

  private static EvaluateJob.Result evaluate(String run) {
    return EvaluateJob.run(PipelineConfig.load(null, List.of("evaluate.checkpoint=" + dir.resolve(run),
        "evaluate.split=val", "evaluate.cache=" + dir.resolve("cache"), "evaluate.domain.steps=80",
        "evaluate.domain.batchSize=32", "evaluate.domain.featureSize=16", "evaluate.kidSubsets=10",
        "tracking.uri=" + dir.resolve("mlruns"))), spark, false);
  }

  @Test
  void evaluationTranslatesEveryValPairAndScoresItAgainstTheStart() {
    TrainJob.run(config("start", "train.steps=1", "train.sampleEvery=0"), spark, false, false);
    EvaluateJob.Result start = evaluate("start");
    EvaluateJob.Result trained = evaluate("run");
    assertThat(trained.metrics()).extracting(EvaluateJob.Metric::name).containsExactly("fid_domain_gen_8_val",
        "kid_domain_gen_8_val", "kid_domain_gen_8_val_std", "diversity_domain_gen_8_val", "l1_gen_8_val",
        "psnr_gen_8_val", "ssim_gen_8_val",
        "seg_domain_pixel_acc_gen_8_val", "seg_domain_class_acc_gen_8_val", "seg_domain_iou_gen_8_val",
        "seg_domain_pixel_acc_real_8_val", "seg_domain_class_acc_real_8_val", "seg_domain_iou_real_8_val");
    // 60 steps: closer to the targets, and the segmenter finds the label maps in the photos more often
    assertThat(trained.value("l1_gen_8_val")).isLessThan(0.8 * start.value("l1_gen_8_val"));
    assertThat(trained.value("psnr_gen_8_val")).isGreaterThan(start.value("psnr_gen_8_val"));
    assertThat(trained.value("ssim_gen_8_val")).isGreaterThan(start.value("ssim_gen_8_val"));
    assertThat(trained.value("seg_domain_pixel_acc_gen_8_val"))
        .isGreaterThan(start.value("seg_domain_pixel_acc_gen_8_val") + 0.1);
    assertThat(trained.value("seg_domain_iou_gen_8_val")).isGreaterThan(start.value("seg_domain_iou_gen_8_val"));
    // the real photos' score is the ceiling: the same segmenter (cached), the same photos
    assertThat(trained.value("seg_domain_pixel_acc_real_8_val")).isEqualTo(start.value("seg_domain_pixel_acc_real_8_val"))
        .isGreaterThan(0.8).isGreaterThanOrEqualTo(trained.value("seg_domain_pixel_acc_gen_8_val") - 0.05);
    assertThat(trained.warnings()).anyMatch(w -> w.contains("strongly biased"));
    // the same checkpoint evaluated again: the same numbers (dropout noise seeded per pair)
    assertThat(evaluate("run").metrics()).isEqualTo(trained.metrics());

    // photo -> label map: the generated maps' colours are read as classes, no segmenter ceiling
    TrainJob.run(config("to-labels", "train.steps=2", "train.sampleEvery=0", "model.pix2pix.direction=photo-to-labels"),
        spark, false, false);
    assertThat(evaluate("to-labels").metrics()).extracting(EvaluateJob.Metric::name).contains("l1_gen_8_val",
        "seg_palette_pixel_acc_gen_8_val", "seg_palette_iou_gen_8_val")
        .doesNotContain("seg_domain_pixel_acc_real_8_val");
  }

  @Test
  void fivePlusResumeFiveEqualsTenStraight() {
    TrainJob.Result straight = TrainJob.run(config("straight", "train.steps=10", "train.sampleEvery=0"), spark, false,
        false);
    TrainJob.run(config("resumed", "train.steps=5", "train.sampleEvery=0"), spark, false, false);
    TrainJob.Result resumed = TrainJob.run(config("resumed", "train.steps=10", "train.sampleEvery=0"), spark, true,
        false);
    assertThat(resumed.steps()).isEqualTo(10);
    assertThat(resumed.state().maxAbsDiff(straight.state())).isZero();
  }

  @Test
  void generateTranslatesLabelMapImagesAndRecords() throws Exception {
    // a label map written as a PNG of the model's size
    Path labels = dir.resolve("labels.png");
    var pair = org.genpipe.common.testing.Scenes.pairs(1, 64, 77).get(0);
    BufferedImage img = new BufferedImage(64, 64, BufferedImage.TYPE_INT_RGB);
    for (int p = 0; p < 64 * 64; p++) {
      byte[] m = pair.labelMap();
      img.setRGB(p % 64, p / 64, ((m[3 * p] & 0xFF) << 16) | ((m[3 * p + 1] & 0xFF) << 8) | (m[3 * p + 2] & 0xFF));
    }
    ImageIO.write(img, "png", labels.toFile());
    int[] code = new int[1];
    Path grid = dir.resolve("translated.png");
    Path folder = dir.resolve("translated");
    String out = CliTest.run(code, "generate", "--checkpoint", dir.resolve("run").toString(), "--condition-image",
        labels.toString(), "--grid", grid.toString(), "--folder", folder.toString());
    assertThat(code[0]).as(out).isZero();
    assertThat(ImageIO.read(folder.resolve("labels.png").toFile()).getWidth()).isEqualTo(64);
    assertThat(ImageIO.read(grid.toFile()).getWidth()).isGreaterThan(ImageIO.read(grid.toFile()).getHeight());
    out = CliTest.run(code, "generate", "--checkpoint", dir.resolve("run").toString(), "--condition-record", "val/3",
        "--condition-record", "val/5", "--grid", grid.toString());
    assertThat(code[0]).as(out).isZero();
    BufferedImage triplets = ImageIO.read(grid.toFile());
    assertThat(triplets.getWidth()).isGreaterThan(triplets.getHeight()); // 3 columns, 2 rows

    // bad input: a label map of the wrong size, an unknown record, no condition (a condition for a model of
    // another kind: GanTrainTest)
    Path small = dir.resolve("small.png");
    ImageIO.write(new BufferedImage(32, 32, BufferedImage.TYPE_INT_RGB), "png", small.toFile());
    out = CliTest.run(code, "generate", "--checkpoint", dir.resolve("run").toString(), "--condition-image",
        small.toString(), "--grid", grid.toString());
    assertThat(code[0]).isEqualTo(2);
    assertThat(out).contains(small.toString()).contains("32x32").contains("64x64");
    out = CliTest.run(code, "generate", "--checkpoint", dir.resolve("run").toString(), "--condition-record",
        "val/nope", "--grid", grid.toString());
    assertThat(code[0]).isEqualTo(2);
    assertThat(out).contains("val/nope").contains("ids look like");
    out = CliTest.run(code, "generate", "--checkpoint", dir.resolve("run").toString(), "--grid", grid.toString());
    assertThat(code[0]).isEqualTo(2);
    assertThat(out).contains("--condition-image");
  }

  @Test
  void recordsOfAnotherSizeOrWithoutPairsAreRefused() {
    assertThatThrownBy(() -> TrainJob.run(config("bad", "model.pix2pix.size=128", "train.steps=5"), spark, false,
        false)).isInstanceOf(BadInputException.class).hasMessageContaining("64x64x3")
        .hasMessageContaining("model.pix2pix.size 128");
  }
}
