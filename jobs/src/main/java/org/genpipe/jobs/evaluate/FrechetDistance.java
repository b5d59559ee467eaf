package org.genpipe.jobs.evaluate;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.eigen.Eigen;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The Frechet distance between two Gaussians, ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^1/2),
 * in float64, without a general matrix square root: with S1 = U diag(l) U^T (symmetric
 * eigendecomposition) and A = S1^1/2 = U diag(sqrt l) U^T, the eigenvalues of S1 S2 are those of the
 * symmetric A S2 A, so tr((S1 S2)^1/2) is the sum of the square roots of A S2 A's eigenvalues. Tiny
 * negative eigenvalues (rounding of positive semi-definite matrices) are clamped to 0 and counted.
 */
public final class FrechetDistance {
  private FrechetDistance() {}

  /**
   * @param distance the Frechet distance
   * @param clamped how many eigenvalues (of S1 and of A S2 A) were negative and set to 0
   * @param mostNegative the most negative of them (0 when none)
   */
  public record Result(double distance, int clamped, double mostNegative) {}

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
    Clamp clamp = new Clamp();
    INDArray u = symmetric(sigma1);
    double[] l = Eigen.symmetricGeneralizedEigenvalues(u, true).toDoubleVector(); // u now holds eigenvectors
    INDArray rootL = Nd4j.createFromArray(clamp.sqrt(l)).reshape(1, d);
    INDArray a = u.mulRowVector(rootL).mmul(u.transpose());
    INDArray m = a.mmul(symmetric(sigma2)).mmul(a);
    m = m.add(m.transpose()).muli(0.5); // exactly symmetric for the eigensolver
    double[] e = Eigen.symmetricGeneralizedEigenvalues(m, false).toDoubleVector();
    double traceRoot = 0;
    for (double v : clamp.sqrt(e)) {
      traceRoot += v;
    }
    return new Result(meanTerm + trace1 + trace2 - 2 * traceRoot, clamp.count, clamp.mostNegative);
  }

  private static void check(int d, int n, String what) {
    if (n != d) {
      throw new IllegalArgumentException(what + " has dimension " + n + ", expected " + d + " (the size of mu1)");
    }
  }

  private static INDArray symmetric(double[][] s) {
    INDArray m = Nd4j.createFromArray(s); // stays float64
    if (m.size(0) != m.size(1)) {
      throw new IllegalArgumentException("covariance must be square, got " + m.size(0) + "x" + m.size(1));
    }
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
