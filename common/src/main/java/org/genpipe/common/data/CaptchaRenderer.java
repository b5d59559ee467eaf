package org.genpipe.common.data;

import com.github.cage.Cage;
import com.github.cage.ObjectRoulette;
import com.github.cage.image.EffectConfig;
import com.github.cage.image.Painter;
import com.github.cage.image.RgbColorGenerator;
import java.awt.Color;
import java.awt.Font;
import java.awt.image.BufferedImage;
import java.util.Random;

/**
 * Renders CAPTCHAs with the Cage library from a seed: the text and the image of item {@code i} depend
 * only on (seed, i), so any partitioning of the work gives the same images (same JDK and fonts).
 */
public final class CaptchaRenderer {
  private final CaptchaSettings settings;
  private final long seed;

  public CaptchaRenderer(CaptchaSettings settings, long seed) {
    this.settings = settings;
    this.seed = seed;
  }

  /** A rendered CAPTCHA: its text and image (at the render size). */
  public record Captcha(String text, BufferedImage image) {}

  public Captcha render(long index) {
    Random rnd = new Random(mix(seed, index));
    int len = settings.minLength() + rnd.nextInt(settings.maxLength() - settings.minLength() + 1);
    StringBuilder text = new StringBuilder(len);
    for (int i = 0; i < len; i++) {
      text.append(settings.alphabet().charAt(rnd.nextInt(settings.alphabet().length())));
    }
    int size = settings.renderHeight() * 3 / 4;
    Cage cage =
        new Cage(
            new Painter(
                settings.renderWidth(), settings.renderHeight(), Color.WHITE,
                Painter.Quality.MAX, new EffectConfig(), rnd),
            new ObjectRoulette<>(
                rnd,
                new Font(Font.SANS_SERIF, Font.BOLD, size),
                new Font(Font.SERIF, Font.PLAIN, size),
                new Font(Font.MONOSPACED, Font.BOLD, size)),
            new RgbColorGenerator(rnd),
            "png",
            1f,
            null,
            rnd);
    return new Captcha(text.toString(), cage.drawImage(text.toString()));
  }

  /** SplitMix64 of (seed, index): independent streams per item. */
  static long mix(long seed, long index) {
    long z = seed + 0x9E3779B97F4A7C15L * (index + 1);
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }
}
