package org.genpipe.models.pix2pix;

import java.util.ArrayList;
import java.util.List;
import org.genpipe.common.records.ImageRecord;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.PixelRange;
import org.genpipe.common.testing.Scenes;
import org.genpipe.models.gan.GanLoss;
import org.genpipe.models.nn.OptimizerSettings;

/** Settings and synthetic scene pairs for the Pix2Pix tests. */
final class Pix2PixTesting {
  private Pix2PixTesting() {}

  static Pix2PixSettings settings(int size, int width, String discriminator, String norm, boolean jitter) {
    OptimizerSettings adam = OptimizerSettings.adam(2e-4, 0.5, 0.999);
    return new Pix2PixSettings(size, Pix2PixSettings.LABELS_TO_PHOTO, width, width, discriminator, norm,
        GanLoss.NON_SATURATING, 100.0, 0.5, jitter, 0.02, 0, 0, adam, adam);
  }

  /** {@code n} scene pairs of {@code side} x {@code side} as a batch in [-1, 1]. */
  static Minibatch scenes(int n, int side, long seed) {
    List<ImageRecord> records = new ArrayList<>();
    int i = 0;
    for (Scenes.Pair p : Scenes.pairs(n, side, seed)) {
      records.add(new ImageRecord("scene-" + seed + "-" + i++, "train", null, null, side, side, 3, p.photo(),
          p.labelMap()));
    }
    return Minibatch.of(records, PixelRange.MINUS_ONE_ONE);
  }
}
