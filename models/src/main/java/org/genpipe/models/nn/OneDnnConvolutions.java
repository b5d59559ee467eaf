package org.genpipe.models.nn;

import org.bytedeco.dnnl.convolution_backward_data;
import org.bytedeco.dnnl.convolution_backward_weights;
import org.bytedeco.dnnl.convolution_forward;
import org.bytedeco.dnnl.deconvolution_backward_data;
import org.bytedeco.dnnl.deconvolution_backward_weights;
import org.bytedeco.dnnl.deconvolution_forward;
import org.bytedeco.dnnl.IntMemoryMap;
import org.bytedeco.dnnl.memory;
import org.bytedeco.dnnl.primitive_desc;
import org.bytedeco.dnnl.global.dnnl;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The convolutions of a compiled plan ({@code conv2d}, {@code deconv2d} and their backward ops) run
 * through oneDNN primitives that are made once, when the plan is compiled.
 *
 * <p>ND4J M2.1's oneDNN build makes every primitive descriptor again on each call and reorders the
 * weights each time: a convolution of a 1x1x4x4 input costs ~80 us there, its backward ~140 us, a
 * large share of a small network's step. A plan's arrays never move, so everything ND4J rebuilds
 * can be built once: the same descriptors as ND4J's oneDNN helpers (formats chosen by oneDNN,
 * {@code convolution_auto} / {@code deconvolution_direct}, the forward primitive as the hint of the
 * backward ones, backward data before backward weights), from the same oneDNN release (2.5.2, the
 * {@code org.bytedeco:dnnl} preset ND4J's onednn build is compiled against). The kernels are
 * therefore the same and the results bit-identical, which the models' tests check in
 * {@code checked} mode.
 *
 * <p>Outside {@code checked} mode the forward convolution asks for oneDNN's 16-channel blocked
 * layout where the channels allow. Left to pick, oneDNN 2.5 runs its brgemm kernel on channels-last
 * activations, whose copies from and to the plan's NCHW arrays cost as much as the convolution
 * (17 ms each way for [32, 96, 32, 96] on 2 cores); the blocked kernel's copies cost a fraction of
 * that: the DDPM's DDIM sampling 13% faster, its training step 3% (DCGAN within noise). The kernel
 * differs from ND4J's, so results agree to float rounding, as {@link OneDnnEltwise}'s do.
 *
 * <p>Used only where that holds: ND4J's CPU backend from the onednn build, float NCHW arrays, the
 * weight layouts of {@link Layers} ([kH, kW, in, out] for conv2d, [kH, kW, out, in] for deconv2d),
 * explicit padding, no dilation. Anything else, or {@code -Dgenpipe.onednn=false}, runs ND4J's op.
 */
final class OneDnnConvolutions {
  private static final memory.data_type F32 = memory.data_type.f32;
  /** dnnl's weight dims [out, in, kH, kW] from Layers' layouts: conv2d [kH, kW, in, out], deconv2d [kH, kW, out, in]. */
  private static final int[] CONV_WEIGHTS = {3, 2, 0, 1};
  private static final int[] DECONV_WEIGHTS = {2, 3, 0, 1};
  private static final int[] PLAIN = {0, 1, 2, 3};

  private OneDnnConvolutions() {}

  /**
   * A kernel computing op {@code opName} from {@code in} into {@code out} with ND4J's integer
   * arguments {@code iArgs}, or null where this class does not apply (ND4J's op then runs). For a
   * backward op, {@code inputGradientUsed} false leaves out the gradient of the input (e.g. of a
   * network's input images, which nothing reads): out[0] is then not written.
   */
  static Runnable kernel(String opName, INDArray[] in, INDArray[] out, long[] iArgs, boolean inputGradientUsed,
      boolean exact) {
    boolean backward = opName.endsWith("_bp");
    boolean transposed = opName.startsWith("deconv2d");
    if (!opName.equals("conv2d") && !opName.equals("conv2d_bp") && !opName.equals("deconv2d")
        && !opName.equals("deconv2d_bp")) {
      return null;
    }
    if (!OneDnn.available() || iArgs.length < 9 || !supported(in, out, iArgs)) {
      return null;
    }
    INDArray x = in[0];
    INDArray w = in[1];
    boolean bias = in.length == (backward ? 4 : 3);
    INDArray y = backward ? in[in.length - 1] : out[0];
    Geometry g = new Geometry(x, w, y, iArgs, transposed, !exact);
    return backward ? g.backward(x, w, y, inputGradientUsed ? out[0] : null, out[1], bias ? out[2] : null)
        : g.forward(x, w, bias ? in[2] : null, y);
  }

  private static boolean supported(INDArray[] in, INDArray[] out, long[] iArgs) {
    boolean dilated = iArgs[6] != 1 || iArgs[7] != 1;
    boolean samePadding = iArgs[8] != 0;
    boolean nhwc = iArgs.length > 9 && iArgs[9] != 0;
    boolean otherWeights = iArgs.length > 10 && iArgs[10] != 0;
    if (dilated || samePadding || nhwc || otherWeights) {
      return false;
    }
    for (INDArray a : in) {
      if (a.dataType() != DataType.FLOAT || a.isEmpty()) {
        return false;
      }
    }
    for (INDArray a : out) {
      if (a.dataType() != DataType.FLOAT || a.isEmpty()) {
        return false;
      }
    }
    return in[0].rank() == 4 && in[1].rank() == 4;
  }

  /** Dimensions, strides and paddings of one convolution, as ND4J's oneDNN helpers state them. */
  private static final class Geometry {
    final boolean transposed;
    final long[] xDims;
    final long[] wDims;
    final long[] yDims;
    final long[] strides;
    final long[] dilation = {0, 0};
    final long[] padL;
    final long[] padR;
    final int[] wPerm;
    final boolean blockedActivations;

    Geometry(INDArray x, INDArray w, INDArray y, long[] a, boolean transposed, boolean blockedActivations) {
      this.transposed = transposed;
      this.blockedActivations = blockedActivations;
      long kH = a[0] > 0 ? a[0] : w.size(0);
      long kW = a[1] > 0 ? a[1] : w.size(1);
      wPerm = transposed ? DECONV_WEIGHTS : CONV_WEIGHTS;
      xDims = x.shape();
      yDims = y.shape();
      wDims = new long[] {w.size(wPerm[0]), w.size(wPerm[1]), kH, kW};
      strides = new long[] {a[2], a[3]};
      padL = new long[] {a[4], a[5]};
      long iH = xDims[2];
      long iW = xDims[3];
      long oH = yDims[2];
      long oW = yDims[3];
      padR = transposed
          ? new long[] {(iH - 1) * a[2] - oH + kH - a[4], (iW - 1) * a[3] - oW + kW - a[5]}
          : new long[] {(oH - 1) * a[2] - iH + kH - a[4], (oW - 1) * a[3] - iW + kW - a[5]};
    }

    /** The forward primitive's descriptor (also the hint of the backward ones). */
    primitive_desc forwardDesc(memory.desc bias) {
      return transposed
          ? new deconvolution_forward.primitive_desc(new deconvolution_forward.desc(dnnl.prop_kind.forward_inference,
              dnnl.algorithm.deconvolution_direct, any(xDims), any(wDims), bias, any(yDims), strides, dilation, padL,
              padR), OneDnn.cpu())
          : new convolution_forward.primitive_desc(new convolution_forward.desc(dnnl.prop_kind.forward_inference,
              dnnl.algorithm.convolution_auto, blocked(xDims), any(wDims), bias, blocked(yDims), strides, dilation, padL,
              padR), OneDnn.cpu());
    }

    OneDnn.Kernel forward(INDArray x, INDArray w, INDArray b, INDArray y) {
      primitive_desc pd = forwardDesc(biasDesc(b));
      OneDnn.Kernel k = new OneDnn.Kernel();
      IntMemoryMap args = new IntMemoryMap();
      args.put(dnnl.DNNL_ARG_SRC, k.input(x, PLAIN, xDims, query(pd, dnnl.dnnl_query_src_md)));
      args.put(dnnl.DNNL_ARG_WEIGHTS, k.input(w, wPerm, wDims, query(pd, dnnl.dnnl_query_weights_md)));
      if (b != null) {
        args.put(dnnl.DNNL_ARG_BIAS, k.plain(b, new long[] {b.length()}, PLAIN));
      }
      args.put(dnnl.DNNL_ARG_DST, k.output(y, PLAIN, yDims, query(pd, dnnl.dnnl_query_dst_md)));
      k.add(transposed ? new deconvolution_forward((deconvolution_forward.primitive_desc) pd)
          : new convolution_forward((convolution_forward.primitive_desc) pd), args);
      return k;
    }

    /** Backward data (skipped when {@code gradIn} is null) then backward weights, as ND4J runs them. */
    OneDnn.Kernel backward(INDArray x, INDArray w, INDArray gradOut, INDArray gradIn, INDArray gradW, INDArray gradB) {
      memory.desc biasMd = biasDesc(gradB);
      primitive_desc hint = forwardDesc(biasMd);
      primitive_desc data;
      primitive_desc weights;
      if (transposed) {
        data = new deconvolution_backward_data.primitive_desc(new deconvolution_backward_data.desc(
            dnnl.algorithm.deconvolution_direct, any(xDims), any(wDims), any(yDims), strides, dilation, padL, padR), OneDnn.cpu(),
            (deconvolution_forward.primitive_desc) hint);
        weights = new deconvolution_backward_weights.primitive_desc(new deconvolution_backward_weights.desc(
            dnnl.algorithm.deconvolution_direct, any(xDims), any(wDims), biasMd, any(yDims), strides, dilation, padL,
            padR), OneDnn.cpu(), (deconvolution_forward.primitive_desc) hint);
      } else {
        data = new convolution_backward_data.primitive_desc(new convolution_backward_data.desc(
            dnnl.algorithm.convolution_auto, any(xDims), any(wDims), any(yDims), strides, dilation, padL, padR), OneDnn.cpu(),
            (convolution_forward.primitive_desc) hint);
        weights = new convolution_backward_weights.primitive_desc(new convolution_backward_weights.desc(
            dnnl.algorithm.convolution_auto, any(xDims), any(wDims), biasMd, any(yDims), strides, dilation, padL, padR),
            OneDnn.cpu(), (convolution_forward.primitive_desc) hint);
      }
      OneDnn.Kernel k = new OneDnn.Kernel();
      IntMemoryMap dataArgs = null;
      if (gradIn != null) {
        dataArgs = new IntMemoryMap();
        dataArgs.put(dnnl.DNNL_ARG_DIFF_DST, k.input(gradOut, PLAIN, yDims, query(data, dnnl.dnnl_query_diff_dst_md)));
        dataArgs.put(dnnl.DNNL_ARG_WEIGHTS, k.input(w, wPerm, wDims, query(data, dnnl.dnnl_query_weights_md)));
        dataArgs.put(dnnl.DNNL_ARG_DIFF_SRC, k.output(gradIn, PLAIN, xDims, query(data, dnnl.dnnl_query_diff_src_md)));
      }
      IntMemoryMap weightArgs = new IntMemoryMap();
      weightArgs.put(dnnl.DNNL_ARG_SRC, k.input(x, PLAIN, xDims, query(weights, dnnl.dnnl_query_src_md)));
      weightArgs.put(dnnl.DNNL_ARG_DIFF_DST, k.input(gradOut, PLAIN, yDims, query(weights, dnnl.dnnl_query_diff_dst_md)));
      weightArgs.put(dnnl.DNNL_ARG_DIFF_WEIGHTS,
          k.output(gradW, wPerm, wDims, query(weights, dnnl.dnnl_query_diff_weights_md)));
      if (gradB != null) {
        weightArgs.put(dnnl.DNNL_ARG_DIFF_BIAS, k.plain(gradB, new long[] {gradB.length()}, PLAIN));
      }
      if (gradIn != null) {
        k.add(transposed ? new deconvolution_backward_data((deconvolution_backward_data.primitive_desc) data)
            : new convolution_backward_data((convolution_backward_data.primitive_desc) data), dataArgs);
      }
      k.add(transposed ? new deconvolution_backward_weights((deconvolution_backward_weights.primitive_desc) weights)
          : new convolution_backward_weights((convolution_backward_weights.primitive_desc) weights), weightArgs);
      return k;
    }

    private static memory.desc biasDesc(INDArray b) {
      return b == null ? new memory.desc() : new memory.desc(new long[] {b.length()}, F32, memory.format_tag.x);
    }

    /**
     * A convolution's activations in oneDNN's 16-channel blocked layout (nChw16c) where asked and the
     * channels are a multiple of 16, else the layout oneDNN picks (as ND4J's helpers let it).
     */
    private memory.desc blocked(long[] dims) {
      return !blockedActivations || dims[1] % 16 != 0 ? any(dims)
          : new memory.desc(dims, F32, memory.format_tag.nChw16c);
    }

    private static memory.desc any(long[] dims) {
      return new memory.desc(dims, F32, memory.format_tag.any);
    }

    private static memory.desc query(primitive_desc pd, int what) {
      return pd.query_md(what, 0);
    }
  }
}
