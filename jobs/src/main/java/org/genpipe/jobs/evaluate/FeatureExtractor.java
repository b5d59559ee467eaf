package org.genpipe.jobs.evaluate;

import java.io.Serializable;
import org.apache.hadoop.conf.Configuration;
import org.nd4j.linalg.api.ndarray.INDArray;

/** Turns images into feature vectors. One instance per task thread: not thread-safe. */
public interface FeatureExtractor {

  int dim();

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
