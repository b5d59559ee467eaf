package org.genpipe.models.pix2pix;

import java.util.SplittableRandom;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * pix2pix's random jitter of a training pair: both images resized from S x S to J x J with
 * J = round(S * 286 / 256) (286 at 256), then the same random S x S crop of both and, with
 * probability 1/2, the same horizontal flip. Resizing is bilinear with half-pixel centres (taps
 * outside the image dropped and the rest renormalised), written as one row of weights per output
 * row and column; a crop and a flip only pick and reverse those rows, so each image is two small
 * sparse products and nothing at size J is ever stored. The crop offsets and flips are drawn from
 * the step's seed, so retried and resumed steps see the same pairs.
 */
final class Jitter {
  private final int size;
  private final int jittered;
  /** For output index o of the J-size image: the first input index and the weights from there on. */
  private final int[] first;
  private final float[][] weights;

  Jitter(int size) {
    this.size = size;
    this.jittered = Math.round(size * 286f / 256f);
    this.first = new int[jittered];
    this.weights = new float[jittered][];
    double scale = (double) size / jittered;
    double support = Math.max(1.0, scale);
    for (int o = 0; o < jittered; o++) {
      double centre = (o + 0.5) * scale;
      int lo = Math.max(0, (int) Math.floor(centre - support));
      int hi = Math.min(size - 1, (int) Math.ceil(centre + support));
      double[] w = new double[hi - lo + 1];
      double sum = 0;
      for (int i = lo; i <= hi; i++) {
        w[i - lo] = Math.max(0.0, 1.0 - Math.abs(i + 0.5 - centre) / support);
        sum += w[i - lo];
      }
      first[o] = lo;
      weights[o] = new float[w.length];
      for (int i = 0; i < w.length; i++) {
        weights[o][i] = (float) (w[i] / sum);
      }
    }
  }

  int jitteredSize() {
    return jittered;
  }

  /** Per example: crop offset y, crop offset x, flip (1) or not (0). */
  int[][] draw(int n, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    int[][] p = new int[n][3];
    for (int i = 0; i < n; i++) {
      p[i][0] = r.nextInt(jittered - size + 1);
      p[i][1] = r.nextInt(jittered - size + 1);
      p[i][2] = r.nextInt(2);
    }
    return p;
  }

  /** The jittered copy of images x [N, C, S, S] with the per-example parameters {@code p}. */
  INDArray apply(INDArray x, int[][] p) {
    int n = (int) x.size(0);
    int c = (int) x.size(1);
    int plane = size * size;
    float[] in = x.dup('c').data().asFloat();
    float[] out = new float[in.length];
    float[] rows = new float[plane];
    for (int e = 0; e < n; e++) {
      for (int ch = 0; ch < c; ch++) {
        int base = (e * c + ch) * plane;
        // rows: tmp[y][j] = sum_i Wy[oy + y][i] * X[i][j]
        java.util.Arrays.fill(rows, 0f);
        for (int y = 0; y < size; y++) {
          int o = p[e][0] + y;
          float[] w = weights[o];
          for (int t = 0; t < w.length; t++) {
            int src = base + (first[o] + t) * size;
            float wt = w[t];
            int dst = y * size;
            for (int j = 0; j < size; j++) {
              rows[dst + j] += wt * in[src + j];
            }
          }
        }
        // columns: out[y][x] = sum_j tmp[y][j] * Wx[ox + x'][j], x' = S - 1 - x when flipped
        for (int xo = 0; xo < size; xo++) {
          int o = p[e][1] + (p[e][2] == 1 ? size - 1 - xo : xo);
          float[] w = weights[o];
          int f = first[o];
          for (int y = 0; y < size; y++) {
            float v = 0f;
            int row = y * size + f;
            for (int t = 0; t < w.length; t++) {
              v += w[t] * rows[row + t];
            }
            out[base + y * size + xo] = v;
          }
        }
      }
    }
    return Nd4j.create(out, x.shape(), 'c');
  }
}
