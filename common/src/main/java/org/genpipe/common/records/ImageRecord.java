package org.genpipe.common.records;

import java.io.Serializable;

/**
 * One example as stored in the sharded records: pixels are unsigned bytes in HWC order (row-major,
 * channels interleaved, as numpy and PIL lay them out).
 *
 * @param id stable identifier, unique within the data set (e.g. "train/00042" or the file name)
 * @param split "train", "test" or "val"
 * @param label class index, or null where the data set has no classes
 * @param text the text shown in the image (CAPTCHA), or null
 * @param height image height in pixels
 * @param width image width in pixels
 * @param channels 1 (grey) or 3 (RGB)
 * @param image the pixels, height * width * channels bytes
 * @param labelMap the paired input image of the same shape (Pix2Pix label map), or null
 */
public record ImageRecord(
    String id,
    String split,
    Integer label,
    String text,
    int height,
    int width,
    int channels,
    byte[] image,
    byte[] labelMap)
    implements Serializable {

  public ImageRecord {
    int expected = height * width * channels;
    if (image == null || image.length != expected) {
      throw new IllegalArgumentException(
          "record " + id + ": image has " + (image == null ? 0 : image.length)
              + " bytes, expected " + height + "x" + width + "x" + channels + " = " + expected);
    }
    if (labelMap != null && labelMap.length != expected) {
      throw new IllegalArgumentException(
          "record " + id + ": label map has " + labelMap.length + " bytes, expected " + expected);
    }
  }

  public ImageShape shape() {
    return new ImageShape(height, width, channels);
  }
}
