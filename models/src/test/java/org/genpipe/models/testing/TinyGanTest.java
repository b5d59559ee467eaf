package org.genpipe.models.testing;

import static org.assertj.core.api.Assertions.assertThat;

import org.genpipe.common.records.ImageShape;
import org.genpipe.models.ModelState;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;

/** The contract carries two networks with their own optimizers, alternating updates and an EMA. */
class TinyGanTest {
  static final ImageShape SHAPE = new ImageShape(28, 28, 1);

  @Test
  void stateHoldsBothNetworksBothOptimizersAndTheEma() {
    TinyGan gan = new TinyGan(SHAPE, 1);
    assertThat(gan.state().arrays().keySet())
        .containsExactly("G/params", "G/updater", "D/params", "D/updater", "G/ema");
  }

  @Test
  void discriminatorStepLeavesGeneratorUnchangedAndViceVersa() {
    TinyGan gan = new TinyGan(SHAPE, 1);
    INDArray real = Blobs.of(16, 1).images().reshape(16, 784);
    ModelState before = gan.state();
    gan.discriminatorStep(real, 0, 5);
    ModelState afterD = gan.state();
    assertThat(before.maxAbsDiff(afterD, "G/params")).isZero();
    assertThat(before.maxAbsDiff(afterD, "G/updater")).isZero();
    assertThat(before.maxAbsDiff(afterD, "D/params")).isPositive();
    assertThat(before.maxAbsDiff(afterD, "D/updater")).isPositive();
    gan.generatorStep(16, 0, 6);
    ModelState afterG = gan.state();
    assertThat(afterD.maxAbsDiff(afterG, "D/params")).isZero();
    assertThat(afterD.maxAbsDiff(afterG, "D/updater")).isZero();
    assertThat(afterD.maxAbsDiff(afterG, "G/params")).isPositive();
    assertThat(afterD.maxAbsDiff(afterG, "G/ema")).isPositive();
  }

  @Test
  void alternatingTrainingIsDeterministicAndRestoresExactly() {
    TinyGan a = new TinyGan(SHAPE, 2);
    TinyGan b = new TinyGan(SHAPE, 2);
    var batch = Blobs.of(16, 2);
    for (int s = 0; s < 5; s++) {
      a.trainStep(batch, s, 10 + s);
    }
    b.loadState(a.state());
    a.trainStep(batch, 5, 99);
    b.trainStep(batch, 5, 99);
    assertThat(a.state().maxAbsDiff(b.state())).isZero();
  }
}
