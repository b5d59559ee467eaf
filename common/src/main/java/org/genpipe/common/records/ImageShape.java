package org.genpipe.common.records;

import java.io.Serializable;

/** Height, width and channel count of an image (HWC byte layout in records, NCHW in minibatches). */
public record ImageShape(int height, int width, int channels) implements Serializable {
  public ImageShape {
    if (height <= 0 || width <= 0 || (channels != 1 && channels != 3)) {
      throw new IllegalArgumentException(
          "image shape " + height + "x" + width + "x" + channels
              + ": height and width must be > 0 and channels 1 or 3");
    }
  }

  public int pixels() {
    return height * width * channels;
  }

  @Override
  public String toString() {
    return height + "x" + width + "x" + channels;
  }
}
