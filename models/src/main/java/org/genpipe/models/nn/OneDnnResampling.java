package org.genpipe.models.nn;

import org.bytedeco.dnnl.IntMemoryMap;
import org.bytedeco.dnnl.memory;
import org.bytedeco.dnnl.pooling_forward;
import org.bytedeco.dnnl.post_ops;
import org.bytedeco.dnnl.primitive_attr;
import org.bytedeco.dnnl.resampling_forward;
import org.bytedeco.dnnl.global.dnnl;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * ND4J's nearest-neighbour {@code upsampling2d} (NCHW, integer factors) and its backward in a
 * compiled plan: the forward through oneDNN's resampling (ND4J M2.1 takes ~2.3 ms to double
 * [16, 64, 16, 48], oneDNN ~0.7 ms; it copies values, so exactly), the backward, each input's
 * gradient the sum of its output block's, as oneDNN's average pooling times the block size (oneDNN's
 * resampling backward took 4.2 ms there against ND4J's 1.5). The backward sums in another order
 * (float rounding): plans compiled for {@code checked} mode keep ND4J's ops.
 */
final class OneDnnResampling {
  private OneDnnResampling() {}

  /**
   * A kernel for {@code upsampling2d} (input; output) or {@code upsampling2d_bp} (input, output's
   * gradient; input's gradient) with ND4J's integer arguments (factor H, factor W, NCHW), or null
   * where it does not apply.
   */
  static Runnable kernel(String opName, INDArray[] in, INDArray[] out, long[] iArgs) {
    boolean backward = opName.equals("upsampling2d_bp");
    if ((!backward && !opName.equals("upsampling2d")) || !OneDnn.available() || in.length != (backward ? 2 : 1)
        || out.length != 1 || iArgs.length < 3 || iArgs[2] != 1) {
      return null;
    }
    INDArray small = backward ? out[0] : in[0];
    INDArray large = backward ? in[1] : out[0];
    if (small.rank() != 4 || large.rank() != 4 || !OneDnn.wholeArray(small) || !OneDnn.wholeArray(large)
        || (backward && !java.util.Arrays.equals(in[0].shape(), small.shape()))
        || large.size(0) != small.size(0) || large.size(1) != small.size(1)
        || large.size(2) != small.size(2) * iArgs[0] || large.size(3) != small.size(3) * iArgs[1]) {
      return null;
    }
    OneDnn.Kernel k = new OneDnn.Kernel();
    memory smallMemory = k.dense(small, small.shape());
    memory largeMemory = k.dense(large, large.shape());
    IntMemoryMap args = new IntMemoryMap();
    if (!backward) {
      resampling_forward.primitive_desc fwd = new resampling_forward.primitive_desc(new resampling_forward.desc(
          dnnl.prop_kind.forward_inference, dnnl.algorithm.resampling_nearest, smallMemory.get_desc(),
          largeMemory.get_desc()), OneDnn.cpu());
      args.put(dnnl.DNNL_ARG_SRC, smallMemory);
      args.put(dnnl.DNNL_ARG_DST, largeMemory);
      k.add(new resampling_forward(fwd), args);
      return k;
    }
    // each input's gradient is the sum of its block of output gradients: average pooling over the
    // blocks times the block's size (oneDNN's resampling backward runs a slow generic kernel here)
    post_ops times = new post_ops();
    times.append_eltwise(1f, dnnl.algorithm.eltwise_linear, (float) (iArgs[0] * iArgs[1]), 0f);
    primitive_attr attr = new primitive_attr();
    attr.set_post_ops(times);
    long[] block = {iArgs[0], iArgs[1]};
    pooling_forward.primitive_desc pool = new pooling_forward.primitive_desc(new pooling_forward.desc(
        dnnl.prop_kind.forward_inference, dnnl.algorithm.pooling_avg_include_padding, largeMemory.get_desc(),
        smallMemory.get_desc(), block, block, new long[] {0, 0}, new long[] {0, 0}), attr, OneDnn.cpu());
    args.put(dnnl.DNNL_ARG_SRC, largeMemory);
    args.put(dnnl.DNNL_ARG_DST, smallMemory);
    k.add(new pooling_forward(pool), args);
    k.keep(times);
    k.keep(attr);
    return k;
  }
}
