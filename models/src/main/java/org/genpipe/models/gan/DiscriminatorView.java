package org.genpipe.models.gan;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.genpipe.models.nn.FastGrad;
import org.genpipe.models.nn.Noise;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * How D sees a batch of images, real and generated alike: differentiable augmentation (DiffAugment:
 * colour, translation, cutout, in that order) then instance noise. Every transform is graph ops on
 * the images with per-example parameters fed as placeholders, so G's gradient flows through them;
 * the parameters are drawn in Java from the step's seed ({@link #draw}).
 *
 * <ul>
 *   <li>colour: brightness + U(-0.5, 0.5); saturation (x - channel mean) * U(0, 2) + mean; contrast
 *       (x - image mean) * U(0.5, 1.5) + mean (images in [-1, 1]).
 *   <li>translation: integer shifts in [-H/8, H/8] per axis, zero filled, as batched products with
 *       shift matrices.
 *   <li>cutout: a zeroed square of half the image size at a random centre (clipped at the border).
 *   <li>instance noise: + N(0, std^2) per pixel, std annealed linearly to 0 over {@code annealSteps}
 *       steps when that is > 0.
 * </ul>
 */
public final class DiscriminatorView {
  private final List<String> policy;
  private final double noiseStd;
  private final long annealSteps;
  private final int channels;
  private final int height;
  private final int width;

  public DiscriminatorView(List<String> policy, double noiseStd, long annealSteps, int channels, int height, int width) {
    this.policy = List.copyOf(policy);
    this.noiseStd = noiseStd;
    this.annealSteps = annealSteps;
    this.channels = channels;
    this.height = height;
    this.width = width;
  }

  /** Whether the view changes anything. */
  public boolean active() {
    return !policy.isEmpty() || noiseStd > 0;
  }

  /** Instance-noise std at {@code step}. */
  public double noiseStd(long step) {
    if (annealSteps <= 0) {
      return noiseStd;
    }
    return noiseStd * Math.max(0.0, 1.0 - (double) step / annealSteps);
  }

  /** Applies the view to images x [N, C, H, W]; {@code tag} names this application's placeholders. */
  public SDVariable apply(SameDiff sd, SDVariable x, String tag) {
    SDVariable h = x;
    for (String p : policy) {
      switch (p) {
        case "colour", "color" -> {
          SDVariable b = sd.placeHolder(tag + "/brightness", DataType.FLOAT, -1, 1, 1, 1);
          h = FastGrad.channelAdd(sd, h, b, 1, 2, 3);
          SDVariable s = sd.placeHolder(tag + "/saturation", DataType.FLOAT, -1, 1, 1, 1);
          SDVariable m = h.mean(true, 1);
          h = FastGrad.channelAdd(sd, FastGrad.channelMul(sd, FastGrad.channelAdd(sd, h, m.neg(), 1), s, 1, 2, 3), m, 1);
          SDVariable c = sd.placeHolder(tag + "/contrast", DataType.FLOAT, -1, 1, 1, 1);
          SDVariable mean = h.mean(true, 1, 2, 3);
          h = FastGrad.channelAdd(sd,
              FastGrad.channelMul(sd, FastGrad.channelAdd(sd, h, mean.neg(), 1, 2, 3), c, 1, 2, 3), mean, 1, 2, 3);
        }
        case "translation" -> {
          // columns: [N, C*H, W] x [N, W, W]; rows: [N, C*W, H] x [N, H, H] on the transposed image
          SDVariable tx = sd.placeHolder(tag + "/shiftX", DataType.FLOAT, -1, width, width);
          SDVariable ty = sd.placeHolder(tag + "/shiftY", DataType.FLOAT, -1, height, height);
          h = h.reshape(-1, (long) channels * height, width).mmul(tx).reshape(-1, channels, height, width);
          h = h.permute(0, 1, 3, 2).reshape(-1, (long) channels * width, height).mmul(ty)
              .reshape(-1, channels, width, height).permute(0, 1, 3, 2);
        }
        case "cutout" -> {
          SDVariable mask = sd.placeHolder(tag + "/cutout", DataType.FLOAT, -1, 1, height, width);
          h = FastGrad.channelMul(sd, h, mask, 1);
        }
        default -> throw new IllegalArgumentException("unknown augmentation '" + p + "'");
      }
    }
    if (noiseStd > 0) {
      h = h.add(sd.placeHolder(tag + "/noise", DataType.FLOAT, -1, channels, height, width));
    }
    return h;
  }

  /** The placeholders of one application {@code tag} for {@code n} images at {@code step}. */
  public Map<String, INDArray> draw(String tag, int n, long step, long seed) {
    Map<String, INDArray> out = new LinkedHashMap<>();
    SplittableRandom r = new SplittableRandom(seed);
    for (String p : policy) {
      switch (p) {
        case "colour", "color" -> {
          out.put(tag + "/brightness", perExample(r, n, -0.5, 0.5));
          out.put(tag + "/saturation", perExample(r, n, 0.0, 2.0));
          out.put(tag + "/contrast", perExample(r, n, 0.5, 1.5));
        }
        case "translation" -> {
          int sx = (int) (width * 0.125 + 0.5);
          int sy = (int) (height * 0.125 + 0.5);
          float[] mx = new float[n * width * width];
          float[] my = new float[n * height * height];
          for (int i = 0; i < n; i++) {
            shiftMatrix(mx, i, width, r.nextInt(-sx, sx + 1));
            shiftMatrix(my, i, height, r.nextInt(-sy, sy + 1));
          }
          out.put(tag + "/shiftX", Nd4j.create(mx, new long[] {n, width, width}, 'c'));
          out.put(tag + "/shiftY", Nd4j.create(my, new long[] {n, height, height}, 'c'));
        }
        case "cutout" -> {
          int ch = (int) (height * 0.5 + 0.5);
          int cw = (int) (width * 0.5 + 0.5);
          float[] m = new float[n * height * width];
          java.util.Arrays.fill(m, 1f);
          for (int i = 0; i < n; i++) {
            // the square's top-left corner, as DiffAugment: centre uniform over the image
            int y0 = r.nextInt(height + (1 - ch % 2)) - ch / 2;
            int x0 = r.nextInt(width + (1 - cw % 2)) - cw / 2;
            for (int y = Math.max(0, y0); y < Math.min(height, y0 + ch); y++) {
              for (int x = Math.max(0, x0); x < Math.min(width, x0 + cw); x++) {
                m[(i * height + y) * width + x] = 0f;
              }
            }
          }
          out.put(tag + "/cutout", Nd4j.create(m, new long[] {n, 1, height, width}, 'c'));
        }
        default -> throw new IllegalArgumentException("unknown augmentation '" + p + "'");
      }
    }
    if (noiseStd > 0) {
      out.put(tag + "/noise", Noise.gaussian(r.nextLong(), n, channels, height, width).muli(noiseStd(step)));
    }
    return out;
  }

  /** out[i] = M x with x a row vector: out[j] = in[j - shift] (0 outside), i.e. M[j - shift][j] = 1. */
  private static void shiftMatrix(float[] m, int i, int size, int shift) {
    int base = i * size * size;
    for (int j = 0; j < size; j++) {
      int src = j - shift;
      if (src >= 0 && src < size) {
        m[base + src * size + j] = 1f;
      }
    }
  }

  private static INDArray perExample(SplittableRandom r, int n, double lo, double hi) {
    return Nd4j.create(Noise.uniform(r, n, lo, hi), new long[] {n, 1, 1, 1}, 'c');
  }
}
