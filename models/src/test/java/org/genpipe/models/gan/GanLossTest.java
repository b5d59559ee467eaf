package org.genpipe.models.gan;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Each loss on two logits per side against values worked out by hand (softplus(u) = ln(1 + e^u)). */
class GanLossTest {
  // D(real) logits 2 and -1; D(fake) logits 0.5 and -3
  private static final float[] REAL = {2f, -1f};
  private static final float[] FAKE = {0.5f, -3f};

  private static double sp(double u) {
    return Math.log1p(Math.exp(u));
  }

  private static double[] eval(GanLoss loss, double target) {
    SameDiff sd = SameDiff.create();
    SDVariable r = sd.placeHolder("r", DataType.FLOAT, -1, 1);
    SDVariable f = sd.placeHolder("f", DataType.FLOAT, -1, 1);
    sd.identity("d", loss.discriminator(sd, r, f, target));
    sd.identity("g", loss.generator(sd, f));
    Map<String, INDArray> out = sd.output(Map.of("r", Nd4j.create(REAL, new long[] {2, 1}, 'c'),
        "f", Nd4j.create(FAKE, new long[] {2, 1}, 'c')), "d", "g");
    return new double[] {out.get("d").getDouble(0), out.get("g").getDouble(0)};
  }

  @Test
  void minimaxAndNonSaturating() {
    // D: mean over the pair of softplus(-r) + softplus(f)
    double d = (sp(-2) + sp(0.5) + sp(1) + sp(-3)) / 2;
    assertThat(eval(GanLoss.MINIMAX, 1)[0]).isCloseTo(d, within(1e-6));
    assertThat(eval(GanLoss.NON_SATURATING, 1)[0]).isCloseTo(d, within(1e-6));
    // G minimax: mean log(1 - sigmoid(f)) = -mean softplus(f); non-saturating: mean softplus(-f)
    assertThat(eval(GanLoss.MINIMAX, 1)[1]).isCloseTo(-(sp(0.5) + sp(-3)) / 2, within(1e-6));
    assertThat(eval(GanLoss.NON_SATURATING, 1)[1]).isCloseTo((sp(-0.5) + sp(3)) / 2, within(1e-6));
    // one-sided smoothing 0.9: the real term is 0.9 softplus(-r) + 0.1 softplus(r); fake unchanged
    double smoothed = (0.9 * sp(-2) + 0.1 * sp(2) + sp(0.5) + 0.9 * sp(1) + 0.1 * sp(-1) + sp(-3)) / 2;
    assertThat(eval(GanLoss.NON_SATURATING, 0.9)[0]).isCloseTo(smoothed, within(1e-6));
  }

  @Test
  void leastSquares() {
    // D: mean ((r - 1)^2 + f^2) / 2 = ((1 + 0.25) + (4 + 9)) / 4; G: mean (f - 1)^2 / 2 = (0.25 + 16) / 4
    assertThat(eval(GanLoss.LEAST_SQUARES, 1)[0]).isCloseTo(14.25 / 4, within(1e-6));
    assertThat(eval(GanLoss.LEAST_SQUARES, 1)[1]).isCloseTo(16.25 / 4, within(1e-6));
    // target 0.9: ((1.1^2 + 0.25) + (1.9^2 + 9)) / 4
    assertThat(eval(GanLoss.LEAST_SQUARES, 0.9)[0]).isCloseTo((1.21 + 0.25 + 3.61 + 9) / 4, within(1e-6));
  }

  @Test
  void wassersteinAndHinge() {
    // WGAN: mean f - mean r = -1.25 - 0.5; G: -mean f = 1.25
    assertThat(eval(GanLoss.WGAN_GP, 1)[0]).isCloseTo(-1.75, within(1e-6));
    assertThat(eval(GanLoss.WGAN_GP, 1)[1]).isCloseTo(1.25, within(1e-6));
    // hinge: mean relu(1 - r) + relu(1 + f) = ((0 + 1.5) + (2 + 0)) / 2; G: -mean f
    assertThat(eval(GanLoss.HINGE, 1)[0]).isCloseTo(1.75, within(1e-6));
    assertThat(eval(GanLoss.HINGE, 1)[1]).isCloseTo(1.25, within(1e-6));
  }
}
