package org.genpipe.models;

import static org.genpipe.common.config.ConfigException.check;

import java.io.Serializable;
import java.util.List;
import org.genpipe.common.records.ImageShape;
import org.genpipe.models.vae.BetaVae;
import org.genpipe.models.vae.BetaVaeSettings;

/**
 * Config section {@code model}: which model, and that model's own section. The registry of model
 * names lives here: {@link #factory} is the one place that maps a name to a model.
 *
 * @param name one of {@link #NAMES}
 * @param betaVae settings of the beta-VAE
 */
public record ModelSettings(String name, BetaVaeSettings betaVae) implements Serializable {
  public static final List<String> NAMES = List.of(BetaVae.NAME);

  public ModelSettings {
    check(name != null && NAMES.contains(name), "name",
        "'" + name + "' is not a model; allowed: " + String.join(", ", NAMES));
  }

  /**
   * A factory for the configured model on records of {@code shape}; {@code source} names the records
   * in errors (e.g. an image shape the model cannot read).
   */
  public ModelFactory factory(ImageShape shape, long seed, String source) {
    switch (name) {
      case BetaVae.NAME:
        check(betaVae != null, "betaVae", "section missing for model beta-vae");
        BetaVae.checkShape(shape, source);
        return new BetaVae.Factory(betaVae, seed);
      default:
        throw new IllegalStateException("no factory for model " + name);
    }
  }
}
