package org.genpipe.models.nn;

/** Projection of points to two dimensions for pictures (principal components by power iteration). */
public final class Projection {
  private Projection() {}

  /** Points [n][d] to [n][2]: unchanged when d == 2, the first coordinate twice when d == 1, else PCA. */
  public static double[][] toTwoDimensions(double[][] points) {
    int n = points.length;
    int d = n == 0 ? 0 : points[0].length;
    double[][] out = new double[n][2];
    if (d <= 2) {
      for (int i = 0; i < n; i++) {
        out[i][0] = points[i][0];
        out[i][1] = d == 2 ? points[i][1] : 0.0;
      }
      return out;
    }
    double[] mean = new double[d];
    for (double[] p : points) {
      for (int j = 0; j < d; j++) {
        mean[j] += p[j] / n;
      }
    }
    double[][] cov = new double[d][d];
    for (double[] p : points) {
      for (int a = 0; a < d; a++) {
        double da = p[a] - mean[a];
        for (int b = 0; b < d; b++) {
          cov[a][b] += da * (p[b] - mean[b]) / Math.max(1, n - 1);
        }
      }
    }
    double[] first = leadingEigenvector(cov);
    double lambda = rayleigh(cov, first);
    for (int a = 0; a < d; a++) {
      for (int b = 0; b < d; b++) {
        cov[a][b] -= lambda * first[a] * first[b];
      }
    }
    double[] second = leadingEigenvector(cov);
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < d; j++) {
        double c = points[i][j] - mean[j];
        out[i][0] += c * first[j];
        out[i][1] += c * second[j];
      }
    }
    return out;
  }

  private static double[] leadingEigenvector(double[][] m) {
    int d = m.length;
    double[] v = new double[d];
    for (int j = 0; j < d; j++) {
      v[j] = 1.0 + 0.01 * j; // fixed start: deterministic pictures
    }
    normalise(v);
    for (int it = 0; it < 500; it++) {
      double[] next = new double[d];
      for (int a = 0; a < d; a++) {
        for (int b = 0; b < d; b++) {
          next[a] += m[a][b] * v[b];
        }
      }
      if (normalise(next) == 0) {
        return v;
      }
      v = next;
    }
    return v;
  }

  private static double rayleigh(double[][] m, double[] v) {
    double s = 0;
    for (int a = 0; a < v.length; a++) {
      for (int b = 0; b < v.length; b++) {
        s += v[a] * m[a][b] * v[b];
      }
    }
    return s;
  }

  private static double normalise(double[] v) {
    double norm = 0;
    for (double x : v) {
      norm += x * x;
    }
    norm = Math.sqrt(norm);
    if (norm > 0) {
      for (int i = 0; i < v.length; i++) {
        v[i] /= norm;
      }
    }
    return norm;
  }
}
