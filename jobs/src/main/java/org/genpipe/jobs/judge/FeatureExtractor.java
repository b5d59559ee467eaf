package org.genpipe.jobs.judge;

import java.io.Serializable;
import org.apache.hadoop.conf.Configuration;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Turns images into feature vectors. One instance per task thread: not thread-safe. */
public interface FeatureExtractor {

  int dim();

  /** Mean Euclidean distance over all pairs of the first {@code limit} rows. */
  public static double spread(double[][] rows, int limit) {
    int n = Math.min(rows.length, limit);
    double sum = 0;
    long pairs = 0;
    for (int i = 0; i < n; i++) {
      for (int j = i + 1; j < n; j++) {
        sum += distance(rows[i], rows[j]);
        pairs++;
      }
    }
    return pairs == 0 ? 0 : sum / pairs;
  }

  /** Euclidean distance of two feature vectors. */
  static double distance(double[] a, double[] b) {
    double d = 0;
    for (int k = 0; k < a.length; k++) {
      double t = a[k] - b[k];
      d += t * t;
    }
    return Math.sqrt(d);
  }

  /**
   * @param images [N, C, H, W] floats in [0, 1]
   * @return [N, dim] features
   */
  INDArray features(INDArray images);

  /**
   * What executors need to build an extractor, and how metric names, protocol records and cache keys
   * name it.
   */
  interface Spec extends Serializable {
    /** The name in metric names ({@code domain}, {@code inception}). */
    String name();

    /** Identifies the weights: part of the reference-statistics cache key. */
    String id();

    /** How images are brought to the extractor's input (recorded with the metrics). */
    String resize();

    int dim();

    FeatureExtractor open(Configuration conf);

    /** What to record about the extractor with its metrics. */
    default java.util.Map<String, String> protocol() {
      java.util.Map<String, String> m = new java.util.LinkedHashMap<>();
      m.put("id", id());
      m.put("resize", resize());
      m.put("dim", String.valueOf(dim()));
      return m;
    }
  }
}
