package org.genpipe.jobs.evaluate;

import java.io.Serializable;
import java.util.EnumMap;
import java.util.Map;
import java.util.TreeMap;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Features of the evaluation's image sets as they come back from tasks: float64 sufficient statistics
 * per set, and the features of the first {@code kidMax} samples (by sample index) for KID, kept as
 * blocks by start index so that the merge order does not matter.
 */
final class FeatureSets implements Serializable {
  private static final long serialVersionUID = 1L;

  /** The image sets an evaluation compares. */
  enum Kind {
    REFERENCE("reference"),
    RECONSTRUCTED("rec"),
    GENERATED("gen");

    final String label;

    Kind(String label) {
      this.label = label;
    }
  }

  private final Map<Kind, FeatureStats> stats = new EnumMap<>(Kind.class);
  private final Map<Kind, TreeMap<Long, float[]>> kept = new EnumMap<>(Kind.class);
  private int dim;

  /** Adds the features [n, dim] of samples {@code start .. start + n - 1} of set {@code kind}. */
  void add(Kind kind, long start, INDArray features, int kidMax) {
    int n = (int) features.size(0);
    dim = (int) features.size(1);
    stats.computeIfAbsent(kind, k -> new FeatureStats(dim)).add(features);
    if (start < kidMax) {
      int rows = (int) Math.min(n, kidMax - start);
      INDArray block = features.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(0, rows),
          org.nd4j.linalg.indexing.NDArrayIndex.all());
      kept.computeIfAbsent(kind, k -> new TreeMap<>()).put(start, block.castTo(DataType.FLOAT).dup('c').data().asFloat());
    }
  }

  /** Adds {@code b} into {@code a} and returns {@code a}. */
  static FeatureSets merge(FeatureSets a, FeatureSets b) {
    for (Map.Entry<Kind, FeatureStats> e : b.stats.entrySet()) {
      a.stats.merge(e.getKey(), e.getValue(), FeatureStats::merge);
    }
    for (Map.Entry<Kind, TreeMap<Long, float[]>> e : b.kept.entrySet()) {
      a.kept.computeIfAbsent(e.getKey(), k -> new TreeMap<>()).putAll(e.getValue());
    }
    a.dim = Math.max(a.dim, b.dim);
    return a;
  }

  FeatureStats stats(Kind kind) {
    return stats.get(kind);
  }

  /** The kept features of a set in sample order, [n][dim], or null when none were kept. */
  double[][] keptFeatures(Kind kind) {
    TreeMap<Long, float[]> blocks = kept.get(kind);
    if (blocks == null) {
      return null;
    }
    int rows = blocks.values().stream().mapToInt(b -> b.length / dim).sum();
    double[][] out = new double[rows][dim];
    int r = 0;
    for (float[] block : blocks.values()) {
      for (int i = 0; i < block.length / dim; i++, r++) {
        for (int j = 0; j < dim; j++) {
          out[r][j] = block[i * dim + j];
        }
      }
    }
    return out;
  }
}
