package org.genpipe.models.gan;

import static org.genpipe.common.config.ConfigException.check;

import java.io.Serializable;
import java.util.List;
import org.genpipe.models.nn.OptimizerSettings;

/**
 * Config section {@code model.gan}, shared by DCGAN, CGAN and AC-GAN (the architecture comes from
 * {@code model.name}).
 *
 * @param latentSize noise dimensions (100 in the papers)
 * @param width base channel count of DCGAN/CGAN (G: 4w, 2w, w; D: w, 2w, 4w); AC-GAN has fixed widths
 * @param loss the adversarial loss
 * @param labelSmoothing one-sided: real images get target 1 - labelSmoothing (0 = off)
 * @param gradientPenalty lambda of WGAN-GP's penalty (loss wgan-gp only)
 * @param discriminatorSteps D updates per G update (e.g. 5 for WGAN-GP)
 * @param dropout dropout after each of D's activations; null = the model's own (AC-GAN 0.5, else 0)
 * @param discriminatorNorm batch or none: batch norm in D's inner layers (DCGAN/CGAN; wgan-gp needs none)
 * @param augment differentiable augmentations applied to real and fake alike: colour, translation, cutout
 * @param instanceNoise std of Gaussian noise added to D's inputs (0 = off)
 * @param instanceNoiseAnnealSteps steps over which that std falls linearly to 0 (0 = constant)
 * @param weightStd weights drawn from N(0, weightStd), biases 0
 * @param generatorOptimizer G's optimizer
 * @param discriminatorOptimizer D's optimizer
 */
public record GanSettings(
    int latentSize,
    int width,
    GanLoss loss,
    double labelSmoothing,
    double gradientPenalty,
    int discriminatorSteps,
    Double dropout,
    String discriminatorNorm,
    List<String> augment,
    double instanceNoise,
    long instanceNoiseAnnealSteps,
    double weightStd,
    OptimizerSettings generatorOptimizer,
    OptimizerSettings discriminatorOptimizer)
    implements Serializable {
  public static final List<String> AUGMENTATIONS = List.of("colour", "color", "translation", "cutout");

  public GanSettings {
    check(latentSize >= 1 && latentSize <= 4096, "latentSize", "must be in 1..4096, got " + latentSize);
    check(width >= 1 && width <= 1024, "width", "must be in 1..1024, got " + width);
    check(loss != null, "loss", "missing; allowed: minimax, non-saturating, least-squares, wgan-gp, hinge");
    check(labelSmoothing >= 0 && labelSmoothing < 0.5, "labelSmoothing", "must be in [0, 0.5), got " + labelSmoothing);
    check(labelSmoothing == 0 || loss.hasTargets(), "labelSmoothing",
        "applies to minimax, non-saturating and least-squares; loss " + loss.configName() + " has no targets");
    check(gradientPenalty >= 0 && Double.isFinite(gradientPenalty), "gradientPenalty", "must be >= 0, got " + gradientPenalty);
    check(discriminatorSteps >= 1 && discriminatorSteps <= 100, "discriminatorSteps",
        "must be in 1..100, got " + discriminatorSteps);
    check(dropout == null || (dropout >= 0 && dropout < 1), "dropout", "must be in [0, 1), got " + dropout);
    check("batch".equals(discriminatorNorm) || "none".equals(discriminatorNorm), "discriminatorNorm",
        "'" + discriminatorNorm + "' is not allowed; allowed: batch, none");
    augment = augment == null ? List.of() : List.copyOf(augment);
    for (String a : augment) {
      check(AUGMENTATIONS.contains(a), "augment", "'" + a + "' is not an augmentation; allowed: colour, translation, cutout");
    }
    check(instanceNoise >= 0 && Double.isFinite(instanceNoise), "instanceNoise", "must be >= 0, got " + instanceNoise);
    check(instanceNoiseAnnealSteps >= 0, "instanceNoiseAnnealSteps", "must be >= 0, got " + instanceNoiseAnnealSteps);
    check(weightStd > 0 && weightStd < 1, "weightStd", "must be in (0, 1), got " + weightStd);
    check(generatorOptimizer != null, "generatorOptimizer", "section missing");
    check(discriminatorOptimizer != null, "discriminatorOptimizer", "section missing");
  }

  /** Whether D gets WGAN-GP's gradient penalty. */
  public boolean penalised() {
    return loss == GanLoss.WGAN_GP && gradientPenalty > 0;
  }
}
