package org.genpipe.models.nn;

import org.bytedeco.dnnl.IntMemoryMap;
import org.bytedeco.dnnl.matmul;
import org.bytedeco.dnnl.memory;
import org.bytedeco.dnnl.global.dnnl;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Matrix products ({@code matmul}, and {@code matmul_bp}: the gradients of both factors) in a compiled
 * plan through oneDNN's matmul primitive, made once per plan on the plan's fixed arrays; transposed
 * operands are read through their strides, so nothing is copied.
 *
 * <p>ND4J M2.1 multiplies batched operands one small GEMM at a time and copies transposed ones
 * first: the DDPM's self-attention scores ([16, 192, 64] x [16, 192, 64]^T, 75 MFLOP) took ~3.2 ms
 * there, ~23 GFLOP/s, where one oneDNN call runs several times faster. oneDNN sums the products in
 * another order than ND4J's GEMM, so the results agree to float rounding, not bit for bit: like
 * {@link OneDnnEltwise}, a plan compiled for {@code checked} mode keeps ND4J's op and a test bounds
 * the difference.
 *
 * <p>Used for float operands of rank 2 or 3 with equal batch sizes and no axis of size 1, ND4J's
 * transpose flags for the two factors, an untransposed result and no scaling (alpha 1, beta 0);
 * anything else runs ND4J's op.
 */
final class OneDnnMatmul {
  private OneDnnMatmul() {}

  /**
   * A kernel for {@code opName} ({@code matmul} or {@code matmul_bp}) with ND4J's integer arguments
   * (transpose x, transpose y, transpose result) and floating arguments (alpha, beta), or null
   * where this class does not apply.
   */
  static Runnable kernel(String opName, INDArray[] in, INDArray[] out, long[] iArgs, double[] tArgs) {
    boolean backward = opName.equals("matmul_bp");
    if (!backward && !opName.equals("matmul")) {
      return null;
    }
    if (!OneDnn.available() || in.length != (backward ? 3 : 2) || out.length != (backward ? 2 : 1)
        || (iArgs.length > 2 && iArgs[2] != 0) || !unscaled(tArgs)) {
      return null;
    }
    INDArray x = in[0];
    INDArray y = in[1];
    int rank = x.rank();
    if ((rank != 2 && rank != 3) || y.rank() != rank || (rank == 3 && x.size(0) != y.size(0))) {
      return null;
    }
    for (INDArray a : in) {
      if (!usable(a, rank)) {
        return null;
      }
    }
    for (INDArray a : out) {
      if (!usable(a, rank)) {
        return null;
      }
    }
    boolean tx = iArgs.length > 0 && iArgs[0] != 0;
    boolean ty = iArgs.length > 1 && iArgs[1] != 0;
    OneDnn.Kernel k = new OneDnn.Kernel();
    try {
      if (!backward) {
        // z = op(x) op(y)
        product(k, x, tx, y, ty, out[0]);
      } else {
        INDArray dz = in[2];
        // d op(x) = dz op(y)^T, so dx = dz op(y)^T, or its transpose op(y) dz^T when x was transposed
        if (!tx) {
          product(k, dz, false, y, !ty, out[0]);
        } else {
          product(k, y, ty, dz, true, out[0]);
        }
        // d op(y) = op(x)^T dz, so dy = op(x)^T dz, or its transpose dz^T op(x) when y was transposed
        if (!ty) {
          product(k, x, !tx, dz, false, out[1]);
        } else {
          product(k, dz, true, x, tx, out[1]);
        }
      }
    } catch (RuntimeException e) {
      return null; // a layout oneDNN has no kernel for: ND4J's op runs
    }
    return k;
  }

  /** Adds dst = op(a) op(b) to the kernel, op transposing the last two axes where asked. */
  private static void product(OneDnn.Kernel k, INDArray a, boolean ta, INDArray b, boolean tb, INDArray dst) {
    memory src = k.plain(a, dims(a, ta), perm(a.rank(), ta));
    memory weights = k.plain(b, dims(b, tb), perm(b.rank(), tb));
    memory out = k.plain(dst, dst.shape(), perm(dst.rank(), false));
    matmul.primitive_desc pd = new matmul.primitive_desc(new matmul.desc(src.get_desc(), weights.get_desc(),
        out.get_desc()), OneDnn.cpu());
    IntMemoryMap args = new IntMemoryMap();
    args.put(dnnl.DNNL_ARG_SRC, src);
    args.put(dnnl.DNNL_ARG_WEIGHTS, weights);
    args.put(dnnl.DNNL_ARG_DST, out);
    k.add(new matmul(pd), args);
  }

  private static int[] perm(int rank, boolean transposed) {
    if (rank == 2) {
      return transposed ? new int[] {1, 0} : new int[] {0, 1};
    }
    return transposed ? new int[] {0, 2, 1} : new int[] {0, 1, 2};
  }

  private static long[] dims(INDArray a, boolean transposed) {
    int[] p = perm(a.rank(), transposed);
    long[] d = new long[p.length];
    for (int i = 0; i < p.length; i++) {
      d[i] = a.size(p[i]);
    }
    return d;
  }

  private static boolean unscaled(double[] tArgs) {
    return tArgs.length == 0 || (tArgs[0] == 1.0 && (tArgs.length < 2 || tArgs[1] == 0.0));
  }

  /**
   * A float array of that rank with no axis of size 1: ND4J gives such axes arbitrary strides (a
   * [4, 1] array has strides [1, 1]), which oneDNN refuses when it runs; those small products stay
   * with ND4J.
   */
  private static boolean usable(INDArray a, int rank) {
    if (a.dataType() != DataType.FLOAT || a.isEmpty() || a.rank() != rank) {
      return false;
    }
    for (long d : a.shape()) {
      if (d < 2) {
        return false;
      }
    }
    return true;
  }
}
