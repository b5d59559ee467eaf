package org.genpipe.models.nn;

import java.util.List;
import org.bytedeco.dnnl.IntMemoryMap;
import org.bytedeco.dnnl.batch_normalization_backward;
import org.bytedeco.dnnl.batch_normalization_forward;
import org.bytedeco.dnnl.binary;
import org.bytedeco.dnnl.layer_normalization_backward;
import org.bytedeco.dnnl.layer_normalization_forward;
import org.bytedeco.dnnl.memory;
import org.bytedeco.dnnl.post_ops;
import org.bytedeco.dnnl.primitive_attr;
import org.bytedeco.dnnl.global.dnnl;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * One normalisation layer of a compiled plan ({@link NormRegions}) as oneDNN primitives, forward and
 * backward, on the plan's fixed arrays.
 *
 * <p>Batch norm is oneDNN's batch normalisation (statistics per channel, scale and shift). Group
 * norm and instance norm are oneDNN's layer normalisation over the [N * groups, C / groups * H * W]
 * view of the activations, then the per-channel scale and shift as oneDNN's binary primitive
 * (x * scale + shift, one pass). Group norm's backward with a scale is {@link AffineGroupBackward}:
 * two sums per example and channel, then the input's gradient in one pass. oneDNN's batch
 * normalisation as the per-channel affine (its first form here) ran the generic "ncsp" kernel and
 * cost more than the normalisation itself: at [16, 96, 32, 96] 6.5 ms forward and 13.3 ms backward
 * against 3.5 and 8.2 now, one thread.
 *
 * <p>Same formulas (biased variance, epsilon inside the square root) as {@link Layers}; oneDNN sums
 * in another order, so the results agree to float rounding, not bit for bit: like
 * {@link OneDnnEltwise}, plans compiled for {@code checked} mode keep the ops, and a test bounds the
 * difference.
 */
final class OneDnnNorm {
  /**
   * Batch norm's closed-form backward ({@link BatchBackward}) from this many positions per image on
   * (measured, per call: [64, 32, 32, 96] 8.9 vs 9.9 ms for oneDNN's own backward, [64, 64, 16, 48]
   * 5.1 vs 5.9, [64, 128, 8, 24] and [64, 64, 16, 16] even; DCGAN's [64, 128, 8, 8] 2.0 vs 1.3 and
   * [64, 256, 4, 4] 3.1 vs 0.5, where its reductions over a few positions per row cost more).
   */
  static final long BATCH_CLOSED_FORM_POSITIONS = 512;
  /** The epsilon inside the square root, the layers' own. */
  private static final float EPS = (float) Layers.BN_EPS;

  private final NormRegions.Region region;
  private final INDArray x;
  private final INDArray gamma;
  private final INDArray beta;
  private final boolean training;
  // per-channel scale and shift as oneDNN's [2, C] weights, filled from the parameters at each run
  private final INDArray scaleShift;
  private final INDArray[] scaleShiftRows;
  private final INDArray[] params;
  // batch norm: the batch statistics; group norm: per example and group, and the normalised values
  private final INDArray mean;
  private final INDArray var;
  private final INDArray normalised;
  private final OneDnn.Kernel forwardKernel = new OneDnn.Kernel();
  private batch_normalization_forward.primitive_desc batchForward;
  private layer_normalization_forward.primitive_desc layerForward;

  private OneDnnNorm(NormRegions.Region region, INDArray x, INDArray gamma, INDArray beta, INDArray mean,
      INDArray var, boolean training) {
    this.region = region;
    this.x = x;
    this.gamma = gamma;
    this.beta = beta;
    this.training = training;
    long c = x.size(1);
    params = gamma == null ? null : new INDArray[] {gamma.reshape(c), beta.reshape(c)};
    if (gamma != null && region.batch()) {
      scaleShift = Nd4j.create(DataType.FLOAT, 2, c);
      scaleShiftRows = new INDArray[] {scaleShift.getRow(0), scaleShift.getRow(1)};
    } else {
      scaleShift = null;
      scaleShiftRows = null;
    }
    if (region.batch()) {
      this.mean = mean != null ? mean : Nd4j.create(DataType.FLOAT, c);
      this.var = var != null ? var : Nd4j.create(DataType.FLOAT, c);
      this.normalised = null;
    } else {
      long rows = x.size(0) * groups();
      this.mean = Nd4j.create(DataType.FLOAT, rows);
      this.var = Nd4j.create(DataType.FLOAT, rows);
      this.normalised = gamma != null && training ? Nd4j.create(DataType.FLOAT, x.shape()) : null;
    }
  }

  /**
   * The forward kernel of {@code region} from {@code x} into {@code y} (and the batch statistics
   * into {@code mean}, {@code var} where the region exposes them); {@code training} keeps what the
   * backward kernel needs.
   *
   * @throws UnsupportedOperationException where it does not apply (another backend or layout), saying why
   */
  static OneDnnNorm forward(NormRegions.Region region, INDArray x, INDArray gamma, INDArray beta, INDArray y,
      INDArray mean, INDArray var, boolean training) {
    String why = !OneDnn.available() ? "oneDNN is not used in this JVM"
        : !OneDnn.wholeArray(x) ? "input " + layout(x)
        : !OneDnn.wholeArray(y) || !java.util.Arrays.equals(x.shape(), y.shape()) ? "output " + layout(y)
        : x.rank() != 4 && !(region.batch() && x.rank() == 2) ? "input of rank " + x.rank()
        : (gamma == null) != (beta == null) || (region.batch() && gamma == null) ? "scale without shift"
        : gamma != null && (!OneDnn.wholeArray(gamma) || !OneDnn.wholeArray(beta) || gamma.length() != x.size(1)) ? "scale " + layout(gamma)
        : mean != null && (!OneDnn.wholeArray(mean) || mean.length() != x.size(1)) ? "batch mean " + layout(mean)
        : var != null && (!OneDnn.wholeArray(var) || var.length() != x.size(1)) ? "batch variance " + layout(var)
        : !region.batch() && region.groups() > 0 && x.size(1) % region.groups() != 0 ? "channels not in whole groups"
        : null;
    if (why != null) {
      throw new UnsupportedOperationException(why);
    }
    OneDnnNorm n = new OneDnnNorm(region, x, gamma, beta, mean, var, training);
    n.buildForward(y);
    return n;
  }

  private static String layout(INDArray a) {
    return a.dataType() + " " + java.util.Arrays.toString(a.shape()) + " strides " + java.util.Arrays.toString(a.stride())
        + " offset " + a.offset() + " of " + a.data().length() + " elements";
  }

  /** Runs the forward kernel. */
  void runForward() {
    if (scaleShift != null) {
      scaleShiftRows[0].assign(params[0]);
      scaleShiftRows[1].assign(params[1]);
    }
    forwardKernel.run();
  }

  private void buildForward(INDArray y) {
    OneDnn.Kernel k = forwardKernel;
    IntMemoryMap args = new IntMemoryMap();
    if (region.batch()) {
      memory src = k.dense(x, x.shape());
      batchForward = new batch_normalization_forward.primitive_desc(new batch_normalization_forward.desc(
          dnnl.prop_kind.forward_training, src.get_desc(), EPS, dnnl.normalization_flags.use_scale_shift), OneDnn.cpu());
      addBatchForward(k, batchForward, src, y, mean, var);
      return;
    }
    memory src = k.dense(x, rowShape());
    memory.desc stats = new memory.desc(new long[] {mean.length()}, memory.data_type.f32, memory.format_tag.x);
    layerForward = new layer_normalization_forward.primitive_desc(new layer_normalization_forward.desc(
        training ? dnnl.prop_kind.forward_training : dnnl.prop_kind.forward_inference, src.get_desc(), stats, EPS,
        dnnl.normalization_flags.none), OneDnn.cpu());
    args.put(dnnl.DNNL_ARG_SRC, src);
    args.put(dnnl.DNNL_ARG_DST, k.dense(gamma != null && training ? normalised : y, rowShape()));
    if (training) {
      args.put(dnnl.DNNL_ARG_MEAN, k.dense(mean, mean.length()));
      args.put(dnnl.DNNL_ARG_VARIANCE, k.dense(var, var.length()));
    }
    k.add(new layer_normalization_forward(layerForward), args);
    if (gamma != null) {
      // y = normalised * scale + shift, per channel (in place on y at inference)
      memory in = k.dense(training ? normalised : y, channelShape());
      memory out = k.dense(y, channelShape());
      long[] channels = {1, x.size(1), 1};
      addScaleAdd(k, in, k.dense(params[0], channels), k.dense(params[1], channels), out);
    }
  }

  /** [N, C, H * W]: the activations as rows per example and channel, for per-channel ops. */
  private long[] channelShape() {
    return new long[] {x.size(0), x.size(1), x.length() / (x.size(0) * x.size(1))};
  }

  /**
   * Adds {@code out = in * scale + addend}, oneDNN's binary primitive with a binary post-op: each
   * operand either of {@code in}'s shape or broadcast over its first and last axes (one value per
   * channel, or per example and channel).
   */
  private static void addScaleAdd(OneDnn.Kernel k, memory in, memory scale, memory addend, memory out) {
    addChain(k, dnnl.algorithm.binary_mul, in, scale, List.of(new Op(dnnl.algorithm.binary_add, addend)), out);
  }

  /** A float array a kernel reads or writes, with its values on the Java side for the per-channel arithmetic. */
  private static final class Staged {
    final INDArray array;
    final float[] values;

    Staged(int length) {
      array = Nd4j.create(DataType.FLOAT, length);
      values = new float[length];
    }

    /** The array's values into {@link #values}. */
    void read() {
      Net.copy(array, values);
    }

    /** {@link #values} into the array. */
    void write() {
      Net.load(values, array, "a norm's coefficients");
    }
  }

  /**
   * What the closed-form backward passes share: the two sums per example and channel (kernel
   * {@code sums} writes them into {@code s1}, {@code s2}), the scale and the variances read back, the
   * coefficients the subclass computes from them, its kernel for the input's gradient, and the
   * per-channel gradients of scale and shift ({@code dg}, {@code db}) written out.
   */
  private abstract class ClosedFormBackward implements Runnable {
    final OneDnn.Kernel sums = new OneDnn.Kernel();
    final OneDnn.Kernel apply = new OneDnn.Kernel();
    final Staged s1;
    final Staged s2;
    final Staged dg;
    final Staged db;
    final float[] gammaValues;
    final float[] varValues;
    final int channels;
    final int rows;
    final long positions;
    private final INDArray dgamma;
    private final INDArray dbeta;

    ClosedFormBackward(INDArray dgamma, INDArray dbeta) {
      this.dgamma = dgamma;
      this.dbeta = dbeta;
      channels = (int) x.size(1);
      rows = (int) (x.size(0) * channels);
      positions = x.length() / rows;
      s1 = new Staged(rows);
      s2 = new Staged(rows);
      dg = new Staged(channels);
      db = new Staged(channels);
      gammaValues = new float[channels];
      varValues = new float[(int) var.length()];
    }

    /** Fills dg, db and the coefficients from s1, s2; returns the kernel that writes the input's gradient. */
    abstract Runnable coefficients();

    @Override
    public void run() {
      sums.run();
      s1.read();
      s2.read();
      var.data().asNioFloat().get(varValues);
      params[0].data().asNioFloat().get(gammaValues);
      coefficients().run();
      if (dgamma != null) {
        dg.write();
        dgamma.assign(dg.array);
      }
      if (dbeta != null) {
        db.write();
        dbeta.assign(db.array);
      }
    }
  }

  /**
   * The backward of group norm with scale and shift from two sums per example and channel
   * ({@code s1 = sum of dy}, {@code s2 = sum of dy * normalised}, oneDNN reductions): with r the
   * group's 1 / sqrt(var + eps) and M its size, {@code dbeta[c] = sum over n of s1},
   * {@code dgamma[c] = sum over n of s2}, and {@code dx = a * dy + b * normalised + c} per example
   * and channel with {@code a = r * gamma[c]}, {@code b = -r * m2}, {@code c = -r * m1}, where m1
   * and m2 are the group's sums of {@code gamma[c] * s1} and {@code gamma[c] * s2} over M. The input's
   * gradient is one pass, {@code (normalised * (b / a) + dy) * a + c} (a binary primitive with three
   * post-ops), or two where some {@code b / a} is not finite (a scale of 0; that kernel and its
   * activation-sized buffer are made the first time it is needed). Measured against a oneDNN
   * layer-norm backward of {@code gamma * dy} with a batch-norm backward for the scale's gradient:
   * 40% less time at [16, 96, 32, 96]; batched matrix products for the sums were twice as slow as
   * the reductions.
   */
  private final class AffineGroupBackward extends ClosedFormBackward {
    private final INDArray dy;
    private final INDArray dx;
    private final long[] shape;
    private final Staged a;
    private final Staged b;
    private final Staged c;
    private final Staged ratio;
    private OneDnn.Kernel applyTwoPasses;

    AffineGroupBackward(INDArray dy, INDArray dx, INDArray dgamma, INDArray dbeta) {
      super(dgamma, dbeta);
      this.dy = dy;
      this.dx = dx;
      shape = new long[] {1, rows, positions};
      a = new Staged(rows);
      b = new Staged(rows);
      c = new Staged(rows);
      ratio = new Staged(rows);
      INDArray product = Nd4j.create(DataType.FLOAT, x.shape());
      memory dyRows = sums.dense(dy, shape);
      memory productRows = sums.dense(product, shape);
      OneDnnReduction.addRowSums(sums, dyRows, sums.dense(s1.array, 1, rows, 1));
      addChain(sums, dnnl.algorithm.binary_mul, dyRows, sums.dense(normalised, shape), List.of(), productRows);
      OneDnnReduction.addRowSums(sums, productRows, sums.dense(s2.array, 1, rows, 1));
      sums.keep(product);
      // one pass: dx = (normalised * (b / a) + dy) * a + c
      addChain(apply, dnnl.algorithm.binary_mul, apply.dense(normalised, shape), apply.dense(ratio.array, 1, rows, 1),
          List.of(new Op(dnnl.algorithm.binary_add, apply.dense(dy, shape)),
              new Op(dnnl.algorithm.binary_mul, apply.dense(a.array, 1, rows, 1)),
              new Op(dnnl.algorithm.binary_add, apply.dense(c.array, 1, rows, 1))), apply.dense(dx, shape));
      apply.keep(dx);
    }

    /** Where some a is 0 (a scale of 0): work = normalised * b + c, then dx = dy * a + work. */
    private OneDnn.Kernel twoPasses() {
      if (applyTwoPasses == null) {
        INDArray work = Nd4j.create(DataType.FLOAT, x.shape());
        OneDnn.Kernel k = new OneDnn.Kernel();
        addScaleAdd(k, k.dense(normalised, shape), k.dense(b.array, 1, rows, 1), k.dense(c.array, 1, rows, 1),
            k.dense(work, shape));
        addScaleAdd(k, k.dense(dy, shape), k.dense(a.array, 1, rows, 1), k.dense(work, shape), k.dense(dx, shape));
        k.keep(List.of(dx, work));
        applyTwoPasses = k;
      }
      return applyTwoPasses;
    }

    @Override
    Runnable coefficients() {
      int n = (int) x.size(0);
      int groups = (int) groups();
      int perGroup = channels / groups;
      double size = (double) x.length() / (n * groups);
      java.util.Arrays.fill(dg.values, 0f);
      java.util.Arrays.fill(db.values, 0f);
      boolean divisible = true;
      for (int e = 0; e < n; e++) {
        for (int g = 0; g < groups; g++) {
          double r = 1 / Math.sqrt(varValues[e * groups + g] + (double) EPS);
          double sum1 = 0;
          double sum2 = 0;
          for (int ch = g * perGroup; ch < (g + 1) * perGroup; ch++) {
            int i = e * channels + ch;
            sum1 += gammaValues[ch] * (double) s1.values[i];
            sum2 += gammaValues[ch] * (double) s2.values[i];
            db.values[ch] += s1.values[i];
            dg.values[ch] += s2.values[i];
          }
          for (int ch = g * perGroup; ch < (g + 1) * perGroup; ch++) {
            int i = e * channels + ch;
            a.values[i] = (float) (r * gammaValues[ch]);
            b.values[i] = (float) (-r * sum2 / size);
            c.values[i] = (float) (-r * sum1 / size);
            ratio.values[i] = b.values[i] / a.values[i];
            divisible &= Float.isFinite(ratio.values[i]);
          }
        }
      }
      a.write();
      c.write();
      if (divisible) {
        ratio.write();
        return apply;
      }
      b.write();
      return twoPasses();
    }
  }

  /**
   * The backward of batch norm over images ([N, C, H, W]) from two sums per example and channel
   * ({@code s1 = sum of dy}, {@code s2 = sum of (x - mean[c]) * dy}, oneDNN reductions over each
   * example's channel): with r the channel's 1 / sqrt(var + eps) and M = N * H * W,
   * {@code dbeta[c] = sum over n of s1}, {@code dgamma[c] = r * sum over n of s2}, and the input's
   * gradient in one pass, {@code ((x - mean[c]) * k[c] + dy) * a[c] + b[c]} with
   * {@code k = -r * dgamma / M}, {@code a = r * gamma}, {@code b = -r * gamma * dbeta / M} (a binary
   * primitive with four post-ops). oneDNN 2.5's own backward for NCHW (its generic "ncsp" kernel)
   * took ~2.3 times PyTorch's on the reader's layers; this 10-13% less than oneDNN's on its larger
   * images (used from {@link #BATCH_CLOSED_FORM_POSITIONS} positions on): both stream the activations
   * from memory ~5 times, where PyTorch's kernel works a channel at a time and reads it from cache
   * after the first pass.
   */
  private final class BatchBackward extends ClosedFormBackward {
    private final Staged k;
    private final Staged a;
    private final Staged b;

    BatchBackward(INDArray dy, INDArray dx, INDArray dgamma, INDArray dbeta) {
      super(dgamma, dbeta);
      long[] channelShape = {x.size(0), channels, positions};
      long[] rowShape = {1, rows, positions};
      long[] perChannel = {1, channels, 1};
      k = new Staged(channels);
      a = new Staged(channels);
      b = new Staged(channels);
      INDArray centredGrad = Nd4j.create(DataType.FLOAT, x.shape());
      // s1; then (x - mean) * dy and s2
      OneDnnReduction.addRowSums(sums, sums.dense(dy, rowShape), sums.dense(s1.array, 1, rows, 1));
      addChain(sums, dnnl.algorithm.binary_sub, sums.dense(x, channelShape), sums.dense(mean, perChannel),
          List.of(new Op(dnnl.algorithm.binary_mul, sums.dense(dy, channelShape))), sums.dense(centredGrad, channelShape));
      OneDnnReduction.addRowSums(sums, sums.dense(centredGrad, rowShape), sums.dense(s2.array, 1, rows, 1));
      sums.keep(centredGrad);
      // dx = ((x - mean) * k + dy) * a + b
      addChain(apply, dnnl.algorithm.binary_sub, apply.dense(x, channelShape), apply.dense(mean, perChannel), List.of(
          new Op(dnnl.algorithm.binary_mul, apply.dense(k.array, perChannel)),
          new Op(dnnl.algorithm.binary_add, apply.dense(dy, channelShape)),
          new Op(dnnl.algorithm.binary_mul, apply.dense(a.array, perChannel)),
          new Op(dnnl.algorithm.binary_add, apply.dense(b.array, perChannel))), apply.dense(dx, channelShape));
      apply.keep(dx);
    }

    @Override
    Runnable coefficients() {
      int n = (int) x.size(0);
      double size = (double) x.length() / channels;
      for (int ch = 0; ch < channels; ch++) {
        double sum1 = 0;
        double sum2 = 0;
        for (int e = 0; e < n; e++) {
          sum1 += s1.values[e * channels + ch];
          sum2 += s2.values[e * channels + ch];
        }
        double r = 1 / Math.sqrt(varValues[ch] + (double) EPS);
        double dgamma = r * sum2;
        dg.values[ch] = (float) dgamma;
        db.values[ch] = (float) sum1;
        k.values[ch] = (float) (-r * dgamma / size);
        a.values[ch] = (float) (r * gammaValues[ch]);
        b.values[ch] = (float) (-r * gammaValues[ch] * sum1 / size);
      }
      k.write();
      a.write();
      b.write();
      return apply;
    }
  }

  /** A binary post-op: the operation and its second operand. */
  private record Op(dnnl.algorithm algorithm, memory operand) {}

  /**
   * Adds {@code out = in (op) operand}, then each post-op in turn: oneDNN's binary primitive with
   * binary post-ops, each operand of {@code in}'s shape or broadcast over some of its axes.
   */
  private static void addChain(OneDnn.Kernel k, dnnl.algorithm op, memory in, memory operand, List<Op> then,
      memory out) {
    post_ops po = new post_ops();
    IntMemoryMap args = new IntMemoryMap();
    for (int i = 0; i < then.size(); i++) {
      po.append_binary(then.get(i).algorithm(), then.get(i).operand().get_desc());
      args.put(postOpOperand(i), then.get(i).operand());
    }
    primitive_attr attr = new primitive_attr();
    attr.set_post_ops(po);
    args.put(dnnl.DNNL_ARG_SRC_0, in);
    args.put(dnnl.DNNL_ARG_SRC_1, operand);
    args.put(dnnl.DNNL_ARG_DST, out);
    k.add(new binary(new binary.primitive_desc(new binary.desc(op, in.get_desc(), operand.get_desc(),
        out.get_desc()), attr, OneDnn.cpu())), args);
    k.keep(po);
    k.keep(attr);
  }

  /** The argument key of post-op {@code index}'s operand (oneDNN's DNNL_ARG_ATTR_MULTIPLE_POST_OP(index) | DNNL_ARG_SRC_1). */
  private static int postOpOperand(int index) {
    return dnnl.DNNL_ARG_ATTR_MULTIPLE_POST_OP_BASE * (index + 1) | dnnl.DNNL_ARG_SRC_1;
  }

  /** Adds a batch normalisation of {@code src} into {@code dst} with statistics {@code m}, {@code v} (written in training). */
  private void addBatchForward(OneDnn.Kernel k, batch_normalization_forward.primitive_desc pd, memory src, INDArray dst,
      INDArray m, INDArray v) {
    IntMemoryMap args = new IntMemoryMap();
    args.put(dnnl.DNNL_ARG_SRC, src);
    args.put(dnnl.DNNL_ARG_DST, k.output(k.dense(dst, dst.shape()), pd.dst_desc()));
    args.put(dnnl.DNNL_ARG_MEAN, k.dense(m, m.length()));
    args.put(dnnl.DNNL_ARG_VARIANCE, k.dense(v, v.length()));
    args.put(dnnl.DNNL_ARG_SCALE_SHIFT, k.dense(scaleShift, scaleShift.shape()));
    k.add(new batch_normalization_forward(pd), args);
  }

  /** Adds the backward of a batch normalisation of {@code src}: {@code diff} in, {@code diffSrc} and {@code diffScaleShift} out. */
  private void addBatchBackward(OneDnn.Kernel k, batch_normalization_backward.primitive_desc pd, memory src, INDArray m,
      INDArray v, memory diff, INDArray diffSrc, INDArray diffScaleShift) {
    IntMemoryMap args = new IntMemoryMap();
    args.put(dnnl.DNNL_ARG_SRC, src);
    args.put(dnnl.DNNL_ARG_MEAN, k.dense(m, m.length()));
    args.put(dnnl.DNNL_ARG_VARIANCE, k.dense(v, v.length()));
    args.put(dnnl.DNNL_ARG_DIFF_DST, k.input(diff, pd.diff_dst_desc()));
    args.put(dnnl.DNNL_ARG_SCALE_SHIFT, k.dense(scaleShift, scaleShift.shape()));
    args.put(dnnl.DNNL_ARG_DIFF_SRC, k.output(k.dense(diffSrc, x.shape()), pd.diff_src_desc()));
    args.put(dnnl.DNNL_ARG_DIFF_SCALE_SHIFT, k.dense(diffScaleShift, diffScaleShift.shape()));
    k.add(new batch_normalization_backward(pd), args);
  }

  /**
   * The backward kernel: from the output's gradient {@code dy}, the input's gradient into {@code dx}
   * and the scale's and shift's into {@code dgamma}, {@code dbeta} (each may be null: not needed).
   * Runs after {@link #runForward} of the same step.
   */
  Runnable backward(INDArray dy, INDArray dx, INDArray dgamma, INDArray dbeta) {
    if (!training || !OneDnn.wholeArray(dy) || !java.util.Arrays.equals(dy.shape(), x.shape())
        || (dx != null && (!OneDnn.wholeArray(dx) || !java.util.Arrays.equals(dx.shape(), x.shape())))) {
      throw new IllegalStateException("the fused backward of " + region.y() + " does not apply to these arrays");
    }
    INDArray dxOut = dx != null ? dx : Nd4j.create(DataType.FLOAT, x.shape());
    INDArray dgammaFlat = dgamma == null ? null : dgamma.reshape(dgamma.length());
    INDArray dbetaFlat = dbeta == null ? null : dbeta.reshape(dbeta.length());
    if (!region.batch() && gamma != null) {
      return new AffineGroupBackward(dy, dxOut, dgammaFlat, dbetaFlat);
    }
    if (region.batch() && x.rank() == 4 && x.size(2) * x.size(3) >= BATCH_CLOSED_FORM_POSITIONS) {
      return new BatchBackward(dy, dxOut, dgammaFlat, dbetaFlat);
    }
    INDArray diffScaleShift = scaleShift == null ? null : Nd4j.create(DataType.FLOAT, 2, x.size(1));
    OneDnn.Kernel k = new OneDnn.Kernel();
    if (region.batch()) {
      memory diff = k.dense(dy, dy.shape());
      batch_normalization_backward.primitive_desc pd = new batch_normalization_backward.primitive_desc(
          new batch_normalization_backward.desc(dnnl.prop_kind.backward, diff.get_desc(), batchForward.src_desc(), EPS,
              dnnl.normalization_flags.use_scale_shift), OneDnn.cpu(), batchForward);
      addBatchBackward(k, pd, k.dense(x, x.shape()), mean, var, diff, dxOut, diffScaleShift);
    } else {
      INDArray diffNormalised = dy;
      memory diff = k.dense(diffNormalised, rowShape());
      memory.desc stats = new memory.desc(new long[] {mean.length()}, memory.data_type.f32, memory.format_tag.x);
      layer_normalization_backward.primitive_desc pd = new layer_normalization_backward.primitive_desc(
          new layer_normalization_backward.desc(dnnl.prop_kind.backward_data, diff.get_desc(), layerForward.src_desc(),
              stats, EPS, dnnl.normalization_flags.none), OneDnn.cpu(), layerForward);
      IntMemoryMap args = new IntMemoryMap();
      args.put(dnnl.DNNL_ARG_SRC, k.dense(x, rowShape()));
      args.put(dnnl.DNNL_ARG_MEAN, k.dense(mean, mean.length()));
      args.put(dnnl.DNNL_ARG_VARIANCE, k.dense(var, var.length()));
      args.put(dnnl.DNNL_ARG_DIFF_DST, diff);
      args.put(dnnl.DNNL_ARG_DIFF_SRC, k.dense(dxOut, rowShape()));
      k.add(new layer_normalization_backward(pd), args);
      k.keep(diffNormalised);
    }
    k.keep(dxOut);
    if (gamma == null) {
      return k;
    }
    INDArray dgammaRow = diffScaleShift.getRow(0);
    INDArray dbetaRow = diffScaleShift.getRow(1);
    return () -> {
      k.run();
      if (dgammaFlat != null) {
        dgammaFlat.assign(dgammaRow);
      }
      if (dbetaFlat != null) {
        dbetaFlat.assign(dbetaRow);
      }
    };
  }

  private long[] rowShape() {
    return new long[] {x.size(0) * groups(), x.length() / (x.size(0) * groups())};
  }

  /** Groups per example (group and instance norm). */
  private long groups() {
    return region.groups() == NormRegions.PER_CHANNEL ? x.size(1) : region.groups();
  }

}
