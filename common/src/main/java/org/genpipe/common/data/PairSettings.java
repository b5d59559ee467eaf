package org.genpipe.common.data;

import static org.genpipe.common.config.ConfigException.check;

import java.io.Serializable;

/**
 * Size of both halves of a Pix2Pix pair in the records (config section {@code preprocess.cityscapes}).
 *
 * @param height records image height, 256 by default
 * @param width records image width, 256 by default
 */
public record PairSettings(int height, int width) implements Serializable {
  public PairSettings {
    check(height > 0 && width > 0, "height/width", "must be > 0, got " + height + "x" + width);
  }
}
