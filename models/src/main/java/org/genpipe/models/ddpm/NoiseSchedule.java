package org.genpipe.models.ddpm;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The forward (noising) process of a DDPM: T variances beta_t, t = 0..T-1 (the paper's 1..T), and
 * what follows from them: alphaBar_t = prod_{s <= t} (1 - beta_s), the noised image
 * x_t = sqrt(alphaBar_t) x_0 + sqrt(1 - alphaBar_t) eps, and the posterior q(x_{t-1} | x_t, x_0)
 * (its mean coefficients and variance). Doubles throughout.
 *
 * <ul>
 *   <li>{@code linear}: beta from 1e-4 to 0.02 in T even steps (Ho et al. 2020, for T = 1000; scaled
 *       by 1000 / T for other T so the total noise stays the same);
 *   <li>{@code cosine}: alphaBar(t) = f(t) / f(0), f(t) = cos^2(((t / T + 0.008) / 1.008) pi / 2), beta_t
 *       = 1 - alphaBar(t + 1) / alphaBar(t), at most 0.999 (Nichol and Dhariwal 2021).
 * </ul>
 */
public final class NoiseSchedule {
  public static final String LINEAR = "linear";
  public static final String COSINE = "cosine";

  private final double[] beta;
  private final double[] alphaBar;

  private NoiseSchedule(double[] beta) {
    this.beta = beta;
    this.alphaBar = new double[beta.length];
    double prod = 1;
    for (int t = 0; t < beta.length; t++) {
      prod *= 1 - beta[t];
      alphaBar[t] = prod;
    }
  }

  /** The schedule of that name ({@link #LINEAR} or {@link #COSINE}) over {@code steps} steps. */
  public static NoiseSchedule of(String name, int steps) {
    if (steps < 2) {
      throw new IllegalArgumentException("a noise schedule needs at least 2 steps, got " + steps);
    }
    double[] beta = new double[steps];
    switch (name) {
      case LINEAR -> {
        double scale = 1000.0 / steps;
        double lo = scale * 1e-4;
        double hi = Math.min(scale * 0.02, 0.999);
        for (int t = 0; t < steps; t++) {
          beta[t] = lo + (hi - lo) * t / (steps - 1);
        }
      }
      case COSINE -> {
        for (int t = 0; t < steps; t++) {
          beta[t] = Math.min(1 - cosineAlphaBar(t + 1, steps) / cosineAlphaBar(t, steps), 0.999);
        }
      }
      default -> throw new IllegalArgumentException("'" + name + "' is not a noise schedule; allowed: linear, cosine");
    }
    return new NoiseSchedule(beta);
  }

  /** f(t) / f(0) of the cosine schedule at t in [0, T]. */
  static double cosineAlphaBar(double t, int steps) {
    double s = 0.008;
    return f(t / steps, s) / f(0, s);
  }

  private static double f(double u, double s) {
    double c = Math.cos((u + s) / (1 + s) * Math.PI / 2);
    return c * c;
  }

  /**
   * x_t = sqrt(alphaBar_t) x_0 + sqrt(1 - alphaBar_t) eps for each example i at its own step t[i]
   * (a new array; x0 and eps [N, ...] are left as they are).
   */
  public INDArray noised(INDArray x0, INDArray eps, int[] t) {
    long n = x0.size(0);
    if (t.length != n || !x0.equalShapes(eps)) {
      throw new IllegalArgumentException("noised: " + t.length + " steps for " + n + " images, eps " + eps.shapeInfoToString());
    }
    float[] a = new float[(int) n];
    float[] b = new float[(int) n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) Math.sqrt(alphaBar(t[i]));
      b[i] = (float) Math.sqrt(1 - alphaBar(t[i]));
    }
    long[] column = new long[x0.rank()];
    java.util.Arrays.fill(column, 1);
    column[0] = n;
    INDArray sa = Nd4j.create(a, column, 'c').castTo(x0.dataType());
    INDArray sb = Nd4j.create(b, column, 'c').castTo(x0.dataType());
    INDArray ba = sa.broadcast(x0.shape());
    INDArray bb = sb.broadcast(x0.shape());
    INDArray noise = eps.mul(bb);
    INDArray out = x0.mul(ba).addi(noise);
    Sampler.release(sa, sb, ba, bb, noise);
    return out;
  }

  /** T. */
  public int steps() {
    return beta.length;
  }

  public double beta(int t) {
    return beta[t];
  }

  /** alphaBar_t; 1 for t = -1 (the clean image). */
  public double alphaBar(int t) {
    return t < 0 ? 1.0 : alphaBar[t];
  }

  /** Variance of q(x_{t-1} | x_t, x_0): beta_t (1 - alphaBar_{t-1}) / (1 - alphaBar_t); 0 at t = 0. */
  public double posteriorVariance(int t) {
    return beta[t] * (1 - alphaBar(t - 1)) / (1 - alphaBar[t]);
  }

  /** Coefficient of x_0 in the posterior mean: beta_t sqrt(alphaBar_{t-1}) / (1 - alphaBar_t). */
  public double posteriorMeanX0(int t) {
    return beta[t] * Math.sqrt(alphaBar(t - 1)) / (1 - alphaBar[t]);
  }

  /** Coefficient of x_t in the posterior mean: (1 - alphaBar_{t-1}) sqrt(1 - beta_t) / (1 - alphaBar_t). */
  public double posteriorMeanXt(int t) {
    return (1 - alphaBar(t - 1)) * Math.sqrt(1 - beta[t]) / (1 - alphaBar[t]);
  }
}
