package org.genpipe.models.pix2pix;

import static org.genpipe.common.config.ConfigException.check;

import java.io.Serializable;
import java.util.List;
import org.genpipe.models.gan.GanLoss;
import org.genpipe.models.nn.OptimizerSettings;

/**
 * Config section {@code model.pix2pix}.
 *
 * @param size image side the networks work at (256, 128 or 64; the records must have it): the
 *     U-Net has log2(size) levels, down to 1x1
 * @param direction labels-to-photo (the records' label map in, photo out) or photo-to-labels
 * @param generatorWidth channels of G's first layer (ngf, 64 in the paper); deeper layers 2x, 4x, 8x at most
 * @param discriminatorWidth channels of D's first layer (ndf, 64)
 * @param discriminator pixel (1x1), patch16, patch70 (default) or image (286x286 receptive field at 256)
 * @param norm batch or instance (no running statistics; with batch size 1 the paper's setup)
 * @param loss the adversarial loss (non-saturating = the reference's BCE; minimax, least-squares, hinge)
 * @param l1Weight lambda of the L1 term of G's loss (100 in the paper)
 * @param dropout dropout after the first three decoder blocks of G, at training and sampling time (0.5)
 * @param jitter random jitter of every training pair: resize to 286/256 of the size, random crop back, random flip
 * @param weightStd weights drawn from N(0, weightStd), biases 0
 * @param decayStart updates at the constant learning rate before it falls (e.g. half of train.steps)
 * @param decaySteps updates over which the learning rate then falls linearly to 0 (0 = constant rate)
 * @param generatorOptimizer G's optimizer
 * @param discriminatorOptimizer D's optimizer
 */
public record Pix2PixSettings(
    int size,
    String direction,
    int generatorWidth,
    int discriminatorWidth,
    String discriminator,
    String norm,
    GanLoss loss,
    double l1Weight,
    double dropout,
    boolean jitter,
    double weightStd,
    long decayStart,
    long decaySteps,
    OptimizerSettings generatorOptimizer,
    OptimizerSettings discriminatorOptimizer)
    implements Serializable {
  public static final String LABELS_TO_PHOTO = "labels-to-photo";
  public static final String PHOTO_TO_LABELS = "photo-to-labels";
  public static final List<String> DISCRIMINATORS = List.of("pixel", "patch16", "patch70", "image");

  public Pix2PixSettings {
    check(size == 64 || size == 128 || size == 256, "size", "must be 64, 128 or 256, got " + size);
    check(LABELS_TO_PHOTO.equals(direction) || PHOTO_TO_LABELS.equals(direction), "direction",
        "'" + direction + "' is not allowed; allowed: " + LABELS_TO_PHOTO + ", " + PHOTO_TO_LABELS);
    check(generatorWidth >= 1 && generatorWidth <= 512, "generatorWidth", "must be in 1..512, got " + generatorWidth);
    check(discriminatorWidth >= 1 && discriminatorWidth <= 512, "discriminatorWidth",
        "must be in 1..512, got " + discriminatorWidth);
    check(DISCRIMINATORS.contains(discriminator), "discriminator",
        "'" + discriminator + "' is not allowed; allowed: " + String.join(", ", DISCRIMINATORS));
    check("batch".equals(norm) || "instance".equals(norm), "norm", "'" + norm + "' is not allowed; allowed: batch, instance");
    check(loss != null && loss != GanLoss.WGAN_GP, "loss",
        (loss == null ? "missing" : "wgan-gp is not offered for pix2pix (its penalty needs D without normalisation)")
            + "; allowed: minimax, non-saturating, least-squares, hinge");
    check(l1Weight >= 0 && Double.isFinite(l1Weight), "l1Weight", "must be >= 0, got " + l1Weight);
    check(dropout >= 0 && dropout < 1, "dropout", "must be in [0, 1), got " + dropout);
    check(weightStd > 0 && weightStd < 1, "weightStd", "must be in (0, 1), got " + weightStd);
    check(decayStart >= 0, "decayStart", "must be >= 0, got " + decayStart);
    check(decaySteps >= 0, "decaySteps", "must be >= 0, got " + decaySteps);
    check(generatorOptimizer != null, "generatorOptimizer", "section missing");
    check(discriminatorOptimizer != null, "discriminatorOptimizer", "section missing");
  }

  /** Whether the records' label map is the input (else the photo is). */
  public boolean labelsToPhoto() {
    return LABELS_TO_PHOTO.equals(direction);
  }

  /** Number of stride-2 layers of the PatchGAN (0 for the pixel discriminator). */
  int discriminatorLayers() {
    return switch (discriminator) {
      case "pixel" -> 0;
      case "patch16" -> 1;
      case "patch70" -> 3;
      default -> 5;
    };
  }
}
