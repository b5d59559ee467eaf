package org.genpipe.models.nn;

import org.bytedeco.dnnl.IntMemoryMap;
import org.bytedeco.dnnl.layer_normalization_backward;
import org.bytedeco.dnnl.layer_normalization_forward;
import org.bytedeco.dnnl.memory;
import org.bytedeco.dnnl.global.dnnl;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * ND4J's {@code layer_norm} over the last axis with gain and bias ({@link Layers#layerNorm}) and its
 * backward {@code layer_norm_bp} in a compiled plan through oneDNN's layer normalisation.
 *
 * <p>ND4J M2.1's backward takes ~3.8 ms on the DDPM's [16, 192, 64] cross-attention inputs (six per
 * training step, ~5% of the step); oneDNN's ~0.1 ms. The backward op gets no statistics from the
 * forward op, so its kernel runs oneDNN's forward (into a scratch output) for them first.
 *
 * <p>ND4J standardises with the biased variance and no epsilon; oneDNN gets an epsilon of 1e-12,
 * below a float's resolution of any variance a layer sees (for a row of equal values, where ND4J
 * divides the mean's rounding residue by 0 and gives infinities, it keeps the output finite). The
 * sums run in another order, so results agree to float rounding: like {@link OneDnnEltwise}, plans
 * compiled for {@code checked} mode keep ND4J's ops.
 */
final class OneDnnLayerNorm {
  private static final float EPS = 1e-12f;

  private OneDnnLayerNorm() {}

  /**
   * A kernel for {@code layer_norm} (inputs x, gain, bias; output y) or {@code layer_norm_bp}
   * (inputs x, gain, bias, dy; outputs dx, dgain, dbias) over the last axis, channels last, or null
   * where this class does not apply.
   */
  static Runnable kernel(String opName, INDArray[] in, INDArray[] out, long[] iArgs, boolean[] bArgs) {
    boolean backward = opName.equals("layer_norm_bp");
    if (!backward && !opName.equals("layer_norm")) {
      return null;
    }
    if (!OneDnn.available() || in.length != (backward ? 4 : 3) || out.length != (backward ? 3 : 1)
        || (bArgs.length > 0 && bArgs[0])) {
      return null;
    }
    INDArray x = in[0];
    int rank = x.rank();
    if (rank < 2 || iArgs.length != 1 || (iArgs[0] != rank - 1 && iArgs[0] != -1)) {
      return null;
    }
    long d = x.size(rank - 1);
    long rows = x.length() / d;
    if (!OneDnn.wholeArray(x) || !vector(in[1], d) || !vector(in[2], d)) {
      return null;
    }
    for (INDArray a : backward ? new INDArray[] {in[3], out[0]} : out) {
      if (!OneDnn.wholeArray(a) || !java.util.Arrays.equals(a.shape(), x.shape())) {
        return null;
      }
    }
    if (backward && (!vector(out[1], d) || !vector(out[2], d))) {
      return null;
    }
    // oneDNN's [2, d] scale and shift, filled from the gain and bias at each run
    INDArray scaleShift = Nd4j.create(DataType.FLOAT, 2, d);
    INDArray[] rowsOfScaleShift = {scaleShift.getRow(0), scaleShift.getRow(1)};
    INDArray[] gainAndBias = {in[1].reshape(d), in[2].reshape(d)};
    Runnable load = () -> {
      rowsOfScaleShift[0].assign(gainAndBias[0]);
      rowsOfScaleShift[1].assign(gainAndBias[1]);
    };
    OneDnn.Kernel k = new OneDnn.Kernel();
    k.keep(scaleShift);
    memory src = k.dense(x, rows, d);
    memory.desc stats = new memory.desc(new long[] {rows}, memory.data_type.f32, memory.format_tag.x);
    layer_normalization_forward.primitive_desc fwd = new layer_normalization_forward.primitive_desc(
        new layer_normalization_forward.desc(backward ? dnnl.prop_kind.forward_training
            : dnnl.prop_kind.forward_inference, src.get_desc(), stats, EPS, dnnl.normalization_flags.use_scale_shift),
        OneDnn.cpu());
    IntMemoryMap args = new IntMemoryMap();
    args.put(dnnl.DNNL_ARG_SRC, src);
    args.put(dnnl.DNNL_ARG_SCALE_SHIFT, k.dense(scaleShift, 2, d));
    if (!backward) {
      args.put(dnnl.DNNL_ARG_DST, k.dense(out[0], rows, d));
      k.add(new layer_normalization_forward(fwd), args);
      return () -> {
        load.run();
        k.run();
      };
    }
    // the statistics: the forward into a scratch output
    INDArray y = Nd4j.create(DataType.FLOAT, x.shape());
    INDArray mean = Nd4j.create(DataType.FLOAT, rows);
    INDArray var = Nd4j.create(DataType.FLOAT, rows);
    INDArray diffScaleShift = Nd4j.create(DataType.FLOAT, 2, d);
    k.keep(new Object[] {y, mean, var, diffScaleShift});
    args.put(dnnl.DNNL_ARG_DST, k.dense(y, rows, d));
    args.put(dnnl.DNNL_ARG_MEAN, k.dense(mean, rows));
    args.put(dnnl.DNNL_ARG_VARIANCE, k.dense(var, rows));
    k.add(new layer_normalization_forward(fwd), args);
    memory diff = k.dense(in[3], rows, d);
    layer_normalization_backward.primitive_desc bwd = new layer_normalization_backward.primitive_desc(
        new layer_normalization_backward.desc(dnnl.prop_kind.backward, diff.get_desc(), src.get_desc(), stats, EPS,
            dnnl.normalization_flags.use_scale_shift), OneDnn.cpu(), fwd);
    IntMemoryMap back = new IntMemoryMap();
    back.put(dnnl.DNNL_ARG_SRC, src);
    back.put(dnnl.DNNL_ARG_MEAN, k.dense(mean, rows));
    back.put(dnnl.DNNL_ARG_VARIANCE, k.dense(var, rows));
    back.put(dnnl.DNNL_ARG_DIFF_DST, diff);
    back.put(dnnl.DNNL_ARG_SCALE_SHIFT, k.dense(scaleShift, 2, d));
    back.put(dnnl.DNNL_ARG_DIFF_SRC, k.dense(out[0], rows, d));
    back.put(dnnl.DNNL_ARG_DIFF_SCALE_SHIFT, k.dense(diffScaleShift, 2, d));
    k.add(new layer_normalization_backward(bwd), back);
    INDArray dgain = out[1].reshape(d);
    INDArray dbias = out[2].reshape(d);
    INDArray dgainRow = diffScaleShift.getRow(0);
    INDArray dbiasRow = diffScaleShift.getRow(1);
    return () -> {
      load.run();
      k.run();
      dgain.assign(dgainRow);
      dbias.assign(dbiasRow);
    };
  }

  private static boolean vector(INDArray a, long d) {
    return a.dataType() == DataType.FLOAT && a.length() == d;
  }
}
