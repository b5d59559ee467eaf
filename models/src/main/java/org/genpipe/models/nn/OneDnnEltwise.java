package org.genpipe.models.nn;

import java.util.Arrays;
import org.bytedeco.dnnl.IntMemoryMap;
import org.bytedeco.dnnl.eltwise_backward;
import org.bytedeco.dnnl.eltwise_forward;
import org.bytedeco.dnnl.memory;
import org.bytedeco.dnnl.global.dnnl;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.scalar.Step;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.MulOp;
import org.nd4j.linalg.api.ops.impl.transforms.strict.SwishDerivative;
import org.nd4j.linalg.factory.Nd4j;

/**
 * SiLU ({@code swish}) and its derivative ({@code _swishderivative}, which SameDiff multiplies by
 * the incoming gradient), and {@link FastGrad#relu}, in a compiled plan through oneDNN's vectorised
 * eltwise kernels; where an activation's derivative (SiLU's, or ReLU's {@code step}) feeds only the
 * multiply by the gradient, the plan runs both as one backward kernel ({@link #backward}: one pass
 * instead of two, ~1 ms of a DDPM step's 26 SiLUs each).
 *
 * <p>ND4J M2.1 computes both with a scalar {@code exp} per element: on 1.5M floats its swish takes
 * ~8.6 ms and its derivative ~12.5 ms against ~2.4 ms for a multiply, so a DDPM step of ~40 SiLUs
 * spent a fifth of its time there. oneDNN's kernels evaluate {@code exp} with a polynomial and are
 * not bit-identical to ND4J's (a few ulp), unlike {@link OneDnnConvolutions}: a plan compiled for
 * {@code checked} mode, which compares plans with SameDiff bit for bit, leaves these ops to ND4J, and
 * a test bounds the difference.
 */
final class OneDnnEltwise {
  private OneDnnEltwise() {}

  /**
   * A kernel for {@code swish}, {@code _swishderivative} or {@link FastGrad#relu}'s
   * {@code genpipe_relu} on float arrays, or null where it does not apply.
   */
  static Runnable kernel(String opName, INDArray[] in, INDArray[] out) {
    boolean relu = opName.equals(FastGrad.Relu.NAME);
    boolean forward = relu || opName.equals("swish");
    if (!forward && !opName.equals("_swishderivative")) {
      return null;
    }
    if (!OneDnn.available() || in.length != 1 || out.length != 1 || !OneDnn.wholeArray(in[0])
        || !OneDnn.wholeArray(out[0]) || !Arrays.equals(in[0].shape(), out[0].shape())) {
      return null;
    }
    dnnl.algorithm algorithm = relu ? dnnl.algorithm.eltwise_relu : dnnl.algorithm.eltwise_swish;
    if (!forward) {
      // the derivative alone: the backward kernel times a gradient of ones
      INDArray ones = Nd4j.ones(DataType.FLOAT, in[0].length());
      OneDnn.Kernel k = backwardKernel(algorithm, in[0], ones, out[0]);
      k.keep(ones);
      return k;
    }
    OneDnn.Kernel k = new OneDnn.Kernel();
    IntMemoryMap args = new IntMemoryMap();
    args.put(dnnl.DNNL_ARG_SRC, k.flat(in[0]));
    args.put(dnnl.DNNL_ARG_DST, k.flat(out[0]));
    k.add(new eltwise_forward(new eltwise_forward.primitive_desc(new eltwise_forward.desc(
        dnnl.prop_kind.forward_inference, algorithm, flat(in[0]), alpha(algorithm), 0f), OneDnn.cpu())), args);
    return k;
  }

  /**
   * An activation's backward, {@code out = f'(x) * grad} for SiLU ({@code eltwise_swish}) or ReLU
   * ({@code eltwise_relu}, derivative 0 at 0 as ND4J's step), in one pass (oneDNN's eltwise backward
   * with the gradient as its input gradient): a plan fuses the derivative and the multiply SameDiff
   * writes for it. Arrays oneDNN cannot bind (views) get ND4J's two ops.
   */
  static Runnable backward(dnnl.algorithm algorithm, INDArray x, INDArray grad, INDArray out) {
    if (!OneDnn.available() || !OneDnn.wholeArray(x) || !OneDnn.wholeArray(grad) || !OneDnn.wholeArray(out)
        || !Arrays.equals(x.shape(), grad.shape()) || !Arrays.equals(x.shape(), out.shape())) {
      INDArray derivative = x.ulike();
      return () -> {
        Nd4j.exec(algorithm == dnnl.algorithm.eltwise_relu ? new Step(x, derivative, 0.0)
            : new SwishDerivative(x, derivative));
        Nd4j.exec(new MulOp(derivative, grad, out));
      };
    }
    return backwardKernel(algorithm, x, grad, out);
  }

  /** {@code out = f'(x) * grad} as oneDNN's eltwise backward, on whole float arrays of one length. */
  private static OneDnn.Kernel backwardKernel(dnnl.algorithm algorithm, INDArray x, INDArray grad, INDArray out) {
    memory.desc md = flat(x);
    eltwise_forward.primitive_desc hint = new eltwise_forward.primitive_desc(new eltwise_forward.desc(
        dnnl.prop_kind.forward_training, algorithm, md, alpha(algorithm), 0f), OneDnn.cpu());
    OneDnn.Kernel k = new OneDnn.Kernel();
    IntMemoryMap args = new IntMemoryMap();
    args.put(dnnl.DNNL_ARG_SRC, k.flat(x));
    args.put(dnnl.DNNL_ARG_DIFF_DST, k.flat(grad));
    args.put(dnnl.DNNL_ARG_DIFF_SRC, k.flat(out));
    k.add(new eltwise_backward(new eltwise_backward.primitive_desc(new eltwise_backward.desc(algorithm, md, md,
        alpha(algorithm), 0f), OneDnn.cpu(), hint)), args);
    return k;
  }

  /** {@code a}'s values as one flat float vector. */
  private static memory.desc flat(INDArray a) {
    return new memory.desc(new long[] {a.length()}, memory.data_type.f32, memory.format_tag.x);
  }

  /** oneDNN's alpha: swish's beta in x * sigmoid(beta * x), 1; ReLU's negative slope, 0. */
  private static float alpha(dnnl.algorithm algorithm) {
    return algorithm == dnnl.algorithm.eltwise_relu ? 0f : 1f;
  }
}
