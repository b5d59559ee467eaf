package org.genpipe.models.nn;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.genpipe.models.ModelState;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.layers.convolution.config.Conv2DConfig;
import org.nd4j.linalg.api.ops.impl.layers.convolution.config.DeConv2DConfig;
import org.nd4j.linalg.api.ops.impl.layers.convolution.config.PaddingMode;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Builds network layers into a SameDiff graph (NCHW activations, PyTorch layer semantics) and
 * records what the model must carry: the trainable parameters in creation order, and the batch-norm
 * layers with their running statistics.
 *
 * <p>Parameters are created once per name: calling a layer again with the same name reuses its
 * weights (e.g. the training graph and the inference graph of one network). Batch norm is written
 * from mean and variance ops (ND4J's batchNorm op has no working backward in M2.1).
 */
public final class Layers implements StateMemory {
  /** Epsilon inside the square root of batch, group and instance norm (PyTorch's default). */
  static final double BN_EPS = 1e-5;
  private static final double BN_MOMENTUM = 0.1;

  private final SameDiff sd;
  private final SplittableRandom init;
  private final List<String> params = new ArrayList<>();
  private final Map<String, BatchNorm> batchNorms = new LinkedHashMap<>();
  private final Map<String, long[]> external = new LinkedHashMap<>();
  private double weightStd;

  /** @param seed seed of the initial weights */
  public Layers(SameDiff sd, long seed) {
    this.sd = sd;
    this.init = new SplittableRandom(seed);
  }

  public SameDiff sd() {
    return sd;
  }

  /**
   * Weights of conv, transposed conv and dense layers drawn from N(0, std) and biases 0 (DCGAN's
   * initialisation) instead of PyTorch's default uniform; 0 restores the default.
   */
  public Layers normalInit(double std) {
    this.weightStd = std;
    return this;
  }

  /**
   * Makes the parameters of another network (same names, e.g. D's in the graph of G's update)
   * placeholders of this graph instead of trainable variables: the caller feeds the other network's
   * current arrays. Batch norms whose scale is such a placeholder normalise with the batch
   * statistics and keep no running statistics here.
   */
  public Layers external(Net other) {
    for (String p : other.params()) {
      external.put(p, other.param(p).shape());
    }
    return this;
  }

  /** The parameter of that name if this graph has it, a placeholder if it is another network's, else null. */
  private SDVariable existing(String name) {
    if (sd.hasVariable(name)) {
      return sd.getVariable(name);
    }
    return external.containsKey(name) ? sd.placeHolder(name, DataType.FLOAT, external.get(name)) : null;
  }

  /** Parameter names created since the last call, in creation order (one network's parameters). */
  public List<String> takeParams() {
    List<String> out = List.copyOf(params);
    params.clear();
    return out;
  }

  /** A trainable array initialised uniform(-bound, bound), or the existing one of that name. */
  public SDVariable uniformParam(String name, double bound, long... shape) {
    SDVariable existing = existing(name);
    if (existing != null) {
      return existing;
    }
    float[] v = Noise.uniform(init, (int) count(shape), -bound, bound);
    params.add(name);
    return sd.var(name, Nd4j.create(v, shape, 'c'));
  }

  /** A trainable array initialised N(0, std), or the existing one of that name. */
  public SDVariable normalParam(String name, double std, long... shape) {
    SDVariable existing = existing(name);
    if (existing != null) {
      return existing;
    }
    INDArray v = Noise.gaussian(init.nextLong(), shape).muli(std);
    params.add(name);
    return sd.var(name, v);
  }

  /** A trainable array filled with {@code value}. */
  public SDVariable constantParam(String name, double value, long... shape) {
    SDVariable existing = existing(name);
    if (existing != null) {
      return existing;
    }
    params.add(name);
    return sd.var(name, Nd4j.valueArrayOf(shape, (float) value, DataType.FLOAT));
  }

  /** Conv2d like PyTorch's (padding p on every side), weights YXIO, with a bias. */
  public SDVariable conv2d(String name, SDVariable x, int in, int out, int k, int s, int p) {
    return conv2d(name, x, in, out, k, s, p, true);
  }

  /**
   * Conv2d like PyTorch's (padding p on every side), weights YXIO [k, k, in, out]; {@code bias}
   * false for a layer followed by batch norm (which cancels a bias).
   */
  public SDVariable conv2d(String name, SDVariable x, int in, int out, int k, int s, int p, boolean bias) {
    double bound = 1.0 / Math.sqrt((double) in * k * k);
    SDVariable w = weight(name + "/W", bound, k, k, in, out);
    Conv2DConfig c =
        Conv2DConfig.builder().kH(k).kW(k).sH(s).sW(s).pH(p).pW(p).paddingMode(PaddingMode.VALID).dataFormat("NCHW").build();
    return bias ? sd.cnn().conv2d(x, w, biasParam(name + "/b", bound, out), c) : sd.cnn().conv2d(x, w, c);
  }

  private SDVariable weight(String name, double bound, long... shape) {
    return weightStd > 0 ? normalParam(name, weightStd, shape) : uniformParam(name, bound, shape);
  }

  private SDVariable biasParam(String name, double bound, long... shape) {
    return weightStd > 0 ? constantParam(name, 0.0, shape) : uniformParam(name, bound, shape);
  }

  /**
   * ConvTranspose2d like PyTorch's: the full transposed convolution, then {@code p} cropped at the
   * start and {@code p - outputPadding} at the end of each spatial axis. Out size: (in-1)*s - 2p + k + op.
   */
  public SDVariable deconv2d(
      String name, SDVariable x, int in, int out, int k, int s, int p, int outputPadding, long inSize) {
    return deconv2d(name, x, in, out, k, s, p, outputPadding, inSize, true);
  }

  /** {@link #deconv2d(String, SDVariable, int, int, int, int, int, int, long)}, optionally without bias. */
  public SDVariable deconv2d(String name, SDVariable x, int in, int out, int k, int s, int p, int outputPadding,
      long inSize, boolean bias) {
    double bound = 1.0 / Math.sqrt((double) out * k * k);
    SDVariable w = weight(name + "/W", bound, k, k, out, in);
    DeConv2DConfig c =
        DeConv2DConfig.builder().kH(k).kW(k).sH(s).sW(s).pH(0).pW(0).isSameMode(false).dataFormat("NCHW").build();
    SDVariable y = sd.cnn().deconv2d(x, w, c);
    if (p != 0 || outputPadding != 0) {
      long fullSize = (inSize - 1) * s + k;
      long end = fullSize - p + outputPadding;
      if (end > fullSize) {
        throw new IllegalArgumentException(name + ": output padding must be < padding here (crop only)");
      }
      y = FastGrad.crop(sd, y, p, end - p, fullSize);
    }
    if (!bias) {
      return y;
    }
    // the bias is added here, not by deconv2d: its bias add is 2-5x the cost of the whole
    // transposed convolution in ND4J M2.1 (e.g. 8->1 channels, 14->28: 2.2 ms with, 0.43 ms without)
    return FastGrad.channelAdd(sd, y, biasParam(name + "/b", bound, 1, out, 1, 1), 0, 2, 3);
  }

  /** Linear layer x [N, in] -> [N, out], uniform init like PyTorch's. */
  public SDVariable dense(String name, SDVariable x, int in, int out) {
    double bound = 1.0 / Math.sqrt(in);
    SDVariable w = weight(name + "/W", bound, in, out);
    SDVariable b = biasParam(name + "/b", bound, out);
    // not sd.nn().linear (xw_plus_b): with it a model restored from its state does not continue
    // exactly as the original (seen in M2.1 with the GAN test, TinyGanTest)
    return x.mmul(w).add(b);
  }

  /**
   * Batch norm over the channel axis of NCHW (or the feature axis of [N, F]) with learned scale and
   * shift, as PyTorch's: the training graph normalises with the batch statistics (biased variance)
   * and returns them so that {@link #updateRunningStats} can keep running statistics (momentum 0.1,
   * unbiased variance); the inference graph ({@code training = false}) normalises with the running
   * statistics, fed as placeholders by {@link #feedRunningStats}. Calls with the same name share the
   * scale and shift; a network applied to several batches in one training graph (a GAN's D on real
   * and on fake images) normalises each with its own statistics, and the first application's
   * statistics update the running ones.
   *
   * <p>Written as the centred input times one per-channel scale plus the shift (three broadcast
   * ops rather than normalise-then-scale's four), with {@link FastGrad}'s broadcast ops: ND4J's
   * broadcast backward kernels are the expensive part. Scale and shift are stored as [1, C, 1, 1]
   * (or [1, C]).
   *
   * @param spatialSize H*W of an NCHW input, or 0 for an [N, F] input
   */
  public SDVariable batchNorm(String name, SDVariable x, int channels, long spatialSize, boolean training) {
    boolean spatial = spatialSize > 0;
    long[] bshape = spatial ? new long[] {1, channels, 1, 1} : new long[] {1, channels};
    int[] axes = spatial ? new int[] {0, 2, 3} : new int[] {0};
    SDVariable gamma = constantParam(name + "/gamma", 1.0, bshape);
    SDVariable beta = constantParam(name + "/beta", 0.0, bshape);
    boolean own = !external.containsKey(name + "/gamma");
    if (!own && !training) {
      throw new IllegalStateException("batch norm " + name + " of another network has no running statistics here");
    }
    BatchNorm bn = own ? batchNorms.computeIfAbsent(name, n -> new BatchNorm(channels, Math.max(1, spatialSize), bshape))
        : null;
    if (training) {
      java.util.Set<String> before = NormRegions.names(sd);
      boolean record = own && bn.batchMean == null;
      SDVariable mean = record ? x.mean(name + "/batchMean", true, axes) : x.mean(true, axes);
      SDVariable centred = FastGrad.channelAdd(sd, x, mean.neg(), axes);
      SDVariable sq = centred.mul(centred);
      SDVariable var = record ? sq.mean(name + "/batchVar", true, axes) : sq.mean(true, axes);
      if (record) {
        bn.batchMean = mean.name();
        bn.batchVar = var.name();
      }
      SDVariable scale = gamma.mul(sd.math().rsqrt(var.add(BN_EPS)));
      SDVariable y = FastGrad.channelAdd(sd, FastGrad.channelMul(sd, centred, scale, axes), beta, axes);
      NormRegions.register(sd, before, 0, x, y, gamma, beta, record ? mean : null, record ? var : null);
      return y;
    }
    if (bn.runMean == null) {
      bn.runMean = sd.placeHolder(name + "/runMean", DataType.FLOAT, bshape);
      bn.runVar = sd.placeHolder(name + "/runVar", DataType.FLOAT, bshape);
    }
    SDVariable scale = gamma.mul(sd.math().rsqrt(bn.runVar.add(BN_EPS)));
    SDVariable shift = beta.sub(bn.runMean.mul(scale));
    return x.mul(scale).add(shift);
  }

  /**
   * Instance norm of NCHW activations: each example's channel planes normalised by their own mean
   * and (biased) variance, eps 1e-5, no learned scale or shift and no running statistics (PyTorch's
   * {@code InstanceNorm2d} defaults, as pix2pix uses it), so training and inference are the same.
   */
  public SDVariable instanceNorm(SDVariable x) {
    java.util.Set<String> before = NormRegions.names(sd);
    SDVariable mean = x.mean(true, 2, 3);
    SDVariable centred = FastGrad.channelAdd(sd, x, mean.neg(), 2, 3);
    SDVariable var = centred.mul(centred).mean(true, 2, 3);
    SDVariable y = FastGrad.channelMul(sd, centred, sd.math().rsqrt(var.add(BN_EPS)), 2, 3);
    NormRegions.register(sd, before, NormRegions.PER_CHANNEL, x, y, null, null, null, null);
    return y;
  }

  /**
   * GroupNorm of NCHW activations like PyTorch's {@code GroupNorm(groups, channels)}: each example's
   * channels split into {@code groups} groups, each normalised by its own mean and (biased) variance,
   * eps 1e-5, then a learned per-channel scale (init 1) and shift (init 0). Same at training and
   * inference.
   */
  public SDVariable groupNorm(String name, SDVariable x, int channels, int groups, long height, long width) {
    java.util.Set<String> before = NormRegions.names(sd);
    int perGroup = channels / groups;
    SDVariable g = x.reshape(-1, groups, perGroup * height * width);
    SDVariable mean = g.mean(true, 2);
    SDVariable centred = FastGrad.channelAdd(sd, g, mean.neg(), 2);
    SDVariable var = centred.mul(centred).mean(true, 2);
    SDVariable gamma = constantParam(name + "/gamma", 1.0, 1, channels, 1, 1);
    SDVariable beta = constantParam(name + "/beta", 0.0, 1, channels, 1, 1);
    // 1/std (per example and group) times gamma (per channel) as one [N, C] scale: one pass over the
    // activations instead of two, forward and backward
    SDVariable scale = sd.math().rsqrt(var.add(BN_EPS)).mul(gamma.reshape(1, groups, perGroup)).reshape(-1, channels, 1, 1);
    SDVariable scaled = FastGrad.channelMul(sd, centred.reshape(-1, channels, height, width), scale, 2, 3);
    SDVariable y = FastGrad.channelAdd(sd, scaled, beta, 0, 2, 3);
    NormRegions.register(sd, before, groups, x, y, gamma, beta, null, null);
    return y;
  }

  /** LayerNorm over the last axis of [N, L, D] with learned scale and shift (PyTorch's {@code LayerNorm(D)}). */
  public SDVariable layerNorm(String name, SDVariable x, int dim) {
    SDVariable gain = constantParam(name + "/gain", 1.0, dim);
    SDVariable bias = constantParam(name + "/bias", 0.0, dim);
    return sd.nn().layerNorm(x, gain, bias, false, 2);
  }

  /** SiLU (swish): x * sigmoid(x). */
  public SDVariable silu(SDVariable x) {
    return sd.nn().swish(x);
  }

  /**
   * Single-head scaled dot-product attention of queries q [N, Lq, cq] over keys and values from kv
   * [N, Lk, ckv] (kv = q for self-attention): dense projections to {@code dim}, softmax(Q K^T /
   * sqrt(dim)) V, and a dense projection back to cq. Returns [N, Lq, cq].
   */
  public SDVariable attention(String name, SDVariable q, int cq, long lq, SDVariable kv, int ckv, long lk, int dim) {
    SDVariable qs = dense(name + "/q", q.reshape(-1, cq), cq, dim).reshape(-1, lq, dim);
    SDVariable flatKv = kv.reshape(-1, ckv);
    SDVariable ks = dense(name + "/k", flatKv, ckv, dim).reshape(-1, lk, dim);
    SDVariable vs = dense(name + "/v", flatKv, ckv, dim).reshape(-1, lk, dim);
    SDVariable scores = sd.mmul(qs, ks, false, true, false).mul(1.0 / Math.sqrt(dim));
    // softmax over the keys: ND4J's native op and its backward, a few passes over the scores instead
    // of the many that max, exp, sum and divide (and their backward ops) take when written out
    SDVariable weights = sd.nn().softmax(scores, 2);
    SDVariable out = sd.mmul(weights, vs, false, false, false);
    return dense(name + "/o", out.reshape(-1, dim), dim, cq).reshape(-1, lq, cq);
  }

  /** Names of the batch statistics a training step must return to update the running statistics. */
  public List<String> batchStatOutputs() {
    List<String> out = new ArrayList<>();
    for (BatchNorm bn : batchNorms.values()) {
      if (bn.batchMean != null) {
        out.add(bn.batchMean);
        out.add(bn.batchVar);
      }
    }
    return out;
  }

  /** Puts the running statistics of the inference graph into the placeholder map. */
  public void feedRunningStats(Map<String, INDArray> placeholders) {
    for (BatchNorm bn : batchNorms.values()) {
      if (bn.runMean != null) {
        placeholders.put(bn.runMean.name(), Nd4j.create(bn.runningMean, bn.shape, 'c'));
        placeholders.put(bn.runVar.name(), Nd4j.create(bn.runningVar, bn.shape, 'c'));
      }
    }
  }

  /** Updates running statistics from a training step's outputs (see {@link #batchStatOutputs()}). */
  public void updateRunningStats(Map<String, INDArray> outputs, long batchSize) {
    for (BatchNorm bn : batchNorms.values()) {
      if (bn.batchMean == null) {
        continue; // in the inference graph only
      }
      long n = batchSize * bn.spatialSize;
      double unbias = n > 1 ? n / (double) (n - 1) : 1.0;
      INDArray m = outputs.get(bn.batchMean);
      INDArray v = outputs.get(bn.batchVar);
      // a few channels: plain Java (as ND4J ops, ~24 op calls per step for two layers, ~0.2 ms)
      blend(bn.runningMean, m.reshape(bn.channels).toFloatVector(), 1.0);
      blend(bn.runningVar, v.reshape(bn.channels).toFloatVector(), unbias);
    }
  }

  /** running = (1 - momentum) running + momentum * scale * batch, in float like the layer's arrays. */
  private static void blend(float[] running, float[] batch, double scale) {
    float keep = (float) (1 - BN_MOMENTUM);
    float take = (float) (BN_MOMENTUM * scale);
    for (int i = 0; i < running.length; i++) {
      running[i] = running[i] * keep + batch[i] * take;
    }
  }

  /** Writes all running statistics as {@code <prefix>/bn} (mean then variance per layer). */
  public void exportTo(ModelState state, String prefix) {
    float[] out = state.reuse(prefix + "/bn", batchNorms.values().stream().mapToInt(b -> 2 * b.channels).sum());
    int off = 0;
    for (BatchNorm bn : batchNorms.values()) {
      System.arraycopy(bn.runningMean, 0, out, off, bn.channels);
      System.arraycopy(bn.runningVar, 0, out, off + bn.channels, bn.channels);
      off += 2 * bn.channels;
    }
  }

  /** Appends the memory of {@code <prefix>/bn}: each batch norm's running mean, then its running variance. */
  @Override
  public void stateMemory(List<java.nio.FloatBuffer> out) {
    for (BatchNorm bn : batchNorms.values()) {
      out.add(java.nio.FloatBuffer.wrap(bn.runningMean));
      out.add(java.nio.FloatBuffer.wrap(bn.runningVar));
    }
  }

  public void importFrom(ModelState state, String prefix) {
    int len = batchNorms.values().stream().mapToInt(b -> 2 * b.channels).sum();
    float[] in = state.get(prefix + "/bn", len);
    int off = 0;
    for (BatchNorm bn : batchNorms.values()) {
      System.arraycopy(in, off, bn.runningMean, 0, bn.channels);
      System.arraycopy(in, off + bn.channels, bn.runningVar, 0, bn.channels);
      off += 2 * bn.channels;
    }
  }

  private static long count(long[] shape) {
    long n = 1;
    for (long s : shape) {
      n *= s;
    }
    return n;
  }

  private static final class BatchNorm {
    final int channels;
    final long spatialSize;
    final long[] shape;
    final float[] runningMean;
    final float[] runningVar;
    SDVariable runMean;
    SDVariable runVar;
    String batchMean;
    String batchVar;

    BatchNorm(int channels, long spatialSize, long[] shape) {
      this.channels = channels;
      this.spatialSize = spatialSize;
      this.shape = shape;
      this.runningMean = new float[channels];
      this.runningVar = new float[channels];
      Arrays.fill(runningVar, 1f);
    }
  }
}
