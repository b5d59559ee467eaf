package org.genpipe.models.reader;

import static org.genpipe.common.config.ConfigException.check;

import java.io.Serializable;
import org.genpipe.models.nn.OptimizerSettings;

/**
 * Config section {@code model.captchaReader}: the CAPTCHA reader (text recogniser).
 *
 * @param alphabet the characters it reads (a text with any other is refused, naming the record)
 * @param maxLength the longest text it reads
 * @param width channels of its first convolution (later ones 2x and 4x)
 * @param beamWidth prefixes kept by the beam-search decoder (1: greedy, best path)
 * @param decayStart updates at the constant learning rate before it falls
 * @param decaySteps updates over which the learning rate then falls linearly to 0 (0 = constant rate)
 * @param optimizer its optimizer
 */
public record CaptchaReaderSettings(String alphabet, int maxLength, int width, int beamWidth, long decayStart,
    long decaySteps, OptimizerSettings optimizer) implements Serializable {

  public CaptchaReaderSettings {
    check(alphabet != null && !alphabet.isEmpty(), "alphabet", "must list at least one character");
    check(alphabet.chars().distinct().count() == alphabet.length(), "alphabet", "has a character twice: '" + alphabet
        + "'");
    check(maxLength >= 1 && maxLength <= 64, "maxLength", "must be in 1..64, got " + maxLength);
    check(width >= 1 && width <= 256, "width", "must be in 1..256, got " + width);
    check(beamWidth >= 1 && beamWidth <= 100, "beamWidth", "must be in 1..100, got " + beamWidth);
    check(decayStart >= 0, "decayStart", "must be >= 0, got " + decayStart);
    check(decaySteps >= 0, "decaySteps", "must be >= 0, got " + decaySteps);
    check(optimizer != null, "optimizer", "missing");
  }
}
