package org.genpipe.models.gan;

import com.fasterxml.jackson.annotation.JsonProperty;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;

/**
 * The adversarial losses every GAN of the pipeline chooses from (config {@code model.gan.loss}),
 * on D's source logits r = D(x) for real and f = D(G(z)) for generated images, both [N, 1], each
 * averaged over the batch. softplus(u) = log(1 + e^u), so softplus(-r) = -log sigmoid(r).
 *
 * <p>{@code realTarget} is one-sided label smoothing (e.g. 0.9 instead of 1 for real images), for
 * the losses that have targets (minimax, non-saturating, least-squares).
 */
public enum GanLoss {
  /** D: BCE(r, t) + BCE(f, 0); G: -BCE(f, 0) = -softplus(f), i.e. G minimises log(1 - D(G(z))). */
  @JsonProperty("minimax")
  MINIMAX,
  /** D as minimax; G: BCE(f, 1) = softplus(-f), i.e. G maximises log D(G(z)). */
  @JsonProperty("non-saturating")
  NON_SATURATING,
  /** LSGAN (a = 0, b = c = 1): D: ((r - t)^2 + f^2) / 2; G: (f - 1)^2 / 2. */
  @JsonProperty("least-squares")
  LEAST_SQUARES,
  /** WGAN-GP: D: f - r (+ lambda * gradient penalty, added by the model); G: -f. */
  @JsonProperty("wgan-gp")
  WGAN_GP,
  /** Hinge: D: relu(1 - r) + relu(1 + f); G: -f. */
  @JsonProperty("hinge")
  HINGE;

  /** Config spelling. */
  public String configName() {
    return switch (this) {
      case MINIMAX -> "minimax";
      case NON_SATURATING -> "non-saturating";
      case LEAST_SQUARES -> "least-squares";
      case WGAN_GP -> "wgan-gp";
      case HINGE -> "hinge";
    };
  }

  /** Whether D's output is a probability logit (D(x) reported as sigmoid(r)); else a raw score. */
  public boolean probabilistic() {
    return this == MINIMAX || this == NON_SATURATING;
  }

  /** Whether the loss has a real-image target that label smoothing can lower. */
  public boolean hasTargets() {
    return this == MINIMAX || this == NON_SATURATING || this == LEAST_SQUARES;
  }

  /** D's loss, to be minimised; {@code realTarget} is 1 without label smoothing. */
  public SDVariable discriminator(SameDiff sd, SDVariable real, SDVariable fake, double realTarget) {
    return switch (this) {
      case MINIMAX, NON_SATURATING -> bce(sd, real, realTarget).add(bce(sd, fake, 0.0)).mean();
      case LEAST_SQUARES -> {
        SDVariable r = real.sub(realTarget);
        yield r.mul(r).add(fake.mul(fake)).mul(0.5).mean();
      }
      case WGAN_GP -> fake.mean().sub(real.mean());
      case HINGE -> relu(sd, real.neg().add(1.0)).add(relu(sd, fake.add(1.0))).mean();
    };
  }

  /** G's loss, to be minimised. */
  public SDVariable generator(SameDiff sd, SDVariable fake) {
    return switch (this) {
      case MINIMAX -> sd.nn().softplus(fake).mean().neg();
      case NON_SATURATING -> sd.nn().softplus(fake.neg()).mean();
      case LEAST_SQUARES -> {
        SDVariable f = fake.sub(1.0);
        yield f.mul(f).mul(0.5).mean();
      }
      case WGAN_GP, HINGE -> fake.mean().neg();
    };
  }

  /** Binary cross-entropy of logits u against target t: t softplus(-u) + (1 - t) softplus(u). */
  private static SDVariable bce(SameDiff sd, SDVariable u, double t) {
    SDVariable out = null;
    if (t > 0) {
      out = sd.nn().softplus(u.neg()).mul(t);
    }
    if (t < 1) {
      SDVariable neg = sd.nn().softplus(u).mul(1.0 - t);
      out = out == null ? neg : out.add(neg);
    }
    return out;
  }

  private static SDVariable relu(SameDiff sd, SDVariable x) {
    return sd.nn().relu(x, 0.0);
  }
}
