package org.genpipe.models.gan;

import org.genpipe.common.records.ImageShape;
import org.genpipe.models.nn.FastGrad;
import org.genpipe.models.nn.LayerStack;
import org.genpipe.models.nn.Layers;
import org.nd4j.autodiff.samediff.SDVariable;

/**
 * AC-GAN (Odena et al.) for CIFAR-10, the layer table of MISSION.md:
 *
 * <pre>
 * G  input 110 (100 noise + 10 one-hot class) | Linear -> 384 x 4 x 4, ReLU
 *    | ConvT 5x5 s2 -> 192 (8x8), BN, ReLU | ConvT 5x5 s2 -> 96 (16x16), BN, ReLU
 *    | ConvT 5x5 s2 -> 3 (32x32), tanh
 * D  Conv 3x3 s2 -> 16 (16x16), LReLU(0.2), dropout        (no BN)
 *    | Conv 3x3 s1 -> 32 | s2 -> 64 (8x8) | s1 -> 128 | s2 -> 256 (4x4) | s1 -> 512,
 *      each BN, LReLU(0.2), dropout 0.5
 *    | Linear 8192 -> 11 (1 source logit + 10 class logits)
 * </pre>
 *
 * The linear layer's 384 channels start at 4x4, the size from which three stride-2 transposed
 * convs reach 32x32; the transposed convs pad 2 with output padding 1 ("same"), the convs pad 1.
 * The noise size and class count come from the config and the records (100 and 10 for CIFAR-10).
 */
public final class Acgan implements Gan.Architecture {
  public static final String NAME = "acgan";
  private static final int[] D_CHANNELS = {16, 32, 64, 128, 256, 512};
  private static final int[] D_STRIDES = {2, 1, 2, 1, 2, 1};

  private final int latent;
  private final int classes;
  private final ImageShape shape;
  private final double dropout;

  public Acgan(GanSettings s, ImageShape shape, int classes) {
    Dcgan.checkShape(shape, NAME);
    this.latent = s.latentSize();
    this.classes = classes;
    this.shape = shape;
    this.dropout = s.dropout() == null ? 0.5 : s.dropout();
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public Gan.Conditioning conditioning() {
    return Gan.Conditioning.AUXILIARY;
  }

  @Override
  public SDVariable generator(Layers l, SDVariable input, boolean training) {
    SDVariable h = FastGrad.relu(l.sd(), l.dense("G/fc", input, latent + classes, 384 * 16)).reshape(-1, 384, 4, 4);
    h = l.deconv2d("G/up1", h, 384, 192, 5, 2, 2, 1, 4, false);
    h = FastGrad.relu(l.sd(), l.batchNorm("G/up1/bn", h, 192, 64, training));
    h = l.deconv2d("G/up2", h, 192, 96, 5, 2, 2, 1, 8, false);
    h = FastGrad.relu(l.sd(), l.batchNorm("G/up2/bn", h, 96, 256, training));
    return l.sd().math().tanh(l.deconv2d("G/out", h, 96, shape.channels(), 5, 2, 2, 1, 16, true));
  }

  @Override
  public LayerStack discriminator() {
    LayerStack d = new LayerStack(shape.channels(), shape.height(), shape.width());
    for (int i = 0; i < D_CHANNELS.length; i++) {
      String name = "D/conv" + (i + 1);
      d.conv(name, D_CHANNELS[i], 3, D_STRIDES[i], 1, i == 0);
      if (i > 0) {
        d.batchNorm(name + "/bn");
      }
      d.leakyRelu(0.2).dropout(dropout);
    }
    return d.flatten().dense("D/out", 1 + classes);
  }
}
