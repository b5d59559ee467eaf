package org.genpipe.models.vae;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.records.ImageRecord;
import org.genpipe.common.records.ImageShape;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.PixelRange;
import org.genpipe.models.ModelState;
import org.genpipe.models.nn.CheckedPlans;
import org.genpipe.models.nn.OptimizerSettings;
import org.genpipe.models.testing.Blobs;
import org.genpipe.models.testing.StateMemoryCheck;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;

class BetaVaeTest {
  static final BetaVaeSettings SETTINGS =
      new BetaVaeSettings(8, 1.0, Divergence.KL, OptimizerSettings.adam(1e-3, 0.9, 0.999));

  @Test
  void stateMemoryIsTheStateItTrainsIn() {
    StateMemoryCheck.check(new BetaVae(SETTINGS, 1));
  }

  @Test
  void layerShapesFollowTheArchitecture() {
    BetaVae vae = new BetaVae(SETTINGS, 1);
    // encoder 1->8 (28->14), 8->16 (->7), 16->32 (->3), 288->128, heads; decoder mirrors it
    long expected =
        (9 * 8 + 8) + (72 * 16 + 16) + 32 + (144 * 32 + 32) + (288 * 128 + 128) + 2 * (128 * 8 + 8)
            + (8 * 128 + 128) + (128 * 288 + 288) + (9 * 16 * 32 + 16) + 32 + (9 * 8 * 16 + 8) + (9 * 8 + 1);
    assertThat(vae.parameterCount()).isEqualTo(expected);
    Map<String, INDArray> out = vae.encode(Blobs.of(5, 1).images());
    assertThat(out.get("mu").shape()).containsExactly(5, 8);
    assertThat(out.get("recon").shape()).containsExactly(5, 1, 28, 28);
    assertThat(vae.generate(3, 7, null).shape()).containsExactly(3, 1, 28, 28);
  }

  @Test
  void trainingLowersTheLossAndIsDeterministic() {
    Minibatch batch = Blobs.of(32, 2);
    BetaVae a = new BetaVae(SETTINGS, 3);
    BetaVae b = new BetaVae(SETTINGS, 3);
    double first = 0;
    double last = 0;
    for (int step = 0; step < 60; step++) {
      Map<String, Double> la = a.trainStep(batch, step, 100 + step);
      b.trainStep(batch, step, 100 + step);
      assertThat(la.keySet()).containsExactly("loss", "reconstruction", "kl");
      if (step == 0) {
        first = la.get("loss");
      }
      last = la.get("loss");
    }
    assertThat(last).isLessThan(first * 0.7);
    assertThat(a.state().maxAbsDiff(b.state())).isZero();
  }

  @Test
  void compiledStepsAreBitIdenticalToSameDiffsExecutor() {
    CheckedPlans.run(() -> {
      for (Divergence d : Divergence.values()) {
        BetaVae vae = new BetaVae(new BetaVaeSettings(SETTINGS.latentSize(), 2.0, d, SETTINGS.optimizer()), 6);
        for (int step = 0; step < 3; step++) {
          vae.trainStep(Blobs.of(16, step), step, step);
        }
      }
    });
  }

  @Test
  void stateRoundTripsThroughBytesAndCarriesOptimizerAndBatchNormState() {
    BetaVae a = new BetaVae(SETTINGS, 4);
    Minibatch batch = Blobs.of(16, 5);
    for (int step = 0; step < 3; step++) {
      a.trainStep(batch, step, step);
    }
    ModelState s = a.state();
    assertThat(s.arrays().keySet()).containsExactly("vae/params", "vae/updater", "vae/bn");
    assertThat(s.get("vae/updater").length).isEqualTo(2 * s.get("vae/params").length);
    ModelState back = ModelState.fromBytes(s.toBytes(), "test");
    BetaVae b = new BetaVae(SETTINGS, 99);
    b.loadState(back);
    assertThat(b.state().maxAbsDiff(s)).isZero();
    // same state + same batch + same seed: same next step
    a.trainStep(batch, 3, 42);
    b.trainStep(batch, 3, 42);
    assertThat(a.state().maxAbsDiff(b.state())).isZero();
    assertThat(a.generate(4, 9, null).equalsWithEps(b.generate(4, 9, null), 0)).isTrue();
  }

  @Test
  void stateOfAnotherArchitectureIsRejectedWithTheArrayName() {
    BetaVae small = new BetaVae(SETTINGS, 1);
    BetaVae big = new BetaVae(new BetaVaeSettings(16, 1.0, Divergence.KL, SETTINGS.optimizer()), 1);
    assertThatThrownBy(() -> small.loadState(big.state()))
        .hasMessageContaining("vae/params").hasMessageContaining("expected");
  }

  @Test
  void reportsDrawReconstructionsSamplesAndLatentMap() {
    BetaVae vae = new BetaVae(SETTINGS, 1);
    Map<String, BufferedImage> r = vae.reports(Blobs.of(40, 3), List.of("a", "b", "c", "d"), 5);
    assertThat(r.keySet()).containsExactly("reconstructions.png", "samples.png", "latent-map.png");
    assertThat(r.get("samples.png").getWidth()).isGreaterThan(10 * 56);
  }

  @Test
  void otherImageShapesAreRejected() {
    assertThatThrownBy(() -> BetaVae.checkShape(new ImageShape(32, 32, 3), "data/records/cifar10"))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("data/records/cifar10").hasMessageContaining("32x32x3");
  }

  @Test
  void csDivergenceTrainsToo() {
    BetaVae vae = new BetaVae(new BetaVaeSettings(4, 4.0, Divergence.CS, SETTINGS.optimizer()), 1);
    Map<String, Double> l = vae.trainStep(Blobs.of(8, 1), 0, 1);
    assertThat(l.keySet()).containsExactly("loss", "reconstruction", "cs_divergence");
    assertThat(l.get("loss")).isCloseTo(l.get("reconstruction") + 4.0 * l.get("cs_divergence"),
        org.assertj.core.api.Assertions.within(1e-2));
  }
}
