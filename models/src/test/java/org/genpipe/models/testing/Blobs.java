package org.genpipe.models.testing;

import java.util.ArrayList;
import java.util.List;
import org.genpipe.common.records.ImageRecord;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.PixelRange;

/** Synthetic 28x28 grey images for model tests. */
public final class Blobs {
  private Blobs() {}

  /** Blobs: a bright square whose position depends on the class, 28x28 grey. */
  public static Minibatch of(int n, long seed) {
    java.util.Random r = new java.util.Random(seed);
    List<ImageRecord> records = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int label = r.nextInt(4);
      byte[] img = new byte[28 * 28];
      int top = 4 + (label / 2) * 12;
      int left = 4 + (label % 2) * 12;
      for (int y = top; y < top + 8; y++) {
        for (int x = left; x < left + 8; x++) {
          img[y * 28 + x] = (byte) (200 + r.nextInt(55));
        }
      }
      records.add(new ImageRecord("r" + i, "train", label, null, 28, 28, 1, img, null));
    }
    return Minibatch.of(records, PixelRange.ZERO_ONE);
  }

}
