package org.genpipe.models.nn;

import org.bytedeco.dnnl.IntMemoryMap;
import org.bytedeco.dnnl.memory;
import org.bytedeco.dnnl.reduction;
import org.bytedeco.dnnl.global.dnnl;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * ND4J's {@code reduce_sum} over trailing axes with the reduced axes kept (what the gradient of a
 * per-channel shift of NCHW activations takes: [N, C, H, W] to [N, C, 1, 1]) in a compiled plan
 * through oneDNN's reduction over the inner axis of the [outer, inner] view: ~0.25 ms where ND4J's
 * op takes ~1 ms on [16, 32, 32, 96] (2 threads). Other reductions (leading axes, which oneDNN runs
 * with its reference kernel) stay with ND4J. Sums in another order: plans compiled for
 * {@code checked} mode keep ND4J's op.
 */
final class OneDnnReduction {
  private OneDnnReduction() {}

  /** A kernel for {@code reduce_sum} of {@code in[0]} into {@code out[0]} of the same rank, or null where it does not apply. */
  static Runnable kernel(String opName, INDArray[] in, INDArray[] out) {
    if (!opName.equals("reduce_sum") || !OneDnn.available() || in.length != 1 || out.length != 1) {
      return null;
    }
    INDArray x = in[0];
    INDArray y = out[0];
    if (x.rank() != y.rank() || !OneDnn.wholeArray(x) || !OneDnn.wholeArray(y)) {
      return null;
    }
    // the kept axes first, then the reduced ones
    int firstReduced = x.rank();
    for (int i = x.rank() - 1; i >= 0 && y.size(i) == 1; i--) {
      firstReduced = i;
    }
    for (int i = 0; i < firstReduced; i++) {
      if (y.size(i) != x.size(i)) {
        return null;
      }
    }
    long outer = y.length();
    long inner = x.length() / outer;
    if (firstReduced == x.rank() || inner == 1) {
      return null;
    }
    OneDnn.Kernel k = new OneDnn.Kernel();
    addRowSums(k, k.dense(x, outer, inner), k.dense(y, outer, 1));
    return k;
  }

  /**
   * Adds {@code sums[.., r, 0] = sum over p of in[.., r, p]} to {@code k}: oneDNN's reduction over the
   * innermost axis (its vectorised kernel; over other axes oneDNN 2.5 runs a reference kernel).
   */
  static void addRowSums(OneDnn.Kernel k, memory in, memory sums) {
    IntMemoryMap args = new IntMemoryMap();
    args.put(dnnl.DNNL_ARG_SRC, in);
    args.put(dnnl.DNNL_ARG_DST, sums);
    k.add(new reduction(new reduction.primitive_desc(new reduction.desc(dnnl.algorithm.reduction_sum, in.get_desc(),
        sums.get_desc(), 0f, 0f), OneDnn.cpu())), args);
  }
}
