package org.genpipe.models.ddpm;

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
import org.genpipe.models.Condition;
import org.genpipe.models.ModelState;
import org.genpipe.models.nn.CheckedPlans;
import org.genpipe.models.nn.OptimizerSettings;
import org.genpipe.models.testing.StateMemoryCheck;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class DdpmTest {
  static final String DIGITS = "0123456789";
  static final ImageShape SHAPE = new ImageShape(28, 28, 1);

  static DdpmSettings settings(String conditioning, int width, List<Integer> mults, double lr) {
    return new DdpmSettings(conditioning, DIGITS, 1, width, mults, 1, 1, 4, 32, 1000, "linear", 0.1, 2.0, "ddim", 20,
        0.0, 0.999, OptimizerSettings.adam(lr, 0.9, 0.999));
  }

  static final DdpmSettings SMALL = settings("text", 8, List.of(1, 2), 1e-3);

  /** Single digits rendered by the pipeline's CAPTCHA renderer at 28x28 grey in [-1, 1], as the quickstart's. */
  static Minibatch digits(int n, long first) {
    CaptchaRenderer r = new CaptchaRenderer(new CaptchaSettings(DIGITS, 1, 1, 28, 28, 1, 0.1, n, 48, 48), 42);
    float[] px = new float[n * 28 * 28];
    List<String> texts = new ArrayList<>();
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      CaptchaRenderer.Captcha c = r.render(first + i);
      BufferedImage small = Images.resize(c.image(), 28, 28);
      byte[] grey = Images.toHwc(small, 1);
      for (int p = 0; p < grey.length; p++) {
        px[i * grey.length + p] = (grey[p] & 0xFF) / 127.5f - 1f;
      }
      texts.add(c.text());
      ids.add("d" + (first + i));
    }
    return new Minibatch(Nd4j.create(px, new long[] {n, 1, 28, 28}, 'c'), null, null, texts, ids);
  }

  /**
   * bench-ddpm's network (conf/ddpm-captcha.yaml's: 32x96, width 32, levels 1,2,2, text width 64, 5
   * characters over 19) has as many parameters as its PyTorch replica (ddpm_torch.py) counts:
   * 1,223,329, so the benchmark compares the same network.
   */
  @Test
  void stateMemoryIsTheStateItTrainsIn() {
    try (Ddpm m = new Ddpm(SMALL, SHAPE, 3)) {
      StateMemoryCheck.check(m);
    }
  }

  @Test
  void theBenchmarkedNetworkHasItsPyTorchReplicasParameterCount() {
    DdpmSettings s = new DdpmSettings("text", "2345678bcdefgmnpwxy", 5, 32, List.of(1, 2, 2), 1, 1, 8, 64, 1000,
        "linear", 0.1, 2.0, "ddim", 50, 0.0, 0.999, OptimizerSettings.adam(2e-4, 0.9, 0.999));
    try (Ddpm m = new Ddpm(s, new ImageShape(32, 96, 1), 1)) {
      assertThat(m.state().get("unet/params")).hasSize(1_223_329);
    }
  }

  @Test
  void compiledPlansAreBitIdenticalAndResumeIsExactIncludingTheAverage() {
    CheckedPlans.run(() -> {
      try (Ddpm m = new Ddpm(SMALL, SHAPE, 3)) {
        for (int step = 0; step < 2; step++) {
          m.trainStep(digits(4, step * 4L), step, step);
        }
        m.generate(2, 5, new Condition(null, List.of("1", "2"), null), new Sampler("ddim", 2, 0.5, true), 3.0);
      }
    });
    try (Ddpm a = new Ddpm(SMALL, SHAPE, 3); Ddpm b = new Ddpm(SMALL, SHAPE, 9)) {
      a.trainStep(digits(4, 0), 0, 0);
      a.trainStep(digits(4, 4), 1, 1);
      b.loadState(ModelState.fromBytes(a.state().toBytes(), "test"));
      Minibatch x = digits(4, 50);
      a.trainStep(x, 2, 2);
      b.trainStep(x, 2, 2);
      assertThat(a.state().maxAbsDiff(b.state())).isZero();
      Condition c = new Condition(null, List.of("4", "5"), null);
      assertThat(a.generate(2, 1, c)).isEqualTo(b.generate(2, 1, c));
    }
  }

  /** exportTo writes the state into the arrays it is given (the barrier engine's per-round buffer), equal to state()'s. */
  @Test
  void theStateIsWrittenIntoTheArraysItIsGiven() {
    try (Ddpm m = new Ddpm(SMALL, SHAPE, 3)) {
      org.genpipe.models.ModelState buffer = new org.genpipe.models.ModelState();
      m.exportTo(buffer);
      java.util.Map<String, float[]> first = new java.util.HashMap<>(buffer.arrays());
      m.trainStep(digits(4, 0), 0, 0);
      m.exportTo(buffer);
      org.genpipe.models.ModelState fresh = m.state();
      assertThat(buffer.arrays().keySet()).containsExactlyElementsOf(fresh.arrays().keySet())
          .contains("unet/params", "unet/updater", "unet/ema");
      for (String name : fresh.arrays().keySet()) {
        assertThat(buffer.get(name)).as(name).isSameAs(first.get(name)).containsExactly(fresh.get(name));
        assertThat(fresh.get(name)).as(name).isNotSameAs(buffer.get(name));
      }
    }
  }

  @Test
  void theAverageMovesTowardsTheWeightsWithWarmUp() {
    try (Ddpm m = new Ddpm(SMALL, SHAPE, 3)) {
      float[] before = m.state().get("unet/params");
      float[] emaBefore = m.state().get("unet/ema");
      assertThat(emaBefore).containsExactly(before);
      m.trainStep(digits(4, 0), 0, 0);
      float[] after = m.state().get("unet/params");
      float[] ema = m.state().get("unet/ema");
      double decay = Math.min(SMALL.emaDecay(), 1.0 / 10.0); // step 0: (1 + 0) / (10 + 0)
      double maxDiff = 0;
      boolean moved = false;
      for (int i = 0; i < ema.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(ema[i] - (decay * before[i] + (1 - decay) * after[i])));
        moved |= after[i] != before[i];
      }
      assertThat(moved).isTrue();
      assertThat(maxDiff).isLessThan(1e-6);
    }
  }

  @Test
  void guidanceZeroIsTheUnconditionalPredictionAndTheScaleIsLinear() {
    try (Ddpm m = new Ddpm(SMALL, SHAPE, 3)) {
      for (int step = 0; step < 3; step++) {
        m.trainStep(digits(8, step * 8L), step, step);
      }
      INDArray x = org.genpipe.models.nn.Noise.gaussian(4, 3, 1, 28, 28);
      List<String> texts = List.of("1", "7", "9");
      INDArray unconditional = m.predictNoise(x, 500, null, 1.0);
      assertThat(m.predictNoise(x, 500, texts, 0.0)).isEqualTo(unconditional);
      INDArray conditional = m.predictNoise(x, 500, texts, 1.0);
      assertThat(conditional.sub(unconditional).amaxNumber().doubleValue()).isGreaterThan(1e-6);
      INDArray guided = m.predictNoise(x, 500, texts, 3.0);
      INDArray expected = unconditional.add(conditional.sub(unconditional).mul(3.0));
      assertThat(guided.sub(expected).amaxNumber().doubleValue()).isLessThan(1e-4);
    }
  }

  @Test
  void aShortRunOnDigitsLowersTheLoss() {
    try (Ddpm m = new Ddpm(SMALL, SHAPE, 5)) {
      double first = 0;
      double last = 0;
      int steps = 120;
      for (int step = 0; step < steps; step++) {
        double loss = m.trainStep(digits(16, step * 16L), step, step).get("loss");
        first += step < 10 ? loss / 10 : 0;
        last += step >= steps - 20 ? loss / 20 : 0;
      }
      System.out.printf("ddpm: loss %.4f -> %.4f%n", first, last);
      assertThat(last).isLessThan(0.5 * first);
      INDArray images = m.generate(4, 1, new Condition(null, List.of("0", "1", "2", "3"), null));
      assertThat(images.shape()).containsExactly(4, 1, 28, 28);
      assertThat(images.minNumber().doubleValue()).isGreaterThanOrEqualTo(0.0);
      assertThat(images.maxNumber().doubleValue()).isLessThanOrEqualTo(1.0);
      assertThat(m.reports(digits(8, 0), List.of(), 1)).containsKey("denoising.png");
    }
  }

  @Test
  void anUnconditionalModelDrawsWithoutTexts() {
    try (Ddpm m = new Ddpm(settings("none", 8, List.of(1, 2), 1e-3), SHAPE, 3)) {
      assertThat(m.textAlphabet()).isNull();
      m.trainStep(new Minibatch(digits(4, 0).images(), null, null, null, List.of("a", "b", "c", "d")), 0, 0);
      assertThat(m.generate(3, 1, null).shape()).containsExactly(3, 1, 28, 28);
      assertThatThrownBy(() -> m.generate(1, 1, new Condition(null, List.of("3"), null)))
          .isInstanceOf(BadInputException.class).hasMessageContaining("unconditional");
    }
  }

  @Test
  void textsItCannotDrawAndShapesItCannotHalveAreNamed() {
    try (Ddpm m = new Ddpm(SMALL, SHAPE, 3)) {
      assertThatThrownBy(() -> m.generate(1, 1, new Condition(null, List.of("a"), null)))
          .isInstanceOf(BadInputException.class).hasMessageContaining("'a'").hasMessageContaining("0123456789");
      assertThatThrownBy(() -> m.generate(1, 1, new Condition(null, List.of("12"), null)))
          .isInstanceOf(BadInputException.class).hasMessageContaining("'12' has 2 characters");
      Minibatch b = digits(2, 0);
      assertThatThrownBy(() -> m.trainStep(new Minibatch(b.images(), null, null, List.of("1", "x"), b.ids()), 0, 0))
          .isInstanceOf(BadInputException.class).hasMessageContaining("record d1").hasMessageContaining("'x'");
      assertThatThrownBy(() -> m.trainStep(new Minibatch(b.images(), null, null, null, b.ids()), 0, 0))
          .isInstanceOf(BadInputException.class).hasMessageContaining("has no text");
    }
    assertThatThrownBy(() -> new Ddpm(settings("text", 8, List.of(1, 2, 2), 1e-3), new ImageShape(30, 30, 1), 1))
        .isInstanceOf(BadInputException.class).hasMessageContaining("divisible by 4");
  }
}
