package org.genpipe.models.ddpm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * With data x_0 ~ N(mu, s^2) the best noise predictor is known in closed form,
 * E[eps | x_t] = sqrt(1 - ab) (x_t - sqrt(ab) mu) / (ab s^2 + 1 - ab); both samplers driven by it must
 * give back the data's mean and variance.
 */
class SamplerTest {
  private static final double MU = 0.3;
  private static final double SD = 0.4;

  private static NoisePredictor exact(NoiseSchedule s) {
    return (x, t) -> {
      double ab = s.alphaBar(t);
      return x.sub(Math.sqrt(ab) * MU).muli(Math.sqrt(1 - ab) / (ab * SD * SD + 1 - ab));
    };
  }

  private static void assertGaussian(INDArray x, String what) {
    assertEquals(MU, x.meanNumber().doubleValue(), 0.02, what + " mean");
    assertEquals(SD, Math.sqrt(x.varNumber().doubleValue()), 0.02, what + " standard deviation");
  }

  @Test
  void ancestralSamplingRecoversTheDataDistribution() {
    for (String schedule : new String[] {"linear", "cosine"}) {
      NoiseSchedule s = NoiseSchedule.of(schedule, 1000);
      INDArray x = new Sampler("ddpm", 0, 0, false).sample(exact(s), s, new long[] {8000, 1, 1, 1}, 3);
      assertGaussian(x, "ddpm, " + schedule);
    }
  }

  @Test
  void ddimRecoversTheDataDistributionOverAllStepsAndWithNoise() {
    NoiseSchedule s = NoiseSchedule.of("linear", 1000);
    assertGaussian(new Sampler("ddim", 1000, 0.0, false).sample(exact(s), s, new long[] {8000, 1, 1, 1}, 4),
        "ddim eta 0, 1000 steps");
    assertGaussian(new Sampler("ddim", 1000, 1.0, false).sample(exact(s), s, new long[] {8000, 1, 1, 1}, 5),
        "ddim eta 1, 1000 steps");
  }

  /**
   * With few steps deterministic DDIM is a discretised ODE: for Gaussian data each step is the linear
   * map x' = a x + b, whose product (computed here in double) gives the spread it must reach (a bit
   * below the data's: the discretisation error, not a bug).
   */
  @Test
  void deterministicDdimWithFewStepsFollowsItsLinearMap() {
    NoiseSchedule s = NoiseSchedule.of("linear", 1000);
    Sampler ddim = new Sampler("ddim", 50, 0.0, false);
    int[] ts = ddim.timesteps(s);
    double mean = 0;
    double var = 1;
    for (int i = 0; i < ts.length; i++) {
      double ab = s.alphaBar(ts[i]);
      double abPrev = s.alphaBar(i + 1 < ts.length ? ts[i + 1] : -1);
      double k = Math.sqrt(1 - ab) / (ab * SD * SD + 1 - ab); // eps_hat = k (x - sqrt(ab) mu)
      double a = Math.sqrt(abPrev) * (1 - Math.sqrt(1 - ab) * k) / Math.sqrt(ab) + Math.sqrt(1 - abPrev) * k;
      double b = (Math.sqrt(abPrev) * Math.sqrt(1 - ab) - Math.sqrt(1 - abPrev) * Math.sqrt(ab)) * k * MU;
      mean = a * mean + b;
      var = a * a * var;
    }
    INDArray x = ddim.sample(exact(s), s, new long[] {8000, 1, 1, 1}, 6);
    assertEquals(mean, x.meanNumber().doubleValue(), 0.01, "mean");
    assertEquals(Math.sqrt(var), Math.sqrt(x.varNumber().doubleValue()), 0.01, "standard deviation");
    assertEquals(0.373, Math.sqrt(var), 0.001, "the map's own spread (closed form, see the class comment)");
  }

  @Test
  void sameSeedSameImages() {
    NoiseSchedule s = NoiseSchedule.of("cosine", 100);
    Sampler ddim = new Sampler("ddim", 10, 0.5, true);
    INDArray a = ddim.sample(exact(s), s, new long[] {4, 1, 3, 3}, 11);
    INDArray b = ddim.sample(exact(s), s, new long[] {4, 1, 3, 3}, 11);
    assertEquals(a, b);
  }

  @Test
  void ddimVisitsEvenlySpacedStepsFromTheNoisiest() {
    NoiseSchedule s = NoiseSchedule.of("linear", 1000);
    int[] ts = new Sampler("ddim", 4, 0, true).timesteps(s);
    assertArrayEquals(new int[] {999, 666, 333, 0}, ts);
    assertEquals(1000, new Sampler("ddpm", 50, 0, true).timesteps(s).length, "ddpm takes every step");
  }
}
