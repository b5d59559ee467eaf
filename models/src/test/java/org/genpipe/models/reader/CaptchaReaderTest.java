package org.genpipe.models.reader;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.List;
import org.genpipe.common.data.CaptchaRenderer;
import org.genpipe.common.data.CaptchaSettings;
import org.genpipe.common.image.Images;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.records.ImageShape;
import org.genpipe.common.records.Minibatch;
import org.genpipe.models.ModelState;
import org.genpipe.models.nn.CheckedPlans;
import org.genpipe.models.nn.OptimizerSettings;
import org.genpipe.models.testing.StateMemoryCheck;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.factory.Nd4j;

class CaptchaReaderTest {
  static final String ALPHABET = "abcd1234";
  static final ImageShape SHAPE = new ImageShape(32, 96, 1);
  static final CaptchaReaderSettings SETTINGS =
      new CaptchaReaderSettings(ALPHABET, 4, 16, 4, 0, 0, OptimizerSettings.adam(3e-3, 0.9, 0.999));

  /** CAPTCHAs of 3-4 characters rendered by the pipeline's renderer, at 32x96 grey in [0, 1]. */
  static Minibatch captchas(int n, long seed, long first) {
    CaptchaRenderer r = new CaptchaRenderer(new CaptchaSettings(ALPHABET, 3, 4, 32, 96, 1, 0.1, n, 192, 64), seed);
    float[] px = new float[n * 32 * 96];
    List<String> texts = new ArrayList<>();
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      CaptchaRenderer.Captcha c = r.render(first + i);
      BufferedImage small = Images.resize(c.image(), 32, 96);
      byte[] grey = Images.toHwc(small, 1);
      for (int p = 0; p < grey.length; p++) {
        px[i * grey.length + p] = (grey[p] & 0xFF) / 255f;
      }
      texts.add(c.text());
      ids.add("c" + (first + i));
    }
    return new Minibatch(Nd4j.create(px, new long[] {n, 1, 32, 96}, 'c'), null, null, texts, ids);
  }

  @Test
  void stateMemoryIsTheStateItTrainsIn() {
    try (CaptchaReader reader = new CaptchaReader(SETTINGS, SHAPE, 7)) {
      StateMemoryCheck.check(reader);
    }
  }

  @Test
  void learnsToReadRenderedCaptchas() {
    Minibatch test = captchas(64, 1, 100_000);
    try (CaptchaReader reader = new CaptchaReader(SETTINGS, SHAPE, 7)) {
      assertThat(reader.frames()).isEqualTo(24);
      double before = CaptchaReader.characterErrorRate(reader.read(test.images()), test.texts());
      double firstLoss = 0;
      double lastLoss = 0;
      int steps = 500;
      for (int step = 0; step < steps; step++) {
        double loss = reader.trainStep(captchas(32, 1, step * 32L), step, step).get("loss");
        if (step % 100 == 0) {
          System.out.printf("reader step %d loss %.3f%n", step, loss);
        }
        firstLoss += step < 20 ? loss / 20 : 0;
        lastLoss += step >= steps - 20 ? loss / 20 : 0;
      }
      List<String> read = reader.read(test.images());
      double cer = CaptchaReader.characterErrorRate(read, test.texts());
      System.out.printf("reader: loss %.3f -> %.3f, held-out CER %.3f -> %.3f, sequence accuracy %.3f%n", firstLoss,
          lastLoss, before, cer, CaptchaReader.sequenceAccuracy(read, test.texts()));
      var pictures = reader.reports(test, List.of(), 0);
      String keep = System.getProperty("genpipe.keepTestRun");
      if (keep != null) {
        try {
          javax.imageio.ImageIO.write(pictures.get("readings.png"), "png", new java.io.File(keep, "readings.png"));
        } catch (java.io.IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      }
      assertThat(lastLoss).isLessThan(0.5 * firstLoss);
      assertThat(cer).isLessThan(0.5).isLessThan(before);
      assertThat(CaptchaReader.sequenceAccuracy(read, test.texts())).isGreaterThan(0.2);
      assertThat(reader.reports(test, List.of(), 0)).containsKey("readings.png");
    }
  }

  @Test
  void compiledStepsAreBitIdenticalAndStateRestoresExactly() {
    CheckedPlans.run(() -> {
      try (CaptchaReader reader = new CaptchaReader(SETTINGS, SHAPE, 3)) {
        for (int step = 0; step < 2; step++) {
          reader.trainStep(captchas(4, 2, step * 4L), step, step);
        }
      }
    });
    try (CaptchaReader a = new CaptchaReader(SETTINGS, SHAPE, 3); CaptchaReader b = new CaptchaReader(SETTINGS, SHAPE, 9)) {
      a.trainStep(captchas(4, 2, 0), 0, 0);
      b.loadState(ModelState.fromBytes(a.state().toBytes(), "test"));
      Minibatch x = captchas(4, 2, 50);
      a.trainStep(x, 1, 1);
      b.trainStep(x, 1, 1);
      assertThat(a.state().maxAbsDiff(b.state())).isZero();
    }
  }

  @Test
  void textsItCannotReadAndImagesTooNarrowAreNamed() {
    try (CaptchaReader reader = new CaptchaReader(SETTINGS, SHAPE, 3)) {
      Minibatch b = captchas(2, 2, 0);
      Minibatch wrongChar = new Minibatch(b.images(), null, null, List.of("ab", "az"), b.ids());
      assertThatThrownBy(() -> reader.trainStep(wrongChar, 0, 0)).isInstanceOf(BadInputException.class)
          .hasMessageContaining("record c1").hasMessageContaining("'z'").hasMessageContaining("abcd1234");
      Minibatch tooLong = new Minibatch(b.images(), null, null, List.of("ab", "abcda"), b.ids());
      assertThatThrownBy(() -> reader.trainStep(tooLong, 0, 0)).isInstanceOf(BadInputException.class)
          .hasMessageContaining("'abcda' has 5 characters").hasMessageContaining("maxLength is 4");
    }
    assertThatThrownBy(() -> new CaptchaReader(SETTINGS, new ImageShape(32, 24, 1), 1))
        .isInstanceOf(BadInputException.class).hasMessageContaining("width >= 28");
    assertThat(CaptchaReader.editDistance("abcd", "abd")).isEqualTo(1);
    assertThat(CaptchaReader.characterErrorRate(List.of("abd", "12"), List.of("abcd", "12"))).isEqualTo(1.0 / 6);
  }
}
