package org.genpipe.jobs.train;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.genpipe.common.records.ImageRecord;
import org.genpipe.common.records.Manifest;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.PixelRange;
import org.genpipe.common.records.ShardReader;
import org.genpipe.jobs.judge.DomainExtractor;
import org.genpipe.models.Condition;
import org.genpipe.models.GenerativeModel;
import org.genpipe.models.classify.DomainClassifier;
import org.genpipe.models.classify.DomainClassifierSettings;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Mode-collapse warning signs for sample grids during training, judged by the evaluation job's
 * domain classifier (trained once on the records, cached, and reused by {@code evaluate}):
 *
 * <ul>
 *   <li>{@code sample_diversity}: mean pairwise distance of the classifier's features over a fixed
 *       batch of samples, divided by the same over held-out real images (about 1 when samples vary
 *       as much as the data; towards 0 when G collapses to a few modes);
 *   <li>{@code sample_class_entropy}: entropy of the classes the classifier sees in the samples,
 *       divided by log(classes) (1 = all classes equally often);
 *   <li>{@code sample_class_match} (conditional models): share of samples classified as the class
 *       they were generated for.
 * </ul>
 */
final class SampleMonitor {
  static final int SAMPLES = 200;
  static final double COLLAPSE_BELOW = 0.5;

  private final DomainClassifier classifier;
  private final int classes;
  private final double realSpread;

  private SampleMonitor(DomainClassifier classifier, int classes, double realSpread) {
    this.classifier = classifier;
    this.classes = classes;
    this.realSpread = realSpread;
  }

  static SampleMonitor create(Path recordsDir, Manifest manifest, String manifestSha, String heldOutSplit,
      DomainClassifierSettings settings, long seed, Path cacheDir, Configuration conf, boolean showProgress) {
    DomainExtractor extractor = DomainExtractor.obtain(recordsDir, manifest, manifestSha, settings, seed,
        heldOutSplit, cacheDir, conf, showProgress);
    DomainClassifier classifier = extractor.classifier();
    List<ImageRecord> real = new ArrayList<>();
    Iterator<ImageRecord> it = ShardReader.read(manifest.shardPaths(recordsDir, heldOutSplit), conf);
    while (it.hasNext() && real.size() < SAMPLES) {
      real.add(it.next());
    }
    double spread = spread(classifier.features(Minibatch.of(real, PixelRange.ZERO_ONE).images()));
    int classes = manifest.classes() == null ? 0 : manifest.classes().size();
    return new SampleMonitor(classifier, classes, spread);
  }

  /** The warning signs for the model's samples from {@code seed}. */
  Map<String, Double> measure(GenerativeModel model, long seed) {
    Condition condition = null;
    int[] asked = null;
    if (model.classCount() > 0) {
      asked = new int[SAMPLES];
      for (int i = 0; i < SAMPLES; i++) {
        asked[i] = i % model.classCount();
      }
      condition = Condition.ofLabels(asked);
    }
    INDArray images = model.generate(SAMPLES, seed, condition);
    Map<String, Double> out = new LinkedHashMap<>();
    out.put("sample_diversity", spread(classifier.features(images)) / realSpread);
    if (classes >= 2) {
      int[][] predicted = classifier.predict(images);
      int[] counts = new int[classes];
      int match = 0;
      for (int i = 0; i < SAMPLES; i++) {
        counts[predicted[i][0]]++;
        match += asked != null && predicted[i][0] == asked[i] ? 1 : 0;
      }
      double entropy = 0;
      for (int c : counts) {
        if (c > 0) {
          double p = (double) c / SAMPLES;
          entropy -= p * Math.log(p);
        }
      }
      out.put("sample_class_entropy", entropy / Math.log(classes));
      if (asked != null) {
        out.put("sample_class_match", (double) match / SAMPLES);
      }
    }
    return out;
  }

  /**
   * A warning when the signs point at mode collapse (samples varying less than half as much as real
   * images, or using less than half of the class entropy), else null.
   */
  static String warning(Map<String, Double> signs) {
    List<String> out = new ArrayList<>();
    Double diversity = signs.get("sample_diversity");
    if (diversity != null && diversity < COLLAPSE_BELOW) {
      out.add(String.format("sample_diversity %.2f (samples vary %.0f%% as much as real images)", diversity,
          100 * diversity));
    }
    Double entropy = signs.get("sample_class_entropy");
    if (entropy != null && entropy < COLLAPSE_BELOW) {
      out.add(String.format("sample_class_entropy %.2f (samples fall into few classes)", entropy));
    }
    return out.isEmpty() ? null : "possible mode collapse: " + String.join("; ", out);
  }

  /** Mean Euclidean distance over all pairs of rows. */
  static double spread(INDArray features) {
    return org.genpipe.jobs.judge.FeatureExtractor.spread(
        features.castTo(org.nd4j.linalg.api.buffer.DataType.DOUBLE).toDoubleMatrix(), Integer.MAX_VALUE);
  }
}
