package org.genpipe.models.gan;

import org.genpipe.common.io.BadInputException;
import org.genpipe.common.records.ImageShape;
import org.genpipe.models.nn.LayerStack;
import org.genpipe.models.nn.Layers;
import org.nd4j.autodiff.samediff.SDVariable;

/**
 * DCGAN (Radford et al.) for 32x32 images, and its class-conditional variant CGAN (Mirza and
 * Osindero: the label enters G's input and D's input). All-convolutional, no pooling, batch norm
 * everywhere but G's output and D's input, ReLU in G with a tanh output, LeakyReLU(0.2) in D,
 * weights N(0, 0.02). With base width w (64 by default):
 *
 * <pre>
 * G  project z (+ one-hot y) -> 4w x 4 x 4 (dense), BN, ReLU
 *    | ConvT 4w->2w k4 s2 p1 (4->8), BN, ReLU | ConvT 2w->w k4 s2 p1 (8->16), BN, ReLU
 *    | ConvT w->C k4 s2 p1 (16->32), tanh
 * D  Conv C (+ K label planes)->w k4 s2 p1 (32->16), LReLU | Conv w->2w (16->8), BN, LReLU
 *    | Conv 2w->4w (8->4), BN, LReLU | flatten 16*4w | dense -> 1 logit
 * </pre>
 *
 * Layers followed by batch norm have no bias (batch norm cancels it). {@code discriminatorNorm: none}
 * drops D's batch norm (WGAN-GP); {@code dropout} adds dropout after D's activations.
 */
public final class Dcgan implements Gan.Architecture {
  public static final String NAME = "dcgan";
  public static final String CONDITIONAL_NAME = "cgan";

  private final boolean conditional;
  private final int width;
  private final int latent;
  private final int classes;
  private final ImageShape shape;
  private final boolean dNorm;
  private final double dropout;

  public Dcgan(boolean conditional, GanSettings s, ImageShape shape, int classes) {
    checkShape(shape, conditional ? CONDITIONAL_NAME : NAME);
    this.conditional = conditional;
    this.width = s.width();
    this.latent = s.latentSize();
    this.classes = conditional ? classes : 0;
    this.shape = shape;
    this.dNorm = "batch".equals(s.discriminatorNorm());
    this.dropout = s.dropout() == null ? 0.0 : s.dropout();
  }

  /** The GAN models read 32x32 images with 1 or 3 channels (CIFAR-10). */
  static void checkShape(ImageShape shape, String model) {
    if (shape.height() != 32 || shape.width() != 32 || (shape.channels() != 1 && shape.channels() != 3)) {
      throw new BadInputException(model + " reads 32x32 images with 1 or 3 channels (CIFAR-10); the records have "
          + shape.height() + "x" + shape.width() + "x" + shape.channels());
    }
  }

  @Override
  public String name() {
    return conditional ? CONDITIONAL_NAME : NAME;
  }

  @Override
  public Gan.Conditioning conditioning() {
    return conditional ? Gan.Conditioning.INPUT : Gan.Conditioning.NONE;
  }

  @Override
  public SDVariable generator(Layers l, SDVariable input, boolean training) {
    int w4 = 4 * width;
    SDVariable h = l.dense("G/project", input, latent + classes, w4 * 16).reshape(-1, w4, 4, 4);
    h = relu(l, l.batchNorm("G/project/bn", h, w4, 16, training));
    h = l.deconv2d("G/up1", h, w4, 2 * width, 4, 2, 1, 0, 4, false);
    h = relu(l, l.batchNorm("G/up1/bn", h, 2 * width, 64, training));
    h = l.deconv2d("G/up2", h, 2 * width, width, 4, 2, 1, 0, 8, false);
    h = relu(l, l.batchNorm("G/up2/bn", h, width, 256, training));
    return l.sd().math().tanh(l.deconv2d("G/out", h, width, shape.channels(), 4, 2, 1, 0, 16, true));
  }

  private static SDVariable relu(Layers l, SDVariable x) {
    return org.genpipe.models.nn.FastGrad.relu(l.sd(), x);
  }

  @Override
  public LayerStack discriminator() {
    LayerStack d = new LayerStack(shape.channels() + classes, shape.height(), shape.width());
    d.conv("D/conv1", width, 4, 2, 1, true).leakyRelu(0.2).dropout(dropout);
    d.conv("D/conv2", 2 * width, 4, 2, 1, !dNorm);
    if (dNorm) {
      d.batchNorm("D/conv2/bn");
    }
    d.leakyRelu(0.2).dropout(dropout);
    d.conv("D/conv3", 4 * width, 4, 2, 1, !dNorm);
    if (dNorm) {
      d.batchNorm("D/conv3/bn");
    }
    d.leakyRelu(0.2).dropout(dropout);
    return d.flatten().dense("D/out", 1);
  }
}
