package org.genpipe.models.ddpm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.genpipe.models.nn.Noise;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class NoiseScheduleTest {

  @Test
  void linearScheduleHasTheDdpmPapersEndsAndAlphaBar() {
    NoiseSchedule s = NoiseSchedule.of("linear", 1000);
    assertEquals(1e-4, s.beta(0), 1e-15);
    assertEquals(0.02, s.beta(999), 1e-15);
    assertEquals(1 - 1e-4, s.alphaBar(0), 1e-15);
    // prod (1 - beta_t) over the 1,000 steps, computed independently in double
    assertEquals(4.0358297653756754e-05, s.alphaBar(999), 1e-15);
    assertEquals(1.0, s.alphaBar(-1));
  }

  @Test
  void cosineAlphaBarFollowsItsClosedForm() {
    int T = 1000;
    NoiseSchedule s = NoiseSchedule.of("cosine", T);
    for (int t = 0; t < T - 1; t += 37) {
      double u = (t + 1.0) / T;
      double f = Math.pow(Math.cos((u + 0.008) / 1.008 * Math.PI / 2), 2);
      double f0 = Math.pow(Math.cos(0.008 / 1.008 * Math.PI / 2), 2);
      assertEquals(f / f0, s.alphaBar(t), 1e-12, "alphaBar at " + t);
    }
    assertEquals(0.999, s.beta(T - 1), 1e-12, "the last beta is clipped");
  }

  @Test
  void posteriorVarianceIsTheBayesCombinationOfPriorAndStep() {
    for (String name : new String[] {"linear", "cosine"}) {
      NoiseSchedule s = NoiseSchedule.of(name, 1000);
      assertEquals(0.0, s.posteriorVariance(0), 0.0);
      for (int t = 1; t < 1000; t += 53) {
        // 1 / (1 / (1 - alphaBar_{t-1}) + alpha_t / beta_t): precision of the prior plus that of the step
        double expected = 1 / (1 / (1 - s.alphaBar(t - 1)) + (1 - s.beta(t)) / s.beta(t));
        assertEquals(expected, s.posteriorVariance(t), 1e-12 * Math.max(1, expected), name + " at " + t);
        // the posterior mean is unbiased: x_0 = x_t = c gives mean c (sqrt(alphaBar) scaling aside) when ...
        // coefficients reproduce x_{t-1} = sqrt(alphaBar_{t-1}) x0 in expectation:
        double ab = s.alphaBar(t);
        double mean = s.posteriorMeanX0(t) + s.posteriorMeanXt(t) * Math.sqrt(ab);
        assertEquals(Math.sqrt(s.alphaBar(t - 1)), mean, 1e-12, name + " mean at " + t);
      }
    }
  }

  @Test
  void noisedImagesHaveTheForwardProcessMeanAndVariance() {
    NoiseSchedule s = NoiseSchedule.of("linear", 1000);
    int n = 40_000;
    INDArray x0 = Nd4j.valueArrayOf(new long[] {n, 1, 1, 1}, 0.5f);
    int[] t = new int[n];
    java.util.Arrays.fill(t, 300);
    INDArray xt = s.noised(x0, Noise.gaussian(7, n, 1, 1, 1), t);
    double ab = s.alphaBar(300);
    assertEquals(Math.sqrt(ab) * 0.5, xt.meanNumber().doubleValue(), 0.01);
    assertEquals(1 - ab, xt.varNumber().doubleValue(), 0.02 * (1 - ab));
    assertTrue(x0.getDouble(0) == 0.5, "x0 is left as it was");
  }

  @Test
  void unknownScheduleIsRefusedByName() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> NoiseSchedule.of("quadratic", 10));
    assertTrue(e.getMessage().contains("quadratic") && e.getMessage().contains("cosine"), e.getMessage());
  }
}
