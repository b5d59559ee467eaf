package org.genpipe.jobs.evaluate;

import java.io.Serializable;
import java.util.EnumMap;
import java.util.Map;
import java.util.TreeMap;
import org.genpipe.jobs.judge.FeatureExtractor;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Features of the evaluation's image sets as they come back from tasks: float64 sufficient statistics
 * per set, and the features of the first {@code kidMax} samples (by sample index) for KID, kept as
 * blocks by start index so that the merge order does not matter; for image-to-image models also the
 * paired metrics of the translations and the segmentation scores of translated and real images; for
 * text-conditioned models what a reader reads in drawn and in real images.
 */
public final class FeatureSets implements Serializable {
  private static final long serialVersionUID = 1L;

  /** The image sets an evaluation compares. */
  enum Kind {
    REFERENCE("reference"),
    RECONSTRUCTED("rec"),
    GENERATED("gen"),
    /** The reference images themselves, scored by the segmenter (its ceiling). */
    REAL("real");

    final String label;

    Kind(String label) {
      this.label = label;
    }
  }

  private final Map<Kind, FeatureStats> stats = new EnumMap<>(Kind.class);
  private final Map<Kind, TreeMap<Long, float[]>> kept = new EnumMap<>(Kind.class);
  private int dim;
  private PairedMetrics paired;
  private final Map<Kind, SegmentationScore> segmentation = new EnumMap<>(Kind.class);
  /** Sum of the feature distances between samples drawn for the same text, and the number of such pairs. */
  private double sameTextDistance;
  private long sameTextPairs;

  /** Adds the features [k, dim] of k samples drawn for one text. */
  void addSameText(INDArray features) {
    double[][] f = features.castTo(DataType.DOUBLE).toDoubleMatrix();
    for (int i = 0; i < f.length; i++) {
      for (int j = i + 1; j < f.length; j++) {
        sameTextDistance += FeatureExtractor.distance(f[i], f[j]);
        sameTextPairs++;
      }
    }
  }

  /** Mean feature distance between samples of the same text, or NaN when none were drawn. */
  double sameTextSpread() {
    return sameTextPairs == 0 ? Double.NaN : sameTextDistance / sameTextPairs;
  }

  /** Per set: texts read exactly, texts read, edits, characters of the true texts. */
  private final Map<Kind, long[]> readings = new EnumMap<>(Kind.class);

  /** Adds what a reader read in images of set {@code kind} against the texts they show (or were drawn for). */
  void addReadings(Kind kind, java.util.List<String> read, java.util.List<String> truth) {
    long[] r = readings.computeIfAbsent(kind, k -> new long[4]);
    for (int i = 0; i < read.size(); i++) {
      r[0] += read.get(i).equals(truth.get(i)) ? 1 : 0;
      r[1]++;
      r[2] += org.genpipe.models.reader.CaptchaReader.editDistance(read.get(i), truth.get(i));
      r[3] += truth.get(i).length();
    }
  }

  /** {sequence accuracy, character error rate, texts read} of set {@code kind}, or null when it was not read. */
  double[] readings(Kind kind) {
    long[] r = readings.get(kind);
    return r == null ? null : new double[] {(double) r[0] / r[1], (double) r[2] / Math.max(1, r[3]), r[1]};
  }

  /** Adds translated images [N, C, H, W] and their targets, both in [0, 1]. */
  void addPairs(INDArray generated, INDArray targets) {
    if (paired == null) {
      paired = new PairedMetrics();
    }
    paired.add(floats(generated), floats(targets), (int) generated.size(0), (int) generated.size(1),
        (int) generated.size(2), (int) generated.size(3));
  }

  /** Adds the predicted pixel classes of images of set {@code kind} against the true classes, [N][pixels]. */
  void addSegmentation(Kind kind, int classes, int[][] truth, int[][] predicted) {
    SegmentationScore s = segmentation.computeIfAbsent(kind, k -> new SegmentationScore(classes));
    for (int i = 0; i < truth.length; i++) {
      s.add(truth[i], predicted[i]);
    }
  }

  PairedMetrics paired() {
    return paired;
  }

  SegmentationScore segmentation(Kind kind) {
    return segmentation.get(kind);
  }

  private static float[] floats(INDArray a) {
    return a.castTo(DataType.FLOAT).dup('c').data().asFloat();
  }

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
    if (b.paired != null) {
      a.paired = a.paired == null ? b.paired : a.paired.merge(b.paired);
    }
    for (Map.Entry<Kind, SegmentationScore> e : b.segmentation.entrySet()) {
      a.segmentation.merge(e.getKey(), e.getValue(), SegmentationScore::merge);
    }
    a.sameTextDistance += b.sameTextDistance;
    a.sameTextPairs += b.sameTextPairs;
    for (Map.Entry<Kind, long[]> e : b.readings.entrySet()) {
      long[] r = a.readings.computeIfAbsent(e.getKey(), k -> new long[4]);
      for (int i = 0; i < r.length; i++) {
        r[i] += e.getValue()[i];
      }
    }
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
