package org.genpipe.jobs.reader;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.SparkSession;
import org.genpipe.common.io.BadInputException;
import org.genpipe.jobs.CliTest;
import org.genpipe.jobs.RunFiles;
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
 * The CAPTCHA reader through the pipeline on Spark local[2]: CAPTCHAs rendered by the pipeline ->
 * records -> `train` with model captcha-reader on 2 workers by parameter averaging -> MLflow loss,
 * sequence accuracy and CER per step, held-out measures and reading grids at every sample point ->
 * resume exactness; generate and evaluate refuse a reader's checkpoint.
 */
class CaptchaReaderTrainTest {
  static SparkSession spark;
  @TempDir static Path dir;
  static Path records;

  @BeforeAll
  static void start() {
    spark = SparkTestSession.start(Map.of());
    records = dir.resolve("records");
    PreprocessJob.run(PipelineConfig.load(null, List.of("preprocess.dataset=captcha-render",
        "preprocess.output=" + records, "preprocess.captcha.alphabet=abcd1234", "preprocess.captcha.minLength=3",
        "preprocess.captcha.maxLength=4", "preprocess.captcha.count=800", "preprocess.captcha.testFraction=0.1")),
        spark, false);
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  static PipelineConfig config(String out, String... more) {
    List<String> o = new ArrayList<>(List.of("model.name=captcha-reader", "model.captchaReader.alphabet=abcd1234",
        "model.captchaReader.maxLength=4", "model.captchaReader.width=16", "train.records=" + records,
        "train.evalSplit=test", "train.output=" + dir.resolve(out), "train.batchSizePerWorker=16",
        "train.averagingFrequency=10", "model.captchaReader.optimizer.learningRate=0.003",
        "tracking.uri=" + dir.resolve("mlruns")));
    o.addAll(List.of(more));
    return PipelineConfig.load(null, o);
  }

  @Test
  void trainsAcrossWorkersAndLogsHeldOutReading() throws Exception {
    TrainJob.Result run = TrainJob.run(config("run", "train.steps=800", "train.sampleEvery=400"), spark, false, false);
    Path mlrun = Path.of(run.trackingLocation());
    for (String m : List.of("loss", "seq_acc", "cer")) {
      assertThat(Files.readAllLines(mlrun.resolve("metrics/" + m))).as(m).hasSize(800);
    }
    List<String> loss = Files.readAllLines(mlrun.resolve("metrics/loss"));
    assertThat(RunFiles.meanValue(loss.subList(780, 800))).isLessThan(0.5 * RunFiles.meanValue(loss.subList(0, 20)));
    // held-out measures at steps 400 and 800 on the test split: reading gets better (800 steps: the
    // reader leaves CTC's plateau at ~300-500 steps here, how soon depends on the CPU's float rounding)
    List<String> cer = Files.readAllLines(mlrun.resolve("metrics/held_out_cer"));
    List<String> acc = Files.readAllLines(mlrun.resolve("metrics/held_out_seq_acc"));
    assertThat(cer).hasSize(2);
    assertThat(RunFiles.meanValue(cer.subList(1, 2))).isLessThan(0.6)
        .isLessThan(RunFiles.meanValue(cer.subList(0, 1)));
    // whole texts of 3-4 characters over 8: chance is ~0.001; 80 held-out CAPTCHAs
    assertThat(RunFiles.meanValue(acc.subList(1, 2))).isGreaterThan(0.03);
    assertThat(dir.resolve("run/samples/step-00000400.png")).exists();
    assertThat(RunFiles.frames(dir.resolve("run/samples.gif"))).isEqualTo(2);
    assertThat(mlrun.resolve("artifacts/readings.png")).exists();
    assertThat(mlrun.resolve("params/model.captchaReader.alphabet")).hasContent("abcd1234");

    // read: a split of records, and image files named by their text
    int[] code = new int[1];
    String out = CliTest.run(code, "read", "--checkpoint", dir.resolve("run").toString(), "--records",
        records.toString(), "--split", "test", "--show", "3");
    assertThat(code[0]).as(out).isZero();
    assertThat(out).contains("read 80 image(s)").contains("sequence accuracy").contains("... 77 more");
    var one = org.genpipe.common.records.Minibatch.of(RunFiles.readAll(records, "test").subList(0, 2),
        org.genpipe.common.records.PixelRange.ZERO_ONE);
    List<String> files = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      Path png = dir.resolve(one.texts().get(i) + ".png");
      javax.imageio.ImageIO.write(org.genpipe.common.image.Images.fromUnitFloats(one.images(), i), "png", png.toFile());
      files.add(png.toString());
    }
    out = CliTest.run(code, "read", "--checkpoint", dir.resolve("run").toString(), "--beam", "1", files.get(0),
        files.get(1));
    assertThat(code[0]).as(out).isZero();
    assertThat(out).contains("read 2 image(s)").contains("beam 1");
    out = CliTest.run(code, "read", "--checkpoint", dir.resolve("run").toString());
    assertThat(code[0]).isEqualTo(2);
    assertThat(out).contains("give image files to read, or --records DIR");

    // a reader's checkpoint generates nothing and is not what the evaluation judges
    out = CliTest.run(code, "generate", "--checkpoint", dir.resolve("run").toString(), "--grid",
        dir.resolve("g.png").toString());
    assertThat(code[0]).isEqualTo(2);
    assertThat(out).contains("captcha-reader, which reads images and does not generate them");
    assertThatThrownBy(() -> EvaluateJob.run(PipelineConfig.load(null, List.of("evaluate.checkpoint="
        + dir.resolve("run"), "tracking.uri=" + dir.resolve("mlruns"))), spark, false))
        .isInstanceOf(BadInputException.class).hasMessageContaining("the evaluation judges generative models");
  }

  @Test
  void fivePlusResumeFiveEqualsTenStraightAndBadTextsAreNamed() {
    TrainJob.Result straight = TrainJob.run(config("straight", "train.steps=10", "train.sampleEvery=0"), spark, false,
        false);
    TrainJob.run(config("resumed", "train.steps=5", "train.sampleEvery=0", "train.averagingFrequency=5"), spark,
        false, false);
    TrainJob.Result resumed = TrainJob.run(config("resumed", "train.steps=10", "train.sampleEvery=0",
        "train.averagingFrequency=5"), spark, true, false);
    TrainJob.Result straight5 = TrainJob.run(config("straight5", "train.steps=10", "train.sampleEvery=0",
        "train.averagingFrequency=5"), spark, false, false);
    assertThat(straight.steps()).isEqualTo(10);
    assertThat(resumed.state().maxAbsDiff(straight5.state())).isZero();
    // texts with characters the reader was not set up for
    assertThatThrownBy(() -> TrainJob.run(config("bad", "train.steps=2", "model.captchaReader.alphabet=abc123"), spark,
        false, false)).hasStackTraceContaining("not in model.captchaReader.alphabet 'abc123'");
  }
}
