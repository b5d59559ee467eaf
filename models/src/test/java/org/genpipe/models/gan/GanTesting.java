package org.genpipe.models.gan;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.genpipe.common.records.ImageRecord;
import org.genpipe.common.records.ImageShape;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.PixelRange;
import org.genpipe.models.nn.OptimizerSettings;

/** Settings and data for the GAN tests. */
final class GanTesting {
  static final ImageShape CIFAR = new ImageShape(32, 32, 3);

  private GanTesting() {}

  static GanSettings settings(GanLoss loss, int width) {
    return settings(loss, width, 0.0, "batch", List.of(), 0.0);
  }

  static GanSettings settings(GanLoss loss, int width, double smoothing, String dNorm, List<String> augment,
      double noise) {
    OptimizerSettings adam = OptimizerSettings.adam(2e-4, 0.5, 0.999);
    return new GanSettings(16, width, loss, smoothing, 10.0, 1, null, dNorm, augment, noise, 0, 0.02, adam, adam);
  }

  /**
   * A tiny data set with a clear structure: a class-coloured square (class k: hue k/classes) on a
   * dark background, at a random position.
   */
  static Minibatch squares(int n, int classes, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    List<ImageRecord> records = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int label = r.nextInt(classes);
      byte[] hwc = new byte[32 * 32 * 3];
      int x0 = r.nextInt(4, 16);
      int y0 = r.nextInt(4, 16);
      int[] rgb = {200 * ((label + 1) & 1) + 40, 200 * (((label + 1) >> 1) & 1) + 40, 120 + 12 * label};
      for (int y = 0; y < 32; y++) {
        for (int x = 0; x < 32; x++) {
          boolean in = y >= y0 && y < y0 + 12 && x >= x0 && x < x0 + 12;
          for (int c = 0; c < 3; c++) {
            hwc[(y * 32 + x) * 3 + c] = (byte) (in ? rgb[c] : 20);
          }
        }
      }
      records.add(new ImageRecord("sq-" + seed + "-" + i, "train", label, null, 32, 32, 3, hwc, null));
    }
    return Minibatch.of(records, PixelRange.MINUS_ONE_ONE);
  }
}
