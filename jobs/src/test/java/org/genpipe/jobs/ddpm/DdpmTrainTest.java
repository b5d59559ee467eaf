package org.genpipe.jobs.ddpm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.SparkSession;
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
 * The text-conditioned DDPM through the pipeline on Spark local[2]: single digits rendered by the
 * pipeline -> records -> `train` with model ddpm on 2 workers by parameter averaging -> sample grids
 * with one row per held-out text, the denoising report, MLflow -> resume exactness (EMA included) ->
 * `generate --text` with a reader's captions -> `evaluate` with the OCR metrics of a reader it trains
 * and caches.
 */
class DdpmTrainTest {
  static SparkSession spark;
  @TempDir static Path dir;
  static Path records;

  @BeforeAll
  static void start() {
    spark = SparkTestSession.start(Map.of());
    records = dir.resolve("records");
    PreprocessJob.run(PipelineConfig.load(null, List.of("preprocess.dataset=captcha-render",
        "preprocess.output=" + records, "preprocess.captcha.alphabet=0123456789", "preprocess.captcha.minLength=1",
        "preprocess.captcha.maxLength=1", "preprocess.captcha.height=28", "preprocess.captcha.width=28",
        "preprocess.captcha.renderWidth=48", "preprocess.captcha.renderHeight=48", "preprocess.captcha.count=600",
        "preprocess.captcha.testFraction=0.1")), spark, false);
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  static PipelineConfig config(String out, String... more) {
    List<String> o = new ArrayList<>(List.of("model.name=ddpm", "model.ddpm.alphabet=0123456789",
        "model.ddpm.maxLength=1", "model.ddpm.width=8", "model.ddpm.channelMults=[1,2]", "model.ddpm.groups=4",
        "model.ddpm.textWidth=16", "model.ddpm.samplerSteps=4", "model.ddpm.optimizer.learningRate=0.001",
        "train.records=" + records, "train.evalSplit=test", "train.output=" + dir.resolve(out),
        "train.batchSizePerWorker=8", "train.averagingFrequency=5", "tracking.uri=" + dir.resolve("mlruns"),
        "evaluate.cache=" + dir.resolve("cache")));
    o.addAll(List.of(more));
    return PipelineConfig.load(null, o);
  }

  @Test
  void trainsAcrossWorkersDrawsTextsAndIsJudgedByAReader() throws Exception {
    TrainJob.Result run = TrainJob.run(config("run", "train.steps=40", "train.sampleEvery=20"), spark, false, false);
    Path mlrun = Path.of(run.trackingLocation());
    List<String> loss = Files.readAllLines(mlrun.resolve("metrics/loss"));
    assertThat(loss).hasSize(40);
    assertThat(RunFiles.meanValue(loss.subList(30, 40))).isLessThan(RunFiles.meanValue(loss.subList(0, 5)));
    assertThat(dir.resolve("run/samples/step-00000020.png")).exists();
    assertThat(mlrun.resolve("artifacts/denoising.png")).exists();
    assertThat(mlrun.resolve("params/model.ddpm.guidance")).hasContent("2.0");

    // generate: rows per text, captioned with what a reader reads
    TrainJob.Result reader = TrainJob.run(PipelineConfig.load(null, List.of("model.name=captcha-reader",
        "model.captchaReader.alphabet=0123456789", "model.captchaReader.maxLength=1", "model.captchaReader.width=8",
        "train.records=" + records, "train.output=" + dir.resolve("reader"), "train.batchSizePerWorker=16",
        "train.steps=30", "train.sampleEvery=0", "tracking.uri=" + dir.resolve("mlruns"))), spark, false, false);
    assertThat(reader.steps()).isEqualTo(30);
    int[] code = new int[1];
    Path grid = dir.resolve("sevens.png");
    String out = CliTest.run(code, "generate", "--checkpoint", dir.resolve("run").toString(), "--text", "7", "--text",
        "1", "-n", "3", "--steps", "3", "--guidance", "3", "--reader", dir.resolve("reader").toString(), "--grid",
        grid.toString(), "--folder", dir.resolve("drawn").toString());
    assertThat(code[0]).as(out).isZero();
    assertThat(out).contains("reads the asked text in").contains("of 6 images");
    assertThat(grid).exists();
    assertThat(dir.resolve("drawn/7-002.png")).exists();
    out = CliTest.run(code, "generate", "--checkpoint", dir.resolve("run").toString(), "--text", "7a", "--grid",
        grid.toString());
    assertThat(code[0]).isEqualTo(2);
    assertThat(out).contains("--text: text '7a' has 2 characters");
    out = CliTest.run(code, "generate", "--checkpoint", dir.resolve("run").toString(), "--text", "x", "--grid",
        grid.toString());
    assertThat(out).contains("'x', which is not in the model's alphabet '0123456789'");
    out = CliTest.run(code, "generate", "--checkpoint", dir.resolve("reader").toString(), "--guidance", "2", "--grid",
        grid.toString());
    assertThat(code[0]).isEqualTo(2);
    assertThat(out).contains("has no diffusion sampler");

    // evaluate: one sample per test record's text, read by a reader trained and cached for the purpose
    EvaluateJob.Result eval = EvaluateJob.run(config("run", "evaluate.checkpoint=" + dir.resolve("run"),
        "evaluate.readerSteps=40", "evaluate.domain.steps=40"), spark, false);
    double gen = eval.value("ocr_seq_acc_gen_60_test");
    double real = eval.value("ocr_seq_acc_real_60_test");
    assertThat(gen).isBetween(0.0, 1.0);
    assertThat(real).isBetween(0.0, 1.0);
    assertThat(eval.value("ocr_cer_gen_60_test")).isBetween(0.0, 1.0);
    assertThat(eval.value("ocr_seq_acc_ratio_60_test")).isEqualTo(gen / real);
    assertThat(eval.value("fid_domain_gen_60_test")).isPositive();
    assertThat(eval.value("diversity_domain_gen_60_test")).isPositive();
    assertThat(eval.value("text_diversity_domain_gen_60_test")).isPositive();
    assertThat(Files.list(dir.resolve("cache")).map(p -> p.getFileName().toString())).anyMatch(n -> n.startsWith("reader-"));
    // the named reader instead of the cached one
    EvaluateJob.Result named = EvaluateJob.run(config("run", "evaluate.checkpoint=" + dir.resolve("run"),
        "evaluate.reader=" + dir.resolve("reader"), "evaluate.domain.steps=40"), spark, false);
    assertThat(named.value("ocr_seq_acc_real_60_test")).isBetween(0.0, 1.0);
    // the reader's features as the extractor: FID/KID named *_reader_*
    EvaluateJob.Result byReader = EvaluateJob.run(config("run", "evaluate.checkpoint=" + dir.resolve("run"),
        "evaluate.reader=" + dir.resolve("reader"), "evaluate.extractor=reader"), spark, false);
    assertThat(byReader.value("fid_reader_gen_60_test")).isPositive();
    assertThat(byReader.value("kid_reader_gen_60_test")).isFinite();
    assertThat(byReader.value("ocr_seq_acc_real_60_test")).isEqualTo(named.value("ocr_seq_acc_real_60_test"));
    assertThat(byReader.extractor()).startsWith("reader-").contains("held out sequence accuracy");
  }

  @Test
  void fivePlusResumeFiveEqualsTenStraightIncludingTheAverage() {
    TrainJob.run(config("resumed", "train.steps=5", "train.sampleEvery=0"), spark, false, false);
    TrainJob.Result resumed = TrainJob.run(config("resumed", "train.steps=10", "train.sampleEvery=0"), spark, true,
        false);
    TrainJob.Result straight = TrainJob.run(config("straight", "train.steps=10", "train.sampleEvery=0"), spark, false,
        false);
    assertThat(resumed.state().get("unet/ema")).isNotEqualTo(resumed.state().get("unet/params"));
    assertThat(resumed.state().maxAbsDiff(straight.state())).isZero();
    assertThatThrownBy(() -> TrainJob.run(config("bad", "train.steps=2", "model.ddpm.alphabet=a01234"), spark, false,
        false)).hasStackTraceContaining("not in the model's alphabet 'a01234'");
  }
}
