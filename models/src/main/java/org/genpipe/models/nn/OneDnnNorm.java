package org.genpipe.models.nn;

import org.bytedeco.dnnl.IntMemoryMap;
import org.bytedeco.dnnl.batch_normalization_backward;
import org.bytedeco.dnnl.batch_normalization_forward;
import org.bytedeco.dnnl.layer_normalization_backward;
import org.bytedeco.dnnl.layer_normalization_forward;
import org.bytedeco.dnnl.memory;
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
 * view of the activations, then the per-channel scale and shift as a batch normalisation with fixed
 * statistics (mean 0, variance 1, epsilon 0: x * scale + shift exactly), whose backward gives the
 * gradients of scale and shift and of the normalised values in one pass. The written-out layer
 * reads and writes the activations ~10 times forward and ~15 times backward; these ~3 and ~5.
 *
 * <p>Same formulas (biased variance, epsilon inside the square root) as {@link Layers}; oneDNN sums
 * in another order, so the results agree to float rounding, not bit for bit: like
 * {@link OneDnnEltwise}, plans compiled for {@code checked} mode keep the ops, and a test bounds the
 * difference.
 */
final class OneDnnNorm {
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
  private batch_normalization_forward.primitive_desc affineForward;
  private INDArray zeros;
  private INDArray ones;

  private OneDnnNorm(NormRegions.Region region, INDArray x, INDArray gamma, INDArray beta, INDArray mean,
      INDArray var, boolean training) {
    this.region = region;
    this.x = x;
    this.gamma = gamma;
    this.beta = beta;
    this.training = training;
    long c = x.size(1);
    if (gamma != null) {
      scaleShift = Nd4j.create(DataType.FLOAT, 2, c);
      scaleShiftRows = new INDArray[] {scaleShift.getRow(0), scaleShift.getRow(1)};
      params = new INDArray[] {gamma.reshape(c), beta.reshape(c)};
    } else {
      scaleShift = null;
      scaleShiftRows = null;
      params = null;
    }
    if (region.batch()) {
      this.mean = mean != null ? mean : Nd4j.create(DataType.FLOAT, c);
      this.var = var != null ? var : Nd4j.create(DataType.FLOAT, c);
      this.normalised = null;
    } else {
      long rows = x.size(0) * groups();
      this.mean = Nd4j.create(DataType.FLOAT, rows);
      this.var = Nd4j.create(DataType.FLOAT, rows);
      this.normalised = gamma != null ? Nd4j.create(DataType.FLOAT, x.shape()) : null;
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
        : !usable(x) ? "input " + layout(x)
        : !usable(y) || !java.util.Arrays.equals(x.shape(), y.shape()) ? "output " + layout(y)
        : x.rank() != 4 && !(region.batch() && x.rank() == 2) ? "input of rank " + x.rank()
        : (gamma == null) != (beta == null) || (region.batch() && gamma == null) ? "scale without shift"
        : gamma != null && (!usable(gamma) || !usable(beta) || gamma.length() != x.size(1)) ? "scale " + layout(gamma)
        : mean != null && (!usable(mean) || mean.length() != x.size(1)) ? "batch mean " + layout(mean)
        : var != null && (!usable(var) || var.length() != x.size(1)) ? "batch variance " + layout(var)
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
    if (params != null) {
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
    args.put(dnnl.DNNL_ARG_DST, k.dense(gamma != null ? normalised : y, rowShape()));
    if (training) {
      args.put(dnnl.DNNL_ARG_MEAN, k.dense(mean, mean.length()));
      args.put(dnnl.DNNL_ARG_VARIANCE, k.dense(var, var.length()));
    }
    k.add(new layer_normalization_forward(layerForward), args);
    if (gamma != null) {
      zeros = Nd4j.zeros(DataType.FLOAT, x.size(1));
      ones = Nd4j.ones(DataType.FLOAT, x.size(1));
      memory in = k.dense(normalised, normalised.shape());
      affineForward = new batch_normalization_forward.primitive_desc(affineDesc(in.get_desc()), OneDnn.cpu());
      addBatchForward(k, affineForward, in, y, zeros, ones);
    }
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
    if (!training || !usable(dy) || !java.util.Arrays.equals(dy.shape(), x.shape())
        || (dx != null && (!usable(dx) || !java.util.Arrays.equals(dx.shape(), x.shape())))) {
      throw new IllegalStateException("the fused backward of " + region.y() + " does not apply to these arrays");
    }
    INDArray dxOut = dx != null ? dx : Nd4j.create(DataType.FLOAT, x.shape());
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
      if (gamma != null) {
        diffNormalised = Nd4j.create(DataType.FLOAT, x.shape());
        memory in = k.dense(normalised, normalised.shape());
        memory diff = k.dense(dy, dy.shape());
        batch_normalization_backward.desc d = new batch_normalization_backward.desc(dnnl.prop_kind.backward,
            diff.get_desc(), in.get_desc(), 0f, dnnl.normalization_flags.use_scale_shift);
        d.data().flags(dnnl.dnnl_use_scaleshift | dnnl.dnnl_use_global_stats);
        batch_normalization_backward.primitive_desc pd = new batch_normalization_backward.primitive_desc(d,
            OneDnn.cpu(), affineForward);
        addBatchBackward(k, pd, in, zeros, ones, diff, diffNormalised, diffScaleShift);
      }
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
    if (diffScaleShift == null) {
      return k;
    }
    INDArray dgammaRow = diffScaleShift.getRow(0);
    INDArray dbetaRow = diffScaleShift.getRow(1);
    INDArray dgammaFlat = dgamma == null ? null : dgamma.reshape(dgamma.length());
    INDArray dbetaFlat = dbeta == null ? null : dbeta.reshape(dbeta.length());
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

  /** Per-channel x * scale + shift, as a batch normalisation with given statistics (0 and 1) and epsilon 0. */
  private batch_normalization_forward.desc affineDesc(memory.desc data) {
    batch_normalization_forward.desc d = new batch_normalization_forward.desc(
        training ? dnnl.prop_kind.forward_training : dnnl.prop_kind.forward_inference, data, 0f,
        dnnl.normalization_flags.use_scale_shift);
    d.data().flags(dnnl.dnnl_use_scaleshift | dnnl.dnnl_use_global_stats);
    return d;
  }

  /**
   * A float array whose elements are its whole buffer in c order: a plan's own arrays, and parameters
   * (views into a network's flat parameter vector have a buffer of their own elements, whose address
   * is their first element, as {@link OneDnnConvolutions} binds weights).
   */
  private static boolean usable(INDArray a) {
    return a.dataType() == DataType.FLOAT && !a.isEmpty() && a.ordering() == 'c' && a.length() == a.data().length()
        && (a.length() == 1 || a.elementWiseStride() == 1);
  }
}
