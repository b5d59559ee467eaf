package org.genpipe.models.vae;

import static org.genpipe.common.config.ConfigException.check;

import java.io.Serializable;
import org.genpipe.models.nn.OptimizerSettings;

/**
 * Config section {@code model.betaVae}.
 *
 * @param latentSize dimensions of z
 * @param beta weight of the divergence term (1 = plain VAE)
 * @param divergence kl (default) or cs (Cauchy-Schwarz)
 * @param optimizer the optimizer of the encoder and decoder
 */
public record BetaVaeSettings(int latentSize, double beta, Divergence divergence, OptimizerSettings optimizer)
    implements Serializable {

  public BetaVaeSettings {
    check(latentSize >= 1 && latentSize <= 1024, "latentSize", "must be in 1..1024, got " + latentSize);
    check(beta >= 0 && Double.isFinite(beta), "beta", "must be >= 0, got " + beta);
    check(divergence != null, "divergence", "missing; allowed: kl, cs");
    check(optimizer != null, "optimizer", "section missing");
  }
}
