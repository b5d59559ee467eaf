package org.genpipe.models.reader;

/**
 * Connectionist temporal classification (Graves et al. 2006) in Java, in double precision and log
 * space: the loss -ln p(label | x) of per-frame log-probabilities and its gradient with respect to
 * them, by the forward-backward recursions over the label with blanks between and around its
 * characters. Class 0 is the blank. ND4J M2.1's own ctc_loss op cannot be trained through as shipped
 * (see shared/PLATFORM.md), so the reader computes the loss here and feeds its gradient back into
 * the graph.
 */
public final class Ctc {
  /** The blank class. */
  public static final int BLANK = 0;

  private Ctc() {}

  /** Losses per example and the gradient of their mean. */
  public record Result(double[] losses, float[] gradient) {
    public double mean() {
      double s = 0;
      for (double l : losses) {
        s += l;
      }
      return s / losses.length;
    }
  }

  /** Frames a label needs: one per character, plus a blank between each pair of equal neighbours. */
  public static int framesNeeded(int[] label) {
    int n = label.length;
    for (int i = 1; i < label.length; i++) {
      n += label[i] == label[i - 1] ? 1 : 0;
    }
    return n;
  }

  /**
   * @param logProbs [N, T, K] log-probabilities, C order (each frame's K values log-sum to 0)
   * @param labels per example the class indices (1..K-1) of its characters
   * @return per example -ln p(label), and d mean(loss) / d logProbs in the layout of {@code logProbs}
   */
  public static Result lossAndGradient(float[] logProbs, int n, int frames, int classes, int[][] labels) {
    double[] losses = new double[n];
    float[] grad = new float[logProbs.length];
    for (int i = 0; i < n; i++) {
      losses[i] = example(logProbs, i * frames * classes, frames, classes, labels[i], grad, 1.0 / n);
    }
    return new Result(losses, grad);
  }

  private static double example(float[] lp, int off, int frames, int classes, int[] label, float[] grad,
      double scale) {
    if (framesNeeded(label) > frames) {
      throw new IllegalArgumentException("a label of " + label.length + " characters needs "
          + framesNeeded(label) + " frames, the model gives " + frames);
    }
    int s = 2 * label.length + 1;
    int[] ext = new int[s];
    for (int j = 0; j < label.length; j++) {
      if (label[j] <= BLANK || label[j] >= classes) {
        throw new IllegalArgumentException("label class " + label[j] + " outside 1.." + (classes - 1));
      }
      ext[2 * j + 1] = label[j];
    }
    double[][] alpha = new double[frames][s];
    double[][] beta = new double[frames][s];
    for (double[] row : alpha) {
      java.util.Arrays.fill(row, Double.NEGATIVE_INFINITY);
    }
    for (double[] row : beta) {
      java.util.Arrays.fill(row, Double.NEGATIVE_INFINITY);
    }
    alpha[0][0] = lp[off + ext[0]];
    if (s > 1) {
      alpha[0][1] = lp[off + ext[1]];
    }
    for (int t = 1; t < frames; t++) {
      for (int j = 0; j < s; j++) {
        double a = alpha[t - 1][j];
        if (j >= 1) {
          a = logAdd(a, alpha[t - 1][j - 1]);
        }
        if (j >= 2 && ext[j] != BLANK && ext[j] != ext[j - 2]) {
          a = logAdd(a, alpha[t - 1][j - 2]);
        }
        alpha[t][j] = a + lp[off + t * classes + ext[j]];
      }
    }
    int last = frames - 1;
    beta[last][s - 1] = lp[off + last * classes + ext[s - 1]];
    if (s > 1) {
      beta[last][s - 2] = lp[off + last * classes + ext[s - 2]];
    }
    for (int t = last - 1; t >= 0; t--) {
      for (int j = 0; j < s; j++) {
        double b = beta[t + 1][j];
        if (j + 1 < s) {
          b = logAdd(b, beta[t + 1][j + 1]);
        }
        if (j + 2 < s && ext[j] != BLANK && ext[j] != ext[j + 2]) {
          b = logAdd(b, beta[t + 1][j + 2]);
        }
        beta[t][j] = b + lp[off + t * classes + ext[j]];
      }
    }
    double logP = s > 1 ? logAdd(alpha[last][s - 1], alpha[last][s - 2]) : alpha[last][0];
    // d(-ln p) / d lp[t][k] = -(sum over positions j labelled k of alpha_t(j) beta_t(j) / y_t(k)) / p
    for (int t = 0; t < frames; t++) {
      for (int j = 0; j < s; j++) {
        double occupancy = alpha[t][j] + beta[t][j] - lp[off + t * classes + ext[j]] - logP;
        if (occupancy > Double.NEGATIVE_INFINITY) {
          grad[off + t * classes + ext[j]] -= (float) (scale * Math.exp(occupancy));
        }
      }
    }
    return -logP;
  }

  /** Best path: the most likely class per frame, repeats merged, blanks dropped. Example {@code i}. */
  public static int[] greedy(float[] logProbs, int i, int frames, int classes) {
    java.util.List<Integer> out = new java.util.ArrayList<>();
    int previous = BLANK;
    for (int t = 0; t < frames; t++) {
      int off = (i * frames + t) * classes;
      int best = 0;
      for (int k = 1; k < classes; k++) {
        best = logProbs[off + k] > logProbs[off + best] ? k : best;
      }
      if (best != BLANK && best != previous) {
        out.add(best);
      }
      previous = best;
    }
    return out.stream().mapToInt(Integer::intValue).toArray();
  }

  /**
   * Prefix beam search: the most likely label (summed over all its alignments) among the
   * {@code width} best prefixes kept after each frame. Example {@code i}.
   */
  public static int[] beam(float[] logProbs, int i, int frames, int classes, int width) {
    // prefix -> {log p(prefix, ending in blank), log p(prefix, ending in its last character)}
    java.util.Map<java.util.List<Integer>, double[]> beams = new java.util.HashMap<>();
    beams.put(java.util.List.of(), new double[] {0, Double.NEGATIVE_INFINITY});
    for (int t = 0; t < frames; t++) {
      int off = (i * frames + t) * classes;
      java.util.Map<java.util.List<Integer>, double[]> next = new java.util.HashMap<>();
      for (java.util.Map.Entry<java.util.List<Integer>, double[]> e : beams.entrySet()) {
        java.util.List<Integer> prefix = e.getKey();
        double pb = e.getValue()[0];
        double pnb = e.getValue()[1];
        int lastChar = prefix.isEmpty() ? BLANK : prefix.get(prefix.size() - 1);
        for (int k = 0; k < classes; k++) {
          double p = logProbs[off + k];
          if (k == BLANK) {
            double[] same = next.computeIfAbsent(prefix, x -> empty());
            same[0] = logAdd(same[0], logAdd(pb, pnb) + p);
            continue;
          }
          java.util.List<Integer> longer = new java.util.ArrayList<>(prefix);
          longer.add(k);
          double[] extended = next.computeIfAbsent(java.util.List.copyOf(longer), x -> empty());
          if (k == lastChar) {
            // a repeat needs a blank between; without one it stays the same prefix
            extended[1] = logAdd(extended[1], pb + p);
            double[] same = next.computeIfAbsent(prefix, x -> empty());
            same[1] = logAdd(same[1], pnb + p);
          } else {
            extended[1] = logAdd(extended[1], logAdd(pb, pnb) + p);
          }
        }
      }
      java.util.Map<java.util.List<Integer>, double[]> kept = new java.util.HashMap<>();
      next.entrySet().stream()
          .sorted((a, b) -> Double.compare(logAdd(b.getValue()[0], b.getValue()[1]), logAdd(a.getValue()[0],
              a.getValue()[1])))
          .limit(width).forEach(e -> kept.put(e.getKey(), e.getValue()));
      beams = kept;
    }
    return beams.entrySet().stream()
        .max((a, b) -> Double.compare(logAdd(a.getValue()[0], a.getValue()[1]), logAdd(b.getValue()[0],
            b.getValue()[1])))
        .orElseThrow().getKey().stream().mapToInt(Integer::intValue).toArray();
  }

  private static double[] empty() {
    return new double[] {Double.NEGATIVE_INFINITY, Double.NEGATIVE_INFINITY};
  }

  static double logAdd(double a, double b) {
    if (a == Double.NEGATIVE_INFINITY) {
      return b;
    }
    if (b == Double.NEGATIVE_INFINITY) {
      return a;
    }
    double m = Math.max(a, b);
    return m + Math.log(Math.exp(a - m) + Math.exp(b - m));
  }
}
