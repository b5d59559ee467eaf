package org.genpipe.jobs.evaluate;

import java.io.Serializable;

/**
 * The confusion matrix of predicted against true pixel classes (void pixels, class < 0, left out),
 * summed over images, and the FCN-score numbers of the pix2pix paper from it: per-pixel accuracy,
 * per-class accuracy and class IoU (each class's mean over the classes present in the truth).
 */
final class SegmentationScore implements Serializable {
  private static final long serialVersionUID = 1L;

  private final int classes;
  private final long[] counts; // [truth * classes + predicted]
  private final long[] missed; // per true class: pixels predicted void

  SegmentationScore(int classes) {
    this.classes = classes;
    this.counts = new long[classes * classes];
    this.missed = new long[classes];
  }

  /** Adds one image's pixels. */
  void add(int[] truth, int[] predicted) {
    for (int p = 0; p < truth.length; p++) {
      if (truth[p] >= 0) {
        // a void prediction (a generated label map's colour of no class) is wrong, and no class's prediction
        if (predicted[p] >= 0) {
          counts[truth[p] * classes + predicted[p]]++;
        } else {
          missed[truth[p]]++;
        }
      }
    }
  }

  SegmentationScore merge(SegmentationScore o) {
    for (int i = 0; i < counts.length; i++) {
      counts[i] += o.counts[i];
    }
    for (int i = 0; i < classes; i++) {
      missed[i] += o.missed[i];
    }
    return this;
  }

  private long truthCount(int k) {
    long n = missed[k];
    for (int j = 0; j < classes; j++) {
      n += counts[k * classes + j];
    }
    return n;
  }

  private long predictedCount(int k) {
    long n = 0;
    for (int i = 0; i < classes; i++) {
      n += counts[i * classes + k];
    }
    return n;
  }

  long pixels() {
    long n = 0;
    for (int k = 0; k < classes; k++) {
      n += truthCount(k);
    }
    return n;
  }

  double pixelAccuracy() {
    long right = 0;
    for (int k = 0; k < classes; k++) {
      right += counts[k * classes + k];
    }
    return (double) right / pixels();
  }

  double classAccuracy() {
    double sum = 0;
    int present = 0;
    for (int k = 0; k < classes; k++) {
      long t = truthCount(k);
      if (t > 0) {
        sum += (double) counts[k * classes + k] / t;
        present++;
      }
    }
    return sum / present;
  }

  double meanIou() {
    double sum = 0;
    int present = 0;
    for (int k = 0; k < classes; k++) {
      long t = truthCount(k);
      if (t > 0) {
        long hit = counts[k * classes + k];
        sum += (double) hit / (t + predictedCount(k) - hit);
        present++;
      }
    }
    return sum / present;
  }
}
