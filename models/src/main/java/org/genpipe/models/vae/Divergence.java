package org.genpipe.models.vae;

import com.fasterxml.jackson.annotation.JsonProperty;
import org.nd4j.autodiff.samediff.SDVariable;

/**
 * The latent regulariser of the beta-VAE, between q(z|x) = N(mu, diag(exp(logVar))) and the prior
 * N(0, I), in closed form for Gaussians.
 */
public enum Divergence {
  /** Kullback-Leibler: sum_d 0.5 (sigma^2 + mu^2 - 1 - log sigma^2). */
  @JsonProperty("kl")
  KL,
  /**
   * Cauchy-Schwarz: -log int(q p) + 0.5 log int(q^2) + 0.5 log int(p^2). For diagonal Gaussians,
   * per dimension: 0.5 log(1 + sigma^2) + 0.5 mu^2 / (1 + sigma^2) - 0.25 log sigma^2 - 0.5 log 2.
   */
  @JsonProperty("cs")
  CS;

  /** Metric name of the term. */
  public String metric() {
    return this == KL ? "kl" : "cs_divergence";
  }

  /** Per-example divergence [N] from mu and logVar [N, L]. */
  public SDVariable perExample(SDVariable mu, SDVariable logVar) {
    var sd = mu.getSameDiff();
    SDVariable var = sd.math().exp(logVar);
    if (this == KL) {
      return var.add(mu.mul(mu)).sub(1.0).sub(logVar).mul(0.5).sum(1);
    }
    SDVariable onePlusVar = var.add(1.0);
    return sd.math().log(onePlusVar).mul(0.5)
        .add(mu.mul(mu).div(onePlusVar).mul(0.5))
        .sub(logVar.mul(0.25))
        .sub(0.5 * Math.log(2.0))
        .sum(1);
  }

  /** The same closed form in double precision, for one example (tests and checks). */
  public double value(double[] mu, double[] logVar) {
    double sum = 0;
    for (int d = 0; d < mu.length; d++) {
      double var = Math.exp(logVar[d]);
      sum += this == KL
          ? 0.5 * (var + mu[d] * mu[d] - 1 - logVar[d])
          : 0.5 * Math.log(1 + var) + 0.5 * mu[d] * mu[d] / (1 + var) - 0.25 * logVar[d] - 0.5 * Math.log(2);
    }
    return sum;
  }
}
