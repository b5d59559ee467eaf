package org.genpipe.common.data;

import static org.genpipe.common.config.ConfigException.check;

import java.io.Serializable;

/**
 * CAPTCHA settings shared by the folder reader and the renderer (config section
 * {@code preprocess.captcha}).
 *
 * @param alphabet the characters a text may contain
 * @param minLength shortest text (rendered texts; folder names are checked against maxLength only)
 * @param maxLength longest text
 * @param height record image height (images are resized)
 * @param width record image width
 * @param channels 1 (grey) or 3 (RGB)
 * @param testFraction share of items that go to the test split
 * @param count how many CAPTCHAs the renderer makes
 * @param renderWidth width the renderer draws at, before resizing
 * @param renderHeight height the renderer draws at, before resizing
 */
public record CaptchaSettings(
    String alphabet,
    int minLength,
    int maxLength,
    int height,
    int width,
    int channels,
    double testFraction,
    int count,
    int renderWidth,
    int renderHeight)
    implements Serializable {

  public CaptchaSettings {
    check(alphabet != null && !alphabet.isEmpty(), "alphabet", "must list at least one character");
    check(alphabet.chars().distinct().count() == alphabet.length(), "alphabet",
        "'" + alphabet + "' repeats a character");
    check(minLength >= 1, "minLength", "must be >= 1, got " + minLength);
    check(maxLength >= minLength, "maxLength", "must be >= minLength (" + minLength + "), got " + maxLength);
    check(height > 0 && width > 0, "height/width", "must be > 0, got " + height + "x" + width);
    check(channels == 1 || channels == 3, "channels", "must be 1 (grey) or 3 (RGB), got " + channels);
    check(testFraction >= 0 && testFraction < 1, "testFraction", "must be in [0, 1), got " + testFraction);
    check(count >= 1, "count", "must be >= 1, got " + count);
    check(renderWidth >= 16 && renderHeight >= 16, "renderWidth/renderHeight",
        "must be >= 16, got " + renderWidth + "x" + renderHeight);
  }

  /** Why a text cannot be used, or null if it can. */
  public String problemWith(String text) {
    if (text.isEmpty() || text.length() > maxLength) {
      return "text '" + text + "' has " + text.length() + " characters; allowed 1.." + maxLength;
    }
    for (int i = 0; i < text.length(); i++) {
      if (alphabet.indexOf(text.charAt(i)) < 0) {
        return "text '" + text + "' has character '" + text.charAt(i) + "' outside the alphabet '"
            + alphabet + "'";
      }
    }
    return null;
  }
}
