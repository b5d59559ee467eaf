package org.genpipe.jobs.evaluate;

import java.util.SplittableRandom;

/**
 * KID: the unbiased estimate of the squared maximum mean discrepancy between two feature sets with
 * the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets of equal size
 * (drawn without replacement within a subset, from a seeded generator), with its standard deviation.
 */
public final class KernelInceptionDistance {
  private KernelInceptionDistance() {}

  public record Result(double mean, double std, int subsets, int subsetSize) {}

  public static Result of(double[][] x, double[][] y, int subsets, int subsetSize, long seed) {
    if (x.length < 2 || y.length < 2) {
      throw new IllegalArgumentException("KID needs at least 2 samples in each set, got " + x.length + " and " + y.length);
    }
    int d = x[0].length;
    if (y[0].length != d) {
      throw new IllegalArgumentException("feature dimensions differ: " + d + " and " + y[0].length);
    }
    int m = Math.min(subsetSize, Math.min(x.length, y.length));
    SplittableRandom random = new SplittableRandom(seed);
    double[] values = new double[subsets];
    for (int s = 0; s < subsets; s++) {
      values[s] = mmd2(pick(x, m, random), pick(y, m, random), d);
    }
    double mean = 0;
    for (double v : values) {
      mean += v;
    }
    mean /= subsets;
    double var = 0;
    for (double v : values) {
      var += (v - mean) * (v - mean);
    }
    double std = subsets > 1 ? Math.sqrt(var / (subsets - 1)) : 0;
    return new Result(mean, std, subsets, m);
  }

  /** Unbiased MMD^2 of two sets of equal size m: off-diagonal means of k(x,x') and k(y,y'), minus twice the mean of k(x,y). */
  static double mmd2(double[][] x, double[][] y, int d) {
    int m = x.length;
    double kxx = 0;
    double kyy = 0;
    double kxy = 0;
    for (int i = 0; i < m; i++) {
      for (int j = 0; j < m; j++) {
        if (i != j) {
          kxx += kernel(x[i], x[j], d);
          kyy += kernel(y[i], y[j], d);
        }
        kxy += kernel(x[i], y[j], d);
      }
    }
    return (kxx + kyy) / ((double) m * (m - 1)) - 2 * kxy / ((double) m * m);
  }

  static double kernel(double[] a, double[] b, int d) {
    double dot = 0;
    for (int i = 0; i < d; i++) {
      dot += a[i] * b[i];
    }
    double k = dot / d + 1;
    return k * k * k;
  }

  private static double[][] pick(double[][] set, int m, SplittableRandom random) {
    int[] idx = new int[set.length];
    for (int i = 0; i < idx.length; i++) {
      idx[i] = i;
    }
    double[][] out = new double[m][];
    for (int i = 0; i < m; i++) { // partial Fisher-Yates
      int j = i + random.nextInt(idx.length - i);
      int t = idx[i];
      idx[i] = idx[j];
      idx[j] = t;
      out[i] = set[idx[i]];
    }
    return out;
  }
}
