package org.genpipe.jobs.evaluate;

import org.nd4j.linalg.api.blas.BlasException;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The Frechet distance between two Gaussians, ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^1/2),
 * in float64, without a general matrix square root.
 *
 * <p>With any factor S1 = B B^T, S1 S2 is similar to the symmetric positive semi-definite B^T S2 B,
 * so tr((S1 S2)^1/2) is the sum of the square roots of B^T S2 B's eigenvalues, and only eigenvalues
 * are needed (LAPACK dsyev without eigenvectors). B is the Cholesky factor of S1, or of S2 with the
 * roles swapped when S1 is singular; when both are singular (fewer samples than dimensions), B =
 * U diag(sqrt(max(l, 0))) from S1's symmetric eigendecomposition, which is slower but exact. Tiny
 * negative eigenvalues (rounding of positive semi-definite matrices) are clamped to 0 and counted.
 */
public final class FrechetDistance {
  private FrechetDistance() {}

  /** How the factor of one covariance was formed. */
  public enum Factor {
    CHOLESKY_SIGMA1,
    CHOLESKY_SIGMA2,
    EIGEN_SIGMA1
  }

  /**
   * @param distance the Frechet distance
   * @param clamped how many eigenvalues were negative and set to 0
   * @param mostNegative the most negative of them (0 when none)
   * @param factor which factorisation was used
   */
  public record Result(double distance, int clamped, double mostNegative, Factor factor) {}

  public static Result of(double[] mu1, double[][] sigma1, double[] mu2, double[][] sigma2) {
    int d = mu1.length;
    check(d, mu2.length, "mu2");
    check(d, sigma1.length, "sigma1");
    check(d, sigma2.length, "sigma2");
    double meanTerm = 0;
    for (int i = 0; i < d; i++) {
      double diff = mu1[i] - mu2[i];
      meanTerm += diff * diff;
    }
    double trace1 = 0;
    double trace2 = 0;
    for (int i = 0; i < d; i++) {
      trace1 += sigma1[i][i];
      trace2 += sigma2[i][i];
    }
    INDArray s1 = symmetric(sigma1, "sigma1");
    INDArray s2 = symmetric(sigma2, "sigma2");
    Clamp clamp = new Clamp();
    Factor how = Factor.CHOLESKY_SIGMA1;
    INDArray b = cholesky(s1);
    INDArray other = s2;
    if (b == null) {
      how = Factor.CHOLESKY_SIGMA2;
      b = cholesky(s2);
      other = s1;
    }
    if (b == null) {
      how = Factor.EIGEN_SIGMA1;
      b = s1.dup('f');
      INDArray l = Nd4j.create(DataType.DOUBLE, d);
      Nd4j.getBlasWrapper().lapack().syev('V', 'L', b, l); // b now holds the eigenvectors
      b.muliRowVector(Nd4j.createFromArray(clamp.sqrt(l.toDoubleVector())).reshape(1, d));
      other = s2;
    }
    INDArray m = b.transpose().mmul(other).mmul(b);
    m = m.add(m.transpose()).muli(0.5).dup('f'); // exactly symmetric for the eigensolver
    INDArray e = Nd4j.create(DataType.DOUBLE, d);
    Nd4j.getBlasWrapper().lapack().syev('N', 'L', m, e);
    double traceRoot = 0;
    for (double v : clamp.sqrt(e.toDoubleVector())) {
      traceRoot += v;
    }
    return new Result(meanTerm + trace1 + trace2 - 2 * traceRoot, clamp.count, clamp.mostNegative, how);
  }

  /** The lower Cholesky factor, or null when the matrix is not numerically positive definite. */
  private static INDArray cholesky(INDArray s) {
    INDArray l = s.dup('f');
    try {
      Nd4j.getBlasWrapper().lapack().potrf(l, true);
    } catch (BlasException e) {
      return null;
    }
    long d = l.size(0);
    double[] values = l.data().asDouble(); // column-major: (i, j) at j * d + i
    for (int j = 1; j < d; j++) {
      java.util.Arrays.fill(values, (int) (j * d), (int) (j * d + j), 0.0); // potrf leaves the upper part
    }
    return Nd4j.create(values, new long[] {d, d}, 'f');
  }

  private static void check(int d, int n, String what) {
    if (n != d) {
      throw new IllegalArgumentException(what + " has dimension " + n + ", expected " + d + " (the size of mu1)");
    }
  }

  private static INDArray symmetric(double[][] s, String what) {
    for (double[] row : s) {
      if (row.length != s.length) {
        throw new IllegalArgumentException(what + " must be square, got a row of " + row.length + " in a "
            + s.length + "-row matrix");
      }
    }
    INDArray m = Nd4j.createFromArray(s); // stays float64
    return m.add(m.transpose()).muli(0.5);
  }

  private static final class Clamp {
    int count;
    double mostNegative;

    double[] sqrt(double[] values) {
      double[] r = new double[values.length];
      for (int i = 0; i < values.length; i++) {
        if (values[i] < 0) {
          count++;
          mostNegative = Math.min(mostNegative, values[i]);
          r[i] = 0;
        } else {
          r[i] = Math.sqrt(values[i]);
        }
      }
      return r;
    }
  }
}
