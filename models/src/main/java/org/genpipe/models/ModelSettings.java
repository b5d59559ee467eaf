package org.genpipe.models;

import static org.genpipe.common.config.ConfigException.check;

import java.io.Serializable;
import java.util.List;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.records.ImageShape;
import org.genpipe.models.ddpm.Ddpm;
import org.genpipe.models.ddpm.DdpmSettings;
import org.genpipe.models.gan.Acgan;
import org.genpipe.models.gan.Dcgan;
import org.genpipe.models.gan.Gan;
import org.genpipe.models.gan.GanSettings;
import org.genpipe.models.pix2pix.Pix2Pix;
import org.genpipe.models.pix2pix.Pix2PixSettings;
import org.genpipe.models.reader.CaptchaReader;
import org.genpipe.models.reader.CaptchaReaderSettings;
import org.genpipe.models.vae.BetaVae;
import org.genpipe.models.vae.BetaVaeSettings;

/**
 * Config section {@code model}: which model, and that model's own section. The registry of model
 * names lives here: {@link #factory} is the one place that maps a name to a model.
 *
 * @param name one of {@link #NAMES}
 * @param betaVae settings of the beta-VAE
 * @param gan settings of the GAN models (dcgan, cgan, acgan)
 * @param pix2pix settings of pix2pix
 * @param captchaReader settings of the CAPTCHA reader
 * @param ddpm settings of the DDPM
 */
public record ModelSettings(String name, BetaVaeSettings betaVae, GanSettings gan, Pix2PixSettings pix2pix,
    CaptchaReaderSettings captchaReader, DdpmSettings ddpm) implements Serializable {
  public static final List<String> NAMES = List.of(BetaVae.NAME, Dcgan.NAME, Dcgan.CONDITIONAL_NAME, Acgan.NAME,
      Pix2Pix.NAME, Ddpm.NAME, CaptchaReader.NAME);

  public ModelSettings {
    check(name != null && NAMES.contains(name), "name",
        "'" + name + "' is not a model; allowed: " + String.join(", ", NAMES));
  }

  /** The same settings with another {@code ddpm} section (e.g. generate's sampling options). */
  public ModelSettings withDdpm(DdpmSettings other) {
    return new ModelSettings(name, betaVae, gan, pix2pix, captchaReader, other);
  }

  /** The config key of the chosen model's own section: betaVae, pix2pix, captchaReader, ddpm, or gan for the GANs. */
  public String section() {
    return switch (name) {
      case BetaVae.NAME -> "betaVae";
      case Pix2Pix.NAME -> "pix2pix";
      case CaptchaReader.NAME -> "captchaReader";
      case Ddpm.NAME -> "ddpm";
      default -> "gan";
    };
  }

  /**
   * A factory for the configured model on records of {@code shape} with {@code classes} class
   * labels (0 when they have none); {@code source} names the records in errors (e.g. an image shape
   * the model cannot read).
   */
  public ModelFactory factory(ImageShape shape, int classes, long seed, String source) {
    switch (name) {
      case BetaVae.NAME:
        check(betaVae != null, "betaVae", "section missing for model beta-vae");
        BetaVae.checkShape(shape, source);
        return new BetaVae.Factory(betaVae, seed);
      case Dcgan.NAME:
      case Dcgan.CONDITIONAL_NAME:
      case Acgan.NAME:
        check(gan != null, "gan", "section missing for model " + name);
        if (!Dcgan.NAME.equals(name) && classes < 2) {
          throw new BadInputException(source + ": " + name + " is conditioned on class labels; the records have "
              + (classes == 0 ? "none" : "1 class") + " (CIFAR-10 records have 10)");
        }
        try {
          Gan.architecture(name, gan, shape, classes).discriminator();
        } catch (BadInputException e) {
          throw new BadInputException(source + ": " + e.getMessage());
        }
        return new Gan.Factory(name, gan, shape, classes, seed);
      case Pix2Pix.NAME:
        check(pix2pix != null, "pix2pix", "section missing for model pix2pix");
        Pix2Pix.checkShape(pix2pix, shape, source);
        return new Pix2Pix.Factory(pix2pix, shape, seed);
      case Ddpm.NAME:
        check(ddpm != null, "ddpm", "section missing for model ddpm");
        Ddpm.checkShape(ddpm, shape, source);
        return new Ddpm.Factory(ddpm, shape, seed);
      case CaptchaReader.NAME:
        check(captchaReader != null, "captchaReader", "section missing for model captcha-reader");
        CaptchaReader.checkShape(captchaReader, shape, source);
        return new CaptchaReader.Factory(captchaReader, shape, seed);
      default:
        throw new IllegalStateException("no factory for model " + name);
    }
  }
}
