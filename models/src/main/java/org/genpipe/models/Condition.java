package org.genpipe.models;

import java.util.List;

/**
 * What a conditional model generates for: one class label or one text per image.
 *
 * @param labels class indices, or null
 * @param texts texts (CAPTCHA model), or null
 */
public record Condition(int[] labels, List<String> texts) {

  public static Condition ofLabels(int... labels) {
    return new Condition(labels, null);
  }
}
