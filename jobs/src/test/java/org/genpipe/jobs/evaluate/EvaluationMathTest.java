package org.genpipe.jobs.evaluate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.factory.Nd4j;

/** Closed forms for the Frechet distance and KID, and the statistics' independence of partitioning. */
class EvaluationMathTest {
  private static double[][] randomSpd(int d, SplittableRandom r) {
    double[][] a = new double[d][d];
    for (int i = 0; i < d; i++) {
      for (int j = 0; j < d; j++) {
        a[i][j] = r.nextDouble(-1, 1);
      }
    }
    double[][] s = new double[d][d];
    for (int i = 0; i < d; i++) {
      for (int j = 0; j < d; j++) {
        for (int k = 0; k < d; k++) {
          s[i][j] += a[i][k] * a[j][k];
        }
      }
      s[i][i] += 0.1;
    }
    return s;
  }

  private static double[] randomVector(int d, SplittableRandom r) {
    double[] v = new double[d];
    for (int i = 0; i < d; i++) {
      v[i] = r.nextDouble(-2, 2);
    }
    return v;
  }

  @Test
  void equalCovariancesLeaveTheSquaredMeanDifference() {
    SplittableRandom r = new SplittableRandom(1);
    double[][] s = randomSpd(12, r);
    double[] a = randomVector(12, r);
    double[] b = randomVector(12, r);
    double expected = 0;
    for (int i = 0; i < 12; i++) {
      expected += (a[i] - b[i]) * (a[i] - b[i]);
    }
    assertThat(FrechetDistance.of(a, s, b, s).distance()).isCloseTo(expected, within(1e-9 * expected));
  }

  @Test
  void diagonalCovariancesHaveTheSumOfSquaredRootDifferences() {
    double[] va = {1, 4, 9, 0.25};
    double[] vb = {4, 1, 9, 2.25};
    double[][] sa = new double[4][4];
    double[][] sb = new double[4][4];
    for (int i = 0; i < 4; i++) {
      sa[i][i] = va[i];
      sb[i][i] = vb[i];
    }
    double[] mu = {0, 1, 2, 3};
    double[] nu = {1, 1, 2, 1};
    // (1-2)^2 + (2-1)^2 + 0 + (0.5-1.5)^2 = 3; mean term 1 + 4 = 5
    assertThat(FrechetDistance.of(mu, sa, nu, sb).distance()).isCloseTo(8.0, within(1e-12));
  }

  /** For 2x2 matrices tr(M^1/2) = sqrt(tr M + 2 sqrt(det M)), M = S1 S2 (not symmetric in general). */
  @Test
  void twoByTwoMatchesTheClosedFormOfTheTraceOfTheRoot() {
    SplittableRandom r = new SplittableRandom(7);
    for (int t = 0; t < 20; t++) {
      double[][] s1 = randomSpd(2, r);
      double[][] s2 = randomSpd(2, r);
      double[][] m = new double[2][2];
      for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 2; j++) {
          m[i][j] = s1[i][0] * s2[0][j] + s1[i][1] * s2[1][j];
        }
      }
      double trM = m[0][0] + m[1][1];
      double detM = m[0][0] * m[1][1] - m[0][1] * m[1][0];
      double expected = s1[0][0] + s1[1][1] + s2[0][0] + s2[1][1] - 2 * Math.sqrt(trM + 2 * Math.sqrt(detM));
      double[] zero = {0, 0};
      FrechetDistance.Result got = FrechetDistance.of(zero, s1, zero, s2);
      assertThat(got.distance()).isCloseTo(expected, within(1e-9 * Math.max(1, Math.abs(expected))));
      assertThat(got.distance()).isGreaterThanOrEqualTo(-1e-12);
    }
  }

  @Test
  void rankDeficientCovariancesAreClampedAndReported() {
    double[][] s = {{1, 1, 0}, {1, 1, 0}, {0, 0, 0}}; // eigenvalues 2, 0, 0: rounding may go below 0
    FrechetDistance.Result got = FrechetDistance.of(new double[3], s, new double[3], s);
    assertThat(got.distance()).isCloseTo(0.0, within(1e-9));
    assertThat(got.mostNegative()).isLessThanOrEqualTo(0.0).isGreaterThan(-1e-9);
    assertThatThrownBy(() -> FrechetDistance.of(new double[3], s, new double[2], s))
        .hasMessageContaining("mu2 has dimension 2, expected 3");
  }

  /**
   * Reference values from Debian's python3-scipy 1.10.1 (numpy 1.24), computed the way pytorch-fid
   * does (scipy.linalg.sqrtm of S1 S2, real part):
   *
   * <pre>
   * import numpy as np
   * from scipy import linalg
   * d = 6
   * i = np.arange(d)[:, None]; j = np.arange(d)[None, :]
   * A = np.sin(7.0 * i + 3.0 * j + 1.0); B = np.cos(5.0 * i - 2.0 * j)
   * mu1 = np.sin(np.arange(d) * 1.0); mu2 = np.cos(np.arange(d) * 1.0)
   * def fid(m1, s1, m2, s2):
   *     covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
   *     covmean = covmean.real
   *     return ((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
   * full1 = A @ A.T / d + 0.01 * np.eye(d); full2 = B @ B.T / d
   * low1 = A[:, :2] @ A[:, :2].T; low2 = B[:, :3] @ B[:, :3].T
   * print(repr(fid(mu1, full1, mu2, full2)), repr(fid(mu1, low1, mu2, full2 + 0.01*np.eye(d))),
   *       repr(fid(mu1, low1, mu2, low2)))
   * # 8.721198994699847 11.686758145734075 14.716939628940315
   * </pre>
   *
   * A and B have rank 2, so the three cases take the three factorisations.
   */
  @Test
  void agreesWithScipyOnFixedMatricesThroughEveryFactorisation() {
    int d = 6;
    double[][] a = new double[d][d];
    double[][] b = new double[d][d];
    double[] mu1 = new double[d];
    double[] mu2 = new double[d];
    for (int i = 0; i < d; i++) {
      mu1[i] = Math.sin(i);
      mu2[i] = Math.cos(i);
      for (int j = 0; j < d; j++) {
        a[i][j] = Math.sin(7.0 * i + 3.0 * j + 1.0);
        b[i][j] = Math.cos(5.0 * i - 2.0 * j);
      }
    }
    double[][] full1 = gram(a, d, 1.0 / d, 0.01);
    double[][] full2 = gram(b, d, 1.0 / d, 0);
    double[][] full2Ridge = gram(b, d, 1.0 / d, 0.01);
    double[][] low1 = gram(a, 2, 1, 0);
    double[][] low2 = gram(b, 3, 1, 0);
    FrechetDistance.Result r1 = FrechetDistance.of(mu1, full1, mu2, full2);
    FrechetDistance.Result r2 = FrechetDistance.of(mu1, low1, mu2, full2Ridge);
    FrechetDistance.Result r3 = FrechetDistance.of(mu1, low1, mu2, low2);
    assertThat(r1.factor()).isEqualTo(FrechetDistance.Factor.CHOLESKY_SIGMA1);
    assertThat(r2.factor()).isEqualTo(FrechetDistance.Factor.CHOLESKY_SIGMA2);
    assertThat(r3.factor()).isEqualTo(FrechetDistance.Factor.EIGEN_SIGMA1);
    assertThat(r1.distance()).isCloseTo(8.721198994699847, within(8.72 * 1e-6));
    assertThat(r2.distance()).isCloseTo(11.686758145734075, within(11.69 * 1e-6));
    assertThat(r3.distance()).isCloseTo(14.716939628940315, within(14.72 * 1e-6));
  }

  /** scale * X[:, :k] X[:, :k]^T + ridge * I. */
  private static double[][] gram(double[][] x, int k, double scale, double ridge) {
    int d = x.length;
    double[][] s = new double[d][d];
    for (int i = 0; i < d; i++) {
      for (int j = 0; j < d; j++) {
        for (int c = 0; c < k; c++) {
          s[i][j] += x[i][c] * x[j][c];
        }
        s[i][j] *= scale;
      }
      s[i][i] += ridge;
    }
    return s;
  }

  @Test
  void statisticsDoNotDependOnHowSamplesAreSplit() {
    SplittableRandom r = new SplittableRandom(3);
    int n = 300;
    int d = 6;
    double[][] x = new double[n][d];
    for (double[] row : x) {
      for (int j = 0; j < d; j++) {
        row[j] = r.nextDouble() * (j + 1) + j;
      }
    }
    FeatureStats whole = new FeatureStats(d).add(Nd4j.createFromArray(x));
    FeatureStats parts = new FeatureStats(d);
    FeatureStats reversed = new FeatureStats(d);
    int[] cuts = {0, 17, 100, 101, 250, n};
    for (int c = 0; c + 1 < cuts.length; c++) {
      parts = FeatureStats.merge(parts, new FeatureStats(d).add(Nd4j.createFromArray(slice(x, cuts[c], cuts[c + 1]))));
      int hi = n - cuts[c];
      int lo = n - cuts[c + 1];
      reversed = FeatureStats.merge(new FeatureStats(d).add(Nd4j.createFromArray(slice(x, lo, hi))), reversed);
    }
    // two-pass reference
    double[] mean = new double[d];
    for (double[] row : x) {
      for (int j = 0; j < d; j++) {
        mean[j] += row[j] / n;
      }
    }
    double[][] cov = new double[d][d];
    for (double[] row : x) {
      for (int i = 0; i < d; i++) {
        for (int j = 0; j < d; j++) {
          cov[i][j] += (row[i] - mean[i]) * (row[j] - mean[j]) / (n - 1);
        }
      }
    }
    for (FeatureStats s : new FeatureStats[] {whole, parts, reversed}) {
      assertThat(s.count()).isEqualTo(n);
      for (int i = 0; i < d; i++) {
        assertThat(s.mean()[i]).isCloseTo(mean[i], within(1e-12));
        for (int j = 0; j < d; j++) {
          assertThat(s.covariance()[i][j]).isCloseTo(cov[i][j], within(1e-9));
        }
      }
    }
    assertThat(parts.covariance()[2][3]).isCloseTo(reversed.covariance()[2][3], within(1e-12));
    assertThatThrownBy(() -> new FeatureStats(d).add(Nd4j.createFromArray(slice(x, 0, 1))).covariance())
        .hasMessageContaining("at least 2 samples");
  }

  @Test
  void kidOfTinySetsMatchesTheFormulaByHand() {
    double[][] x = {{1, 0}, {0, 1}};
    double[][] y = {{1, 1}, {0, 0}};
    // k = (x.y / 2 + 1)^3: k(x0,x1) = 1; k(y0,y1) = 1; k(x0,y0) = 1.5^3, k(x0,y1) = 1, k(x1,y0) = 1.5^3, k(x1,y1) = 1
    double expected = (2 * 1.0 + 2 * 1.0) / 2 - 2 * (2 * 3.375 + 2) / 4;
    assertThat(KernelInceptionDistance.mmd2(x, y, 2)).isCloseTo(expected, within(1e-12));
    KernelInceptionDistance.Result r = KernelInceptionDistance.of(x, y, 3, 2, 5);
    assertThat(r.mean()).isCloseTo(expected, within(1e-12)); // every subset is the whole set
    assertThat(r.std()).isCloseTo(0.0, within(1e-12));
  }

  @Test
  void kidOfTwoDrawsOfOneDistributionIsNearZeroAndOfShiftedOnesIsNot() {
    SplittableRandom r = new SplittableRandom(11);
    double[][] a = gaussian(400, 8, 0, r);
    double[][] b = gaussian(400, 8, 0, r);
    double[][] c = gaussian(400, 8, 1, r);
    KernelInceptionDistance.Result same = KernelInceptionDistance.of(a, b, 20, 100, 1);
    KernelInceptionDistance.Result shifted = KernelInceptionDistance.of(a, c, 20, 100, 1);
    assertThat(Math.abs(same.mean())).isLessThan(3 * same.std() + 1e-3);
    assertThat(shifted.mean()).isGreaterThan(10 * Math.abs(same.mean()) + 3 * shifted.std());
    assertThat(KernelInceptionDistance.of(a, b, 20, 100, 1)).isEqualTo(same); // seeded
  }

  private static double[][] gaussian(int n, int d, double shift, SplittableRandom r) {
    double[][] x = new double[n][d];
    for (double[] row : x) {
      for (int j = 0; j < d; j++) {
        double u = r.nextDouble();
        double v = r.nextDouble();
        row[j] = shift + Math.sqrt(-2 * Math.log(1 - u)) * Math.cos(2 * Math.PI * v);
      }
    }
    return x;
  }

  private static double[][] slice(double[][] x, int from, int to) {
    return java.util.Arrays.copyOfRange(x, from, to);
  }

  @Test
  void pairedMetricsAgreeWithScikitImage() {
    int c = 3;
    int h = 16;
    int w = 20;
    float[] x = new float[c * h * w];
    float[] y = new float[c * h * w];
    for (int ch = 0; ch < c; ch++) {
      for (int i = 0; i < h; i++) {
        for (int j = 0; j < w; j++) {
          int at = (ch * h + i) * w + j;
          x[at] = (float) (((i * 7 + j * 13 + ch * 5) % 17) / 16.0);
          y[at] = (float) (0.7 * x[at] + 0.3 * (((i * 3 + j * 5 + ch) % 11) / 10.0));
        }
      }
    }
    PairedMetrics m = new PairedMetrics();
    m.add(x, y, 1, c, h, w);
    // skimage 0.26: structural_similarity(x, y, channel_axis=0, gaussian_weights=True, sigma=1.5,
    // use_sample_covariance=False, data_range=1), peak_signal_noise_ratio(x, y, data_range=1), |x - y|.mean()
    assertThat(m.meanSsim()).isCloseTo(0.8858036628651678, within(1e-6));
    assertThat(m.meanPsnr()).isCloseTo(17.64229971292816, within(1e-6));
    assertThat(m.meanL1()).isCloseTo(0.10697656313811119, within(1e-6));
    // a pair of identical images: SSIM 1, PSNR at its cap; sums merge as means over all pairs
    PairedMetrics same = new PairedMetrics();
    same.add(x, x, 1, c, h, w);
    assertThat(same.meanSsim()).isCloseTo(1.0, within(1e-12));
    assertThat(same.meanPsnr()).isEqualTo(PairedMetrics.PSNR_CAP);
    assertThat(m.merge(same).count()).isEqualTo(2);
    assertThat(m.meanL1()).isCloseTo(0.10697656313811119 / 2, within(1e-6));
    assertThatThrownBy(() -> new PairedMetrics().add(new float[300], new float[300], 1, 3, 10, 10))
        .hasMessageContaining("11x11");
  }

  @Test
  void segmentationScoresCountByHand() {
    // classes 0, 1, 2 (2 never in the truth), -1 void
    SegmentationScore a = new SegmentationScore(3);
    a.add(new int[] {0, 0, 0, 1, -1}, new int[] {0, 0, 1, 1, 2});
    SegmentationScore b = new SegmentationScore(3);
    b.add(new int[] {1, 1, 0}, new int[] {2, -1, 0});
    SegmentationScore s = a.merge(b);
    // truth 0: 4 pixels, 3 right; truth 1: 3 pixels, 1 right (one predicted 2, one void); void truth ignored
    assertThat(s.pixels()).isEqualTo(7);
    assertThat(s.pixelAccuracy()).isCloseTo(4.0 / 7, within(1e-12));
    assertThat(s.classAccuracy()).isCloseTo((3.0 / 4 + 1.0 / 3) / 2, within(1e-12));
    // IoU 0: 3 / (4 + 3 - 3); IoU 1: 1 / (3 + 2 - 1)
    assertThat(s.meanIou()).isCloseTo((3.0 / 4 + 1.0 / 4) / 2, within(1e-12));
  }
}
