package org.genpipe.models.nn;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.genpipe.models.ModelState;
import org.nd4j.autodiff.samediff.SDIndex;
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
public final class Layers {
  private static final double BN_EPS = 1e-5;
  private static final double BN_MOMENTUM = 0.1;

  private final SameDiff sd;
  private final SplittableRandom init;
  private final List<String> params = new ArrayList<>();
  private final Map<String, BatchNorm> batchNorms = new LinkedHashMap<>();

  /** @param seed seed of the initial weights */
  public Layers(SameDiff sd, long seed) {
    this.sd = sd;
    this.init = new SplittableRandom(seed);
  }

  public SameDiff sd() {
    return sd;
  }

  /** Parameter names created since the last call, in creation order (one network's parameters). */
  public List<String> takeParams() {
    List<String> out = List.copyOf(params);
    params.clear();
    return out;
  }

  /** A trainable array initialised uniform(-bound, bound), or the existing one of that name. */
  public SDVariable uniformParam(String name, double bound, long... shape) {
    if (sd.hasVariable(name)) {
      return sd.getVariable(name);
    }
    float[] v = Noise.uniform(init, (int) count(shape), -bound, bound);
    params.add(name);
    return sd.var(name, Nd4j.create(v, shape, 'c'));
  }

  /** A trainable array initialised N(0, std), or the existing one of that name. */
  public SDVariable normalParam(String name, double std, long... shape) {
    if (sd.hasVariable(name)) {
      return sd.getVariable(name);
    }
    INDArray v = Noise.gaussian(init.nextLong(), shape).muli(std);
    params.add(name);
    return sd.var(name, v);
  }

  /** A trainable array filled with {@code value}. */
  public SDVariable constantParam(String name, double value, long... shape) {
    if (sd.hasVariable(name)) {
      return sd.getVariable(name);
    }
    params.add(name);
    return sd.var(name, Nd4j.valueArrayOf(shape, (float) value, DataType.FLOAT));
  }

  /** Conv2d like PyTorch's (padding p on every side), weights YXIO, default uniform init. */
  public SDVariable conv2d(String name, SDVariable x, int in, int out, int k, int s, int p) {
    double bound = 1.0 / Math.sqrt((double) in * k * k);
    SDVariable w = uniformParam(name + "/W", bound, k, k, in, out);
    SDVariable b = uniformParam(name + "/b", bound, out);
    Conv2DConfig c =
        Conv2DConfig.builder().kH(k).kW(k).sH(s).sW(s).pH(p).pW(p).paddingMode(PaddingMode.VALID).dataFormat("NCHW").build();
    return sd.cnn().conv2d(x, w, b, c);
  }

  /**
   * ConvTranspose2d like PyTorch's: the full transposed convolution, then {@code p} cropped at the
   * start and {@code p - outputPadding} at the end of each spatial axis. Out size: (in-1)*s - 2p + k + op.
   */
  public SDVariable deconv2d(
      String name, SDVariable x, int in, int out, int k, int s, int p, int outputPadding, long inSize) {
    double bound = 1.0 / Math.sqrt((double) out * k * k);
    SDVariable w = uniformParam(name + "/W", bound, k, k, out, in);
    SDVariable b = uniformParam(name + "/b", bound, 1, out, 1, 1);
    DeConv2DConfig c =
        DeConv2DConfig.builder().kH(k).kW(k).sH(s).sW(s).pH(0).pW(0).isSameMode(false).dataFormat("NCHW").build();
    SDVariable y = sd.cnn().deconv2d(x, w, c);
    if (p != 0 || outputPadding != 0) {
      long fullSize = (inSize - 1) * s + k;
      long end = fullSize - p + outputPadding;
      if (end > fullSize) {
        throw new IllegalArgumentException(name + ": output padding must be < padding here (crop only)");
      }
      y = y.get(SDIndex.all(), SDIndex.all(), SDIndex.interval((long) p, end), SDIndex.interval((long) p, end));
    }
    // the bias is added here, not by deconv2d: its bias add is 2-5x the cost of the whole
    // transposed convolution in ND4J M2.1 (e.g. 8->1 channels, 14->28: 2.2 ms with, 0.43 ms without)
    return FastGrad.channelAdd(sd, y, b, 0, 2, 3);
  }

  /** Linear layer x [N, in] -> [N, out], uniform init like PyTorch's. */
  public SDVariable dense(String name, SDVariable x, int in, int out) {
    double bound = 1.0 / Math.sqrt(in);
    SDVariable w = uniformParam(name + "/W", bound, in, out);
    SDVariable b = uniformParam(name + "/b", bound, out);
    // not sd.nn().linear (xw_plus_b): with it a model restored from its state does not continue
    // exactly as the original (seen in M2.1 with the GAN test, TinyGanTest)
    return x.mmul(w).add(b);
  }

  /**
   * Batch norm over the channel axis of NCHW (or the feature axis of [N, F]) with learned scale and
   * shift, as PyTorch's: the training graph normalises with the batch statistics (biased variance)
   * and returns them so that {@link #updateRunningStats} can keep running statistics (momentum 0.1,
   * unbiased variance); the inference graph ({@code training = false}) normalises with the running
   * statistics, fed as placeholders by {@link #feedRunningStats}. Call it once per graph with the
   * same name: the scale and shift are shared.
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
    BatchNorm bn = batchNorms.computeIfAbsent(name, n -> new BatchNorm(channels, Math.max(1, spatialSize), bshape));
    if (training) {
      if (bn.batchMean != null) {
        throw new IllegalStateException("batch norm " + name + " is already in the training graph");
      }
      SDVariable mean = x.mean(name + "/batchMean", true, axes);
      SDVariable centred = FastGrad.channelAdd(sd, x, mean.neg(), axes);
      SDVariable var = centred.mul(centred).mean(name + "/batchVar", true, axes);
      bn.batchMean = mean.name();
      bn.batchVar = var.name();
      SDVariable scale = gamma.mul(sd.math().rsqrt(var.add(BN_EPS)));
      return FastGrad.channelAdd(sd, FastGrad.channelMul(sd, centred, scale, axes), beta, axes);
    }
    if (bn.runMean == null) {
      bn.runMean = sd.placeHolder(name + "/runMean", DataType.FLOAT, bshape);
      bn.runVar = sd.placeHolder(name + "/runVar", DataType.FLOAT, bshape);
    }
    SDVariable scale = gamma.mul(sd.math().rsqrt(bn.runVar.add(BN_EPS)));
    SDVariable shift = beta.sub(bn.runMean.mul(scale));
    return x.mul(scale).add(shift);
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
        placeholders.put(bn.runMean.name(), bn.runningMean.reshape(bn.shape));
        placeholders.put(bn.runVar.name(), bn.runningVar.reshape(bn.shape));
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
      bn.runningMean.muli(1 - BN_MOMENTUM).addi(m.reshape(bn.channels).mul(BN_MOMENTUM));
      bn.runningVar.muli(1 - BN_MOMENTUM).addi(v.reshape(bn.channels).mul(BN_MOMENTUM * unbias));
    }
  }

  /** Writes all running statistics as {@code <prefix>/bn} (mean then variance per layer). */
  public void exportTo(ModelState state, String prefix) {
    float[] out = new float[batchNorms.values().stream().mapToInt(b -> 2 * b.channels).sum()];
    int off = 0;
    for (BatchNorm bn : batchNorms.values()) {
      float[] m = bn.runningMean.data().asFloat();
      float[] v = bn.runningVar.data().asFloat();
      System.arraycopy(m, 0, out, off, bn.channels);
      System.arraycopy(v, 0, out, off + bn.channels, bn.channels);
      off += 2 * bn.channels;
    }
    state.put(prefix + "/bn", out);
  }

  public void importFrom(ModelState state, String prefix) {
    int len = batchNorms.values().stream().mapToInt(b -> 2 * b.channels).sum();
    float[] in = state.get(prefix + "/bn", len);
    int off = 0;
    for (BatchNorm bn : batchNorms.values()) {
      float[] m = new float[bn.channels];
      float[] v = new float[bn.channels];
      System.arraycopy(in, off, m, 0, bn.channels);
      System.arraycopy(in, off + bn.channels, v, 0, bn.channels);
      bn.runningMean.assign(Nd4j.createFromArray(m));
      bn.runningVar.assign(Nd4j.createFromArray(v));
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
    final INDArray runningMean;
    final INDArray runningVar;
    SDVariable runMean;
    SDVariable runVar;
    String batchMean;
    String batchVar;

    BatchNorm(int channels, long spatialSize, long[] shape) {
      this.channels = channels;
      this.spatialSize = spatialSize;
      this.shape = shape;
      this.runningMean = Nd4j.zeros(DataType.FLOAT, channels);
      this.runningVar = Nd4j.ones(DataType.FLOAT, channels);
    }
  }
}
