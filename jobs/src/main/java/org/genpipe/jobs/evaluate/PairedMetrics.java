package org.genpipe.jobs.evaluate;

import java.io.Serializable;

/**
 * Image-to-image metrics of a generated image against its target, both [0, 1] (data range 1), summed
 * over pairs: mean absolute error (L1), PSNR (10 log10(1 / MSE), capped at {@link #PSNR_CAP} dB for
 * identical images) and SSIM as Wang et al. 2004 define it (11x11 Gaussian window, sigma 1.5,
 * K1 0.01, K2 0.03, population statistics, averaged over the positions where the window fits and
 * over channels; what {@code skimage.metrics.structural_similarity(gaussian_weights=True,
 * sigma=1.5, use_sample_covariance=False, data_range=1)} computes).
 */
final class PairedMetrics implements Serializable {
  private static final long serialVersionUID = 1L;
  static final double PSNR_CAP = 100;
  private static final int RADIUS = 5;
  private static final double[] WINDOW = gaussian(RADIUS, 1.5);
  private static final double C1 = 0.01 * 0.01;
  private static final double C2 = 0.03 * 0.03;

  private double l1;
  private double psnr;
  private double ssim;
  private long count;

  /** Adds the pairs of a batch: {@code generated} and {@code target} as C-order [N, C, H, W] values. */
  void add(float[] generated, float[] target, int n, int channels, int height, int width) {
    int per = channels * height * width;
    for (int i = 0; i < n; i++) {
      double abs = 0;
      double sq = 0;
      for (int j = i * per; j < (i + 1) * per; j++) {
        double d = generated[j] - target[j];
        abs += Math.abs(d);
        sq += d * d;
      }
      l1 += abs / per;
      double mse = sq / per;
      psnr += mse <= 0 ? PSNR_CAP : Math.min(PSNR_CAP, 10 * Math.log10(1 / mse));
      double s = 0;
      for (int c = 0; c < channels; c++) {
        int off = (i * channels + c) * height * width;
        s += ssim(generated, target, off, height, width);
      }
      ssim += s / channels;
      count++;
    }
  }

  PairedMetrics merge(PairedMetrics o) {
    l1 += o.l1;
    psnr += o.psnr;
    ssim += o.ssim;
    count += o.count;
    return this;
  }

  long count() {
    return count;
  }

  double meanL1() {
    return l1 / count;
  }

  double meanPsnr() {
    return psnr / count;
  }

  double meanSsim() {
    return ssim / count;
  }

  /** SSIM of one plane of x and y starting at {@code off}. */
  static double ssim(float[] x, float[] y, int off, int height, int width) {
    int h = height - 2 * RADIUS;
    int w = width - 2 * RADIUS;
    if (h < 1 || w < 1) {
      throw new IllegalArgumentException("SSIM needs images of at least " + (2 * RADIUS + 1) + "x"
          + (2 * RADIUS + 1) + " pixels, got " + height + "x" + width);
    }
    // separable Gaussian filtering of x, y, x^2, y^2, xy: rows first (valid positions only), then columns
    double[][] rows = new double[5][height * w];
    for (int r = 0; r < height; r++) {
      for (int c = 0; c < w; c++) {
        double mx = 0;
        double my = 0;
        double xx = 0;
        double yy = 0;
        double xy = 0;
        for (int k = 0; k <= 2 * RADIUS; k++) {
          double a = x[off + r * width + c + k];
          double b = y[off + r * width + c + k];
          double g = WINDOW[k];
          mx += g * a;
          my += g * b;
          xx += g * a * a;
          yy += g * b * b;
          xy += g * a * b;
        }
        int at = r * w + c;
        rows[0][at] = mx;
        rows[1][at] = my;
        rows[2][at] = xx;
        rows[3][at] = yy;
        rows[4][at] = xy;
      }
    }
    double sum = 0;
    double[] f = new double[5];
    for (int r = 0; r < h; r++) {
      for (int c = 0; c < w; c++) {
        java.util.Arrays.fill(f, 0);
        for (int k = 0; k <= 2 * RADIUS; k++) {
          int at = (r + k) * w + c;
          double g = WINDOW[k];
          for (int m = 0; m < 5; m++) {
            f[m] += g * rows[m][at];
          }
        }
        double vx = f[2] - f[0] * f[0];
        double vy = f[3] - f[1] * f[1];
        double cov = f[4] - f[0] * f[1];
        sum += (2 * f[0] * f[1] + C1) * (2 * cov + C2) / ((f[0] * f[0] + f[1] * f[1] + C1) * (vx + vy + C2));
      }
    }
    return sum / ((double) h * w);
  }

  private static double[] gaussian(int radius, double sigma) {
    double[] g = new double[2 * radius + 1];
    double total = 0;
    for (int k = -radius; k <= radius; k++) {
      g[k + radius] = Math.exp(-k * k / (2 * sigma * sigma));
      total += g[k + radius];
    }
    for (int k = 0; k < g.length; k++) {
      g[k] /= total;
    }
    return g;
  }
}
