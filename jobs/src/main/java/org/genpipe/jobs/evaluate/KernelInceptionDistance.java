package org.genpipe.jobs.evaluate;

import java.util.SplittableRandom;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

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

  /**
   * Unbiased MMD^2 of two sets of equal size m: off-diagonal means of k(x,x') and k(y,y'), minus twice
   * the mean of k(x,y). The kernel matrices come from float64 matrix products.
   */
  static double mmd2(double[][] x, double[][] y, int d) {
    int m = x.length;
    INDArray a = Nd4j.createFromArray(x);
    INDArray b = Nd4j.createFromArray(y);
    INDArray kxx = kernel(a, a, d);
    INDArray kyy = kernel(b, b, d);
    INDArray kxy = kernel(a, b, d);
    double offXx = kxx.sumNumber().doubleValue() - trace(kxx);
    double offYy = kyy.sumNumber().doubleValue() - trace(kyy);
    return (offXx + offYy) / ((double) m * (m - 1)) - 2 * kxy.sumNumber().doubleValue() / ((double) m * m);
  }

  private static double trace(INDArray k) {
    double t = 0;
    for (int i = 0; i < k.rows(); i++) {
      t += k.getDouble(i, i);
    }
    return t;
  }

  /** (a b^T / d + 1)^3, elementwise. */
  private static INDArray kernel(INDArray a, INDArray b, int d) {
    INDArray k = a.mmul(b.transpose()).divi(d).addi(1.0);
    return k.muli(k.mul(k));
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
