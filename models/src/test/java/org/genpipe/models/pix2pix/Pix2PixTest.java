package org.genpipe.models.pix2pix;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;
import static org.genpipe.models.pix2pix.Pix2PixTesting.scenes;
import static org.genpipe.models.pix2pix.Pix2PixTesting.settings;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.genpipe.common.config.ConfigException;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.records.ImageShape;
import org.genpipe.common.records.Minibatch;
import org.genpipe.models.Condition;
import org.genpipe.models.ModelSettings;
import org.genpipe.models.ModelState;
import org.genpipe.models.gan.GanLoss;
import org.genpipe.models.nn.CheckedPlans;
import org.genpipe.models.nn.LayerStack;
import org.genpipe.models.nn.Net;
import org.genpipe.models.nn.OptimizerSettings;
import org.genpipe.models.testing.StateMemoryCheck;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;

class Pix2PixTest {

  private static Pix2Pix model(Pix2PixSettings s, long seed) {
    return (Pix2Pix) new Pix2Pix.Factory(s, new ImageShape(s.size(), s.size(), 3), seed).create();
  }

  private static Map<String, List<Long>> shapes(Net net) {
    Map<String, List<Long>> out = new LinkedHashMap<>();
    for (String p : net.params()) {
      List<Long> dims = new ArrayList<>();
      for (long d : net.param(p).shape()) {
        dims.add(d);
      }
      out.put(p, dims);
    }
    return out;
  }

  @Test
  void stateMemoryIsTheStateItTrainsIn() {
    try (Pix2Pix m = model(settings(64, 4, "patch70", "batch", false), 1)) {
      StateMemoryCheck.check(m);
    }
  }

  @Test
  void uNetHasOneLevelPerHalvingDownToOnePixelWithSkipConnections() {
    for (int size : new int[] {256, 128, 64}) {
      int levels = Integer.numberOfTrailingZeros(size);
      int w = 4;
      try (Pix2Pix m = model(settings(size, w, "patch70", "batch", false), 1)) {
        Map<String, List<Long>> g = shapes(m.generator());
        // encoder widths w * min(2^k, 8): conv weights [4, 4, in, out]
        int[] c = new int[levels];
        for (int k = 0; k < levels; k++) {
          c[k] = w * Math.min(1 << k, 8);
        }
        assertThat(g).containsEntry("G/down0/W", List.of(4L, 4L, 3L, (long) c[0]));
        for (int k = 1; k < levels; k++) {
          assertThat(g).containsEntry("G/down" + k + "/W", List.of(4L, 4L, (long) c[k - 1], (long) c[k]));
        }
        assertThat(g).doesNotContainKey("G/down" + levels + "/W");
        // decoder: the innermost reads e_{L-1} alone, the others concat(e_k, u_{k+1}): 2 c_k channels in;
        // transposed conv weights [4, 4, out, in]
        assertThat(g).containsEntry("G/up" + (levels - 1) + "/W",
            List.of(4L, 4L, (long) c[levels - 2], (long) c[levels - 1]));
        for (int k = 1; k < levels - 1; k++) {
          assertThat(g).containsEntry("G/up" + k + "/W", List.of(4L, 4L, (long) c[k - 1], 2L * c[k]));
        }
        assertThat(g).containsEntry("G/out/W", List.of(4L, 4L, 3L, 2L * c[0]));
        // batch norm on inner encoder layers (not the first, not the 1x1 innermost) and every decoder block
        assertThat(g.keySet()).contains("G/down1/bn/gamma", "G/down" + (levels - 2) + "/bn/gamma", "G/up1/bn/gamma")
            .doesNotContain("G/down0/bn/gamma", "G/down" + (levels - 1) + "/bn/gamma", "G/out/bn/gamma");
        Minibatch pairs = scenes(2, size, 3);
        INDArray out = m.generate(2, 5, Condition.ofImages(m.conditions(pairs)));
        assertThat(out.shape()).isEqualTo(new long[] {2, 3, size, size});
        assertThat(out.minNumber().doubleValue()).isGreaterThanOrEqualTo(0.0);
        assertThat(out.maxNumber().doubleValue()).isLessThanOrEqualTo(1.0);
      }
    }
  }

  @Test
  void paperWidthsAt256() {
    // widths only (a 64-wide G at 256 has 54M parameters): the paper's C64-C128-C256-C512-C512-C512-C512-C512
    int[] want = {64, 128, 256, 512, 512, 512, 512, 512};
    for (int k = 0; k < 8; k++) {
      assertThat(64 * Math.min(1 << k, 8)).isEqualTo(want[k]);
    }
    LayerStack d = Pix2Pix.discriminator(settings(256, 64, "patch70", "batch", false), 3);
    assertThat(d.outputShape()).containsExactly(1, 30, 30);
  }

  @Test
  void patchGanReceptiveFieldsAndOutputSizes() {
    // receptive field from the layers: 1 + sum (k - 1) * prod(strides before)
    assertThat(Pix2Pix.discriminator(settings(256, 8, "patch70", "batch", false), 3).receptiveField()).isEqualTo(70);
    assertThat(Pix2Pix.discriminator(settings(256, 8, "patch70", "batch", false), 3).outputShape())
        .containsExactly(1, 30, 30);
    assertThat(Pix2Pix.discriminator(settings(256, 8, "patch16", "batch", false), 3).receptiveField()).isEqualTo(16);
    assertThat(Pix2Pix.discriminator(settings(256, 8, "image", "batch", false), 3).receptiveField()).isEqualTo(286);
    assertThat(Pix2Pix.discriminator(settings(256, 8, "image", "batch", false), 3).outputShape())
        .containsExactly(1, 6, 6);
    assertThat(Pix2Pix.discriminator(settings(256, 8, "pixel", "batch", false), 3).receptiveField()).isEqualTo(1);
    assertThat(Pix2Pix.discriminator(settings(64, 8, "patch70", "batch", false), 3).outputShape())
        .containsExactly(1, 6, 6);
    assertThatThrownBy(() -> model(settings(64, 4, "image", "batch", false), 1))
        .isInstanceOf(BadInputException.class).hasMessageContaining("receptive field is 286");
  }

  @Test
  void generatorLossIsAdversarialPlusLambdaTimesL1() {
    for (double lambda : new double[] {100.0, 7.0}) {
      Pix2PixSettings base = settings(64, 4, "patch70", "batch", false);
      Pix2PixSettings s = new Pix2PixSettings(64, base.direction(), 4, 4, "patch70", "batch", GanLoss.NON_SATURATING,
          lambda, 0.5, false, 0.02, 0, 0, base.generatorOptimizer(), base.discriminatorOptimizer());
      try (Pix2Pix m = model(s, 2)) {
        Minibatch b = scenes(2, 64, 4);
        // L1 of G's image (the step's first forward, same dropout masks) to the target, computed here
        Map<String, INDArray> gIn = new LinkedHashMap<>();
        gIn.put("cond", m.conditions(b));
        gIn.putAll(m.dropoutMasks(2, 9));
        var r = m.generatorGradients(gIn, m.targets(b));
        double gan = r.getOutputs().get("g_gan").getDouble(0);
        double l1 = r.getOutputs().get("g_l1").getDouble(0);
        double loss = r.getOutputs().get("g_loss").getDouble(0);
        assertThat(loss).isCloseTo(gan + lambda * l1, within(1e-4 * Math.abs(loss)));
        INDArray fake = r.getOutputs().get("fake");
        double expectL1 = fake == null ? l1 : fake.sub(m.targets(b)).norm1Number().doubleValue() / fake.length();
        assertThat(l1).isCloseTo(expectL1, within(1e-5));
        assertThat(l1).isGreaterThan(0.05);
      }
    }
  }

  @Test
  void discriminatorUpdateLeavesGeneratorUntouchedAndViceVersa() {
    try (Pix2Pix m = model(settings(64, 4, "patch70", "batch", false), 3)) {
      Minibatch b = scenes(2, 64, 5);
      ModelState before = m.state();
      Map<String, INDArray> gIn = new LinkedHashMap<>();
      gIn.put("cond", m.conditions(b));
      gIn.putAll(m.dropoutMasks(2, 1));
      INDArray fake = m.generate(2, 1, Condition.ofImages(m.conditions(b))).mul(2).subi(1);
      m.discriminatorStep(m.conditions(b), m.targets(b), fake, 0, new LinkedHashMap<>());
      ModelState afterD = m.state();
      assertThat(afterD.maxAbsDiff(before, "G/params")).isZero();
      assertThat(afterD.maxAbsDiff(before, "G/updater")).isZero();
      assertThat(afterD.maxAbsDiff(before, "D/params")).isGreaterThan(0);
      m.generatorStep(gIn, m.targets(b), 2, 0, new LinkedHashMap<>());
      ModelState afterG = m.state();
      assertThat(afterG.maxAbsDiff(afterD, "D/params")).isZero();
      assertThat(afterG.maxAbsDiff(afterD, "D/updater")).isZero();
      assertThat(afterG.maxAbsDiff(afterD, "D/bn")).isZero();
      assertThat(afterG.maxAbsDiff(afterD, "G/params")).isGreaterThan(0);
    }
  }

  @Test
  void compiledStepsAreBitIdenticalToSameDiffsExecutor() {
    CheckedPlans.run(() -> {
      for (String norm : List.of("batch", "instance")) {
        for (String disc : List.of("patch70", "pixel")) {
          try (Pix2Pix m = model(settings(64, 4, disc, norm, true), 6)) {
            for (int step = 0; step < 2; step++) {
              m.trainStep(scenes(2, 64, 10 + step), step, 77 + step);
            }
            m.generate(2, 3, Condition.ofImages(m.conditions(scenes(2, 64, 1))));
          }
        }
      }
    });
  }

  @Test
  void sameSeedSameStepsAndRestoredStateContinuesExactly() {
    Pix2PixSettings s = settings(64, 4, "patch70", "batch", true);
    try (Pix2Pix a = model(s, 8); Pix2Pix b = model(s, 8); Pix2Pix c = model(s, 8)) {
      for (int step = 0; step < 4; step++) {
        Minibatch batch = scenes(2, 64, 20 + step);
        Map<String, Double> la = a.trainStep(batch, step, 100 + step);
        Map<String, Double> lb = b.trainStep(batch, step, 100 + step);
        assertThat(la).isEqualTo(lb);
        if (step == 1) {
          c.loadState(ModelState.fromBytes(a.state().toBytes(), "test"));
        }
        if (step >= 2) {
          assertThat(c.trainStep(batch, step, 100 + step)).isEqualTo(la);
        }
      }
      assertThat(a.state().maxAbsDiff(c.state())).isZero();
      assertThat(a.trainStep(scenes(2, 64, 1), 4, 1).keySet())
          .containsExactly("d_loss", "g_loss", "g_gan", "g_l1", "d_real", "d_fake");
    }
  }

  @Test
  void shortRunLowersTheL1OfHeldOutTranslations() {
    try (Pix2Pix m = model(settings(64, 8, "patch70", "batch", true), 11)) {
      Minibatch val = scenes(4, 64, 999);
      double before = heldOutL1(m, val);
      // measured: 0.199 -> 0.063 after 120 steps (batch 4, Adam 2e-4)
      for (int step = 0; step < 120; step++) {
        m.trainStep(scenes(4, 64, step), step, step);
      }
      double after = heldOutL1(m, val);
      assertThat(after).isLessThan(0.5 * before);
    }
  }

  /** Mean |G(x) - y| on [0, 1] images. */
  private static double heldOutL1(Pix2Pix m, Minibatch val) {
    INDArray gen = m.generate(val.size(), 1, Condition.ofImages(m.conditions(val)));
    INDArray target = m.targets(val).add(1.0).muli(0.5);
    return gen.sub(target).norm1Number().doubleValue() / gen.length();
  }

  @Test
  void jitterIsAResizedCropAndTheFlipReversesColumns() {
    Jitter j = new Jitter(64);
    assertThat(j.jitteredSize()).isEqualTo(72);
    INDArray x = scenes(1, 64, 2).images();
    INDArray plain = j.apply(x, new int[][] {{3, 5, 0}});
    INDArray flipped = j.apply(x, new int[][] {{3, 5, 1}});
    for (int col = 0; col < 64; col++) {
      assertThat(flipped.get(org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.all(),
          org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.point(col)))
          .isEqualTo(plain.get(org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.all(),
              org.nd4j.linalg.indexing.NDArrayIndex.all(), org.nd4j.linalg.indexing.NDArrayIndex.point(63 - col)));
    }
    // a constant image stays constant (weights sum to 1); the identity size keeps the image
    INDArray grey = org.nd4j.linalg.factory.Nd4j.valueArrayOf(new long[] {1, 3, 64, 64}, 0.25f);
    assertThat(j.apply(grey, new int[][] {{8, 0, 1}}).sub(0.25).amaxNumber().doubleValue()).isLessThan(1e-6);
    int[][] p = j.draw(100, 5);
    for (int[] q : p) {
      assertThat(q[0]).isBetween(0, 8);
      assertThat(q[1]).isBetween(0, 8);
      assertThat(q[2]).isBetween(0, 1);
    }
  }

  @Test
  void badInputIsNamed() {
    Pix2PixSettings s = settings(64, 4, "patch70", "batch", false);
    ModelSettings ms = new ModelSettings("pix2pix", null, null, s, null, null);
    assertThatThrownBy(() -> ms.factory(new ImageShape(256, 256, 3), 0, 1, "data/records/cityscapes"))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("data/records/cityscapes hold 256x256x3 images")
        .hasMessageContaining("model.pix2pix.size 64");
    try (Pix2Pix m = model(s, 1)) {
      assertThatThrownBy(() -> m.generate(1, 1, null)).isInstanceOf(BadInputException.class)
          .hasMessageContaining("--condition-image");
      INDArray wrong = org.nd4j.linalg.factory.Nd4j.zeros(1, 3, 32, 32);
      assertThatThrownBy(() -> m.generate(1, 1, Condition.ofImages(wrong))).isInstanceOf(BadInputException.class)
          .hasMessageContaining("[1, 3, 32, 32]").hasMessageContaining("64x64");
      Minibatch noMaps = new Minibatch(scenes(1, 64, 1).images(), null, null, null, List.of("x1"));
      assertThatThrownBy(() -> m.trainStep(noMaps, 0, 0)).isInstanceOf(BadInputException.class)
          .hasMessageContaining("no label_map");
    }
    OptimizerSettings adam = OptimizerSettings.adam(2e-4, 0.5, 0.999);
    assertThatThrownBy(() -> new Pix2PixSettings(96, "labels-to-photo", 4, 4, "patch70", "batch",
        GanLoss.NON_SATURATING, 100, 0.5, true, 0.02, 0, 0, adam, adam))
        .isInstanceOf(ConfigException.class).hasMessageContaining("64, 128 or 256");
    assertThatThrownBy(() -> new Pix2PixSettings(64, "labels-to-photo", 4, 4, "patch70", "batch",
        GanLoss.WGAN_GP, 100, 0.5, true, 0.02, 0, 0, adam, adam))
        .isInstanceOf(ConfigException.class).hasMessageContaining("wgan-gp");
  }
}
