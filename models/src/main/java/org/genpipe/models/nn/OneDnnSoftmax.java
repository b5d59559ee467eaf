package org.genpipe.models.nn;

import org.bytedeco.dnnl.IntMemoryMap;
import org.bytedeco.dnnl.memory;
import org.bytedeco.dnnl.softmax_backward;
import org.bytedeco.dnnl.softmax_forward;
import org.bytedeco.dnnl.global.dnnl;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * ND4J's {@code softmax_bp} (the softmax's input and the output's gradient in, the input's gradient
 * out) over the last axis in a compiled plan through oneDNN: the softmax again into a scratch array,
 * then oneDNN's softmax backward. ND4J M2.1's op takes ~0.5 ms on the DDPM's [16, 192, 192]
 * attention weights. The results agree with ND4J's to float rounding: plans compiled for
 * {@code checked} mode keep ND4J's op.
 */
final class OneDnnSoftmax {
  private OneDnnSoftmax() {}

  /** A kernel for {@code softmax_bp} over the last axis ({@code iArgs[0]}), or null where it does not apply. */
  static Runnable kernel(String opName, INDArray[] in, INDArray[] out, long[] iArgs) {
    if (!opName.equals("softmax_bp") || !OneDnn.available() || in.length != 2 || out.length != 1) {
      return null;
    }
    INDArray x = in[0];
    int rank = x.rank();
    long axis = iArgs.length > 0 ? iArgs[0] : rank - 1;
    if (rank < 2 || (axis != rank - 1 && axis != -1)) {
      return null;
    }
    for (INDArray a : new INDArray[] {x, in[1], out[0]}) {
      if (!OneDnn.wholeArray(a) || !java.util.Arrays.equals(a.shape(), x.shape())) {
        return null;
      }
    }
    long d = x.size(rank - 1);
    long rows = x.length() / d;
    INDArray y = Nd4j.create(DataType.FLOAT, x.shape());
    OneDnn.Kernel k = new OneDnn.Kernel();
    k.keep(y);
    memory src = k.dense(x, rows, d);
    memory dst = k.dense(y, rows, d);
    softmax_forward.primitive_desc fwd = new softmax_forward.primitive_desc(new softmax_forward.desc(
        dnnl.prop_kind.forward_training, src.get_desc(), 1), OneDnn.cpu());
    IntMemoryMap args = new IntMemoryMap();
    args.put(dnnl.DNNL_ARG_SRC, src);
    args.put(dnnl.DNNL_ARG_DST, dst);
    k.add(new softmax_forward(fwd), args);
    memory diff = k.dense(in[1], rows, d);
    IntMemoryMap back = new IntMemoryMap();
    back.put(dnnl.DNNL_ARG_DST, dst);
    back.put(dnnl.DNNL_ARG_DIFF_DST, diff);
    back.put(dnnl.DNNL_ARG_DIFF_SRC, k.dense(out[0], rows, d));
    k.add(new softmax_backward(new softmax_backward.primitive_desc(new softmax_backward.desc(diff.get_desc(),
        dst.get_desc(), 1), OneDnn.cpu(), fwd)), back);
    return k;
  }
}
