package org.genpipe.models;

import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * What a conditional model generates for: one class label, one text or one condition image per
 * generated image.
 *
 * @param labels class indices, or null
 * @param texts texts (CAPTCHA model), or null
 * @param images condition images [N, C, H, W] in the model's pixel range (image-to-image models,
 *     see {@link ImageConditioned}), or null
 */
public record Condition(int[] labels, List<String> texts, INDArray images) {

  public static Condition ofLabels(int... labels) {
    return new Condition(labels, null, null);
  }

  public static Condition ofImages(INDArray images) {
    return new Condition(null, null, images);
  }
}
