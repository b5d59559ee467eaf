package org.genpipe.jobs.evaluate;

import java.io.Serializable;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Sufficient statistics of a set of feature vectors in float64: the count, the sum and the sum of
 * outer products. Partitions compute their own and {@link #merge} adds them (associative and
 * commutative up to float64 rounding), so the mean and covariance do not depend on how the samples
 * were split across executors.
 */
public final class FeatureStats implements Serializable {
  private static final long serialVersionUID = 1L;

  private final int dim;
  private long count;
  private final double[] sum;
  private final double[] outer; // dim x dim, row-major

  public FeatureStats(int dim) {
    if (dim < 1) {
      throw new IllegalArgumentException("feature dimension must be >= 1, got " + dim);
    }
    this.dim = dim;
    this.sum = new double[dim];
    this.outer = new double[Math.multiplyExact(dim, dim)];
  }

  public int dim() {
    return dim;
  }

  public long count() {
    return count;
  }

  /** Adds the rows of {@code features} [n, dim] (any floating type; accumulated in float64). */
  public FeatureStats add(INDArray features) {
    if (features.rank() != 2 || features.size(1) != dim) {
      throw new IllegalArgumentException("features must be [n, " + dim + "], got " + java.util.Arrays.toString(features.shape()));
    }
    INDArray x = features.castTo(DataType.DOUBLE).dup('c');
    double[] s = x.sum(0).toDoubleVector();
    double[] o = x.transpose().mmul(x).dup('c').data().asDouble();
    for (int i = 0; i < dim; i++) {
      sum[i] += s[i];
    }
    for (int i = 0; i < o.length; i++) {
      outer[i] += o[i];
    }
    count += x.size(0);
    return this;
  }

  /** The sum of both (a new object). */
  public static FeatureStats merge(FeatureStats a, FeatureStats b) {
    if (a.dim != b.dim) {
      throw new IllegalArgumentException("cannot merge statistics of dimension " + a.dim + " and " + b.dim);
    }
    FeatureStats r = new FeatureStats(a.dim);
    r.count = a.count + b.count;
    for (int i = 0; i < a.dim; i++) {
      r.sum[i] = a.sum[i] + b.sum[i];
    }
    for (int i = 0; i < a.outer.length; i++) {
      r.outer[i] = a.outer[i] + b.outer[i];
    }
    return r;
  }

  public double[] mean() {
    requireCount(1);
    double[] m = new double[dim];
    for (int i = 0; i < dim; i++) {
      m[i] = sum[i] / count;
    }
    return m;
  }

  /** The unbiased sample covariance (divisor n - 1, as numpy.cov and pytorch-fid), row-major [dim x dim]. */
  public double[][] covariance() {
    requireCount(2);
    double[] m = mean();
    double[][] c = new double[dim][dim];
    for (int i = 0; i < dim; i++) {
      for (int j = 0; j < dim; j++) {
        c[i][j] = (outer[i * dim + j] - count * m[i] * m[j]) / (count - 1);
      }
    }
    return c;
  }

  private void requireCount(long n) {
    if (count < n) {
      throw new IllegalStateException("statistics need at least " + n + " samples, have " + count);
    }
  }
}
