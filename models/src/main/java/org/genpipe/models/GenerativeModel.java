package org.genpipe.models;

import org.genpipe.common.io.BadInputException;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A model that generates images: the engine asks it for sample grids, the evaluation job for
 * samples to compare with real images, {@code generate} for pictures.
 */
public interface GenerativeModel extends TrainableModel {

  /**
   * Number of classes a conditional model generates for (images are asked for with
   * {@link Condition#labels()}); 0 for unconditional models.
   */
  default int classCount() {
    return 0;
  }

  /**
   * The characters of the texts a text-conditioned model draws (images are asked for with {@link
   * Condition#texts()}); null for models not conditioned on texts.
   */
  default String textAlphabet() {
    return null;
  }

  /** The longest text a text-conditioned model draws; 0 for the others. */
  default int maxTextLength() {
    return 0;
  }

  /**
   * Fails with a message naming the text and {@code what} asked for it unless this model draws it
   * (a model not conditioned on texts draws none).
   */
  default void checkText(String text, String what) {
    String alphabet = textAlphabet();
    if (alphabet == null) {
      throw new BadInputException(what + ": model " + name() + " is not conditioned on texts");
    }
    if (text == null || text.isEmpty() || text.length() > maxTextLength()) {
      throw new BadInputException(what + ": text '" + text + "' has " + (text == null ? 0 : text.length())
          + " characters; " + name() + " draws texts of 1.." + maxTextLength());
    }
    for (int i = 0; i < text.length(); i++) {
      if (alphabet.indexOf(text.charAt(i)) < 0) {
        throw new BadInputException(what + ": text '" + text + "' has '" + text.charAt(i) + "', which is not in the"
            + " model's alphabet '" + alphabet + "'");
      }
    }
  }

  /**
   * Generates {@code n} images from noise drawn from {@code seed}.
   *
   * @param condition class labels, texts or condition images for conditional models, or null
   * @return [n, C, H, W] floats in [0, 1]
   */
  INDArray generate(int n, long seed, Condition condition);
}
