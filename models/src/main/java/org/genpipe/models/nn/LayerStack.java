package org.genpipe.models.nn;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.nd4j.autodiff.samediff.SDIndex;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.layers.convolution.config.DeConv2DConfig;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A feed-forward network as a list of layers (conv, batch norm, leaky ReLU, dropout, flatten, dense)
 * that can be applied to several inputs of one graph with shared weights, and that writes its own
 * input gradient as graph ops: the gradient penalty of WGAN-GP differentiates a norm of that
 * gradient with respect to the weights, a second-order derivative that SameDiff cannot build from
 * its own gradient graph. The input gradient of a conv is the transposed conv with the same
 * weights, of leaky ReLU the slope mask (from a comparison, so it carries no gradient itself), of
 * dropout the same mask, of dense the transposed weights. Batch norm mixes the examples of a batch,
 * which a per-example penalty must not, so it has no input gradient here.
 *
 * <p>Dropout masks are placeholders drawn in Java from the step's seed ({@link #dropoutMasks}):
 * ND4J's dropout ops have no derivative in M2.1, and Java noise is the same on every backend.
 */
public final class LayerStack {
  private final List<Layer> layers = new ArrayList<>();
  private final long[] inputShape;

  /** @param inputShape one example's shape, e.g. {C, H, W} */
  public LayerStack(long... inputShape) {
    this.inputShape = inputShape.clone();
  }

  private long[] shape() {
    return layers.isEmpty() ? inputShape : layers.get(layers.size() - 1).outShape();
  }

  /** Conv2d k x k, stride s, padding p (weights YXIO), without a bias when {@code bias} is false. */
  public LayerStack conv(String name, int out, int k, int s, int p, boolean bias) {
    long[] in = shape();
    long size = (in[1] + 2L * p - k) / s + 1;
    long rest = (in[1] + 2L * p - k) % s;
    if (rest > p) {
      throw new IllegalArgumentException(name + ": input size " + in[1] + " leaves " + rest
          + " rows unread, more than the padding; the input gradient would need extra zeros");
    }
    layers.add(new Conv(name, (int) in[0], out, k, s, p, bias, in[1], new long[] {out, size, size}));
    return this;
  }

  public LayerStack batchNorm(String name) {
    long[] in = shape();
    layers.add(new Norm(name, (int) in[0], in.length == 3 ? in[1] * in[2] : 0, in));
    return this;
  }

  /** Instance norm ({@link Layers#instanceNorm}): per example, so it needs no running statistics. */
  public LayerStack instanceNorm() {
    layers.add(new InstanceNorm(shape()));
    return this;
  }

  public LayerStack leakyRelu(double slope) {
    layers.add(new Leaky(slope, shape()));
    return this;
  }

  /** Inverted dropout: zero with probability {@code rate}, else scale by 1 / (1 - rate). */
  public LayerStack dropout(double rate) {
    if (rate > 0) {
      layers.add(new Dropout(rate, shape(), layers.size()));
    }
    return this;
  }

  public LayerStack flatten() {
    long[] in = shape();
    long n = 1;
    for (long d : in) {
      n *= d;
    }
    layers.add(new Flatten(in, new long[] {n}));
    return this;
  }

  public LayerStack dense(String name, int out) {
    long[] in = shape();
    if (in.length != 1) {
      throw new IllegalArgumentException(name + ": dense needs a flat input, got " + java.util.Arrays.toString(in));
    }
    layers.add(new Dense(name, (int) in[0], out, new long[] {out}));
    return this;
  }

  /** Output shape of one example. */
  public long[] outputShape() {
    return shape().clone();
  }

  /**
   * The receptive field of one output position, in input pixels: 1 + sum over conv layers of
   * (kernel - 1) times the product of the strides before it.
   */
  public long receptiveField() {
    long field = 1;
    long jump = 1;
    for (Layer layer : layers) {
      if (layer instanceof Conv c) {
        field += (c.k() - 1L) * jump;
        jump *= c.s();
      }
    }
    return field;
  }

  /** Whether {@link Applied#inputGradient} can be built (no normalisation layer). */
  public boolean hasInputGradient() {
    return layers.stream().noneMatch(l -> l instanceof Norm || l instanceof InstanceNorm);
  }

  /**
   * Applies the stack to {@code x}; {@code tag} names this application's dropout placeholders.
   * Batch norm always uses the batch statistics (a discriminator is only run in training mode).
   */
  public Applied apply(Layers l, SDVariable x, String tag) {
    SameDiff sd = l.sd();
    List<SDVariable> inputs = new ArrayList<>();
    List<SDVariable> masks = new ArrayList<>();
    SDVariable h = x;
    for (Layer layer : layers) {
      inputs.add(h);
      if (layer instanceof Dropout d) {
        long[] ms = new long[d.shape.length + 1];
        ms[0] = -1;
        System.arraycopy(d.shape, 0, ms, 1, d.shape.length);
        SDVariable mask = sd.placeHolder(tag + "/dropout" + d.index, DataType.FLOAT, ms);
        masks.add(mask);
        h = h.mul(mask);
      } else {
        h = layer.forward(l, h);
      }
    }
    return new Applied(l, h, inputs, masks);
  }

  /** One application: its output, and what its input gradient needs. */
  public final class Applied {
    private final Layers l;
    private final SDVariable output;
    private final List<SDVariable> inputs;
    private final List<SDVariable> masks;

    Applied(Layers l, SDVariable output, List<SDVariable> inputs, List<SDVariable> masks) {
      this.l = l;
      this.output = output;
      this.inputs = inputs;
      this.masks = masks;
    }

    public SDVariable output() {
      return output;
    }

    /** Names and per-example shapes of this application's dropout placeholders. */
    public List<SDVariable> dropoutPlaceholders() {
      return masks;
    }

    /** d(sum(output * dOut)) / d(input), as graph ops that are themselves differentiable. */
    public SDVariable inputGradient(SDVariable dOut) {
      if (!hasInputGradient()) {
        throw new IllegalStateException("no input gradient through batch norm (it mixes the examples of a batch)");
      }
      SDVariable g = dOut;
      int mask = masks.size() - 1;
      for (int i = layers.size() - 1; i >= 0; i--) {
        Layer layer = layers.get(i);
        g = layer instanceof Dropout ? g.mul(masks.get(mask--)) : layer.inputGradient(l, inputs.get(i), g);
      }
      return g;
    }
  }

  /**
   * Dropout masks for one application of {@code n} examples, drawn from {@code seed}: values 0 or
   * 1 / (1 - rate), by name of placeholder.
   */
  public Map<String, INDArray> dropoutMasks(Applied applied, int n, long seed) {
    Map<String, INDArray> out = new LinkedHashMap<>();
    SplittableRandom r = new SplittableRandom(seed);
    int m = 0;
    for (Layer layer : layers) {
      if (layer instanceof Dropout d) {
        long per = 1;
        for (long s : d.shape) {
          per *= s;
        }
        float[] v = new float[Math.toIntExact(per * n)];
        float keep = (float) (1.0 / (1.0 - d.rate));
        if (d.rate == 0.5) {
          // one bit per value: 64 values per random draw
          for (int i = 0; i < v.length; i += 64) {
            long bits = r.nextLong();
            for (int b = 0; b < 64 && i + b < v.length; b++) {
              v[i + b] = ((bits >>> b) & 1L) == 0 ? 0f : keep;
            }
          }
        } else {
          for (int i = 0; i < v.length; i++) {
            v[i] = r.nextDouble() < d.rate ? 0f : keep;
          }
        }
        long[] shape = new long[d.shape.length + 1];
        shape[0] = n;
        System.arraycopy(d.shape, 0, shape, 1, d.shape.length);
        out.put(applied.masks.get(m++).name(), Nd4j.create(v, shape, 'c'));
      }
    }
    return out;
  }

  private interface Layer {
    long[] outShape();

    SDVariable forward(Layers l, SDVariable x);

    SDVariable inputGradient(Layers l, SDVariable x, SDVariable dy);
  }

  private record Conv(String name, int in, int out, int k, int s, int p, boolean bias, long inSize, long[] outShape)
      implements Layer {
    @Override
    public SDVariable forward(Layers l, SDVariable x) {
      return l.conv2d(name, x, in, out, k, s, p, bias);
    }

    @Override
    public SDVariable inputGradient(Layers l, SDVariable x, SDVariable dy) {
      SDVariable w = l.sd().getVariable(name + "/W"); // [k, k, in, out]: a transposed conv out -> in
      DeConv2DConfig c = DeConv2DConfig.builder().kH(k).kW(k).sH(s).sW(s).pH(0).pW(0).isSameMode(false)
          .dataFormat("NCHW").build();
      SDVariable full = l.sd().cnn().deconv2d(dy, w, c);
      return full.get(SDIndex.all(), SDIndex.all(), SDIndex.interval((long) p, p + inSize),
          SDIndex.interval((long) p, p + inSize));
    }
  }

  private record Norm(String name, int channels, long spatial, long[] outShape) implements Layer {
    @Override
    public SDVariable forward(Layers l, SDVariable x) {
      return l.batchNorm(name, x, channels, spatial, true);
    }

    @Override
    public SDVariable inputGradient(Layers l, SDVariable x, SDVariable dy) {
      throw new IllegalStateException("no input gradient through batch norm " + name);
    }
  }

  private record InstanceNorm(long[] outShape) implements Layer {
    @Override
    public SDVariable forward(Layers l, SDVariable x) {
      return l.instanceNorm(x);
    }

    @Override
    public SDVariable inputGradient(Layers l, SDVariable x, SDVariable dy) {
      throw new IllegalStateException("no input gradient through instance norm");
    }
  }

  private record Leaky(double slope, long[] outShape) implements Layer {
    @Override
    public SDVariable forward(Layers l, SDVariable x) {
      return FastGrad.leakyRelu(l.sd(), x, slope);
    }

    @Override
    public SDVariable inputGradient(Layers l, SDVariable x, SDVariable dy) {
      // 1 where x > 0, slope elsewhere; a boolean cast to float: no gradient flows into the mask
      SDVariable positive = l.sd().gt(x, 0.0).castTo(DataType.FLOAT);
      return dy.mul(positive.mul(1.0 - slope).add(slope));
    }
  }

  private record Dropout(double rate, long[] shape, int index) implements Layer {
    @Override
    public long[] outShape() {
      return shape;
    }

    @Override
    public SDVariable forward(Layers l, SDVariable x) {
      throw new IllegalStateException("applied with its mask placeholder");
    }

    @Override
    public SDVariable inputGradient(Layers l, SDVariable x, SDVariable dy) {
      throw new IllegalStateException("applied with its mask placeholder");
    }
  }

  private record Flatten(long[] inShape, long[] outShape) implements Layer {
    @Override
    public SDVariable forward(Layers l, SDVariable x) {
      return x.reshape(-1, outShape[0]);
    }

    @Override
    public SDVariable inputGradient(Layers l, SDVariable x, SDVariable dy) {
      long[] s = new long[inShape.length + 1];
      s[0] = -1;
      System.arraycopy(inShape, 0, s, 1, inShape.length);
      return dy.reshape(s);
    }
  }

  private record Dense(String name, int in, int out, long[] outShape) implements Layer {
    @Override
    public SDVariable forward(Layers l, SDVariable x) {
      return l.dense(name, x, in, out);
    }

    @Override
    public SDVariable inputGradient(Layers l, SDVariable x, SDVariable dy) {
      return dy.mmul(l.sd().transpose(l.sd().getVariable(name + "/W")));
    }
  }
}
