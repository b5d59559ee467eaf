package org.genpipe.models.nn;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * The plan's oneDNN convolutions against ND4J's own ops on the same arrays: every output equal bit
 * for bit, weights given as views into a larger flat array (as {@link Net} places them), backward
 * ops without the input gradient, and the cases the kernels leave to ND4J.
 */
class OneDnnConvolutionsTest {
  private static final long N = 5;

  @Test
  void theKernelsAreInUseOnThisBuild() {
    // the project's default ND4J build is the onednn one: plans must not silently fall back
    assertThat(OneDnn.available()).as("oneDNN kernels available").isTrue();
  }

  /**
   * in, out channels; input size; kernel; stride; padding; bias. The last three have the channels for
   * the blocked forward outside checked mode (the output's, then both).
   */
  @ParameterizedTest
  @CsvSource({"1, 8, 28, 3, 2, 1, true", "8, 16, 14, 3, 2, 1, false", "3, 6, 9, 4, 2, 1, true", "4, 5, 7, 3, 1, 0, true",
      "8, 32, 12, 3, 1, 1, true", "32, 32, 12, 3, 1, 1, true", "32, 64, 12, 3, 2, 1, false"})
  void convolutionForwardAndBackwardAreBitIdenticalToNd4j(int in, int out, int size, int k, int s, int p, boolean bias) {
    long outSize = (size + 2L * p - k) / s + 1;
    long[] iArgs = {k, k, s, s, p, p, 1, 1, 0, 0, 0};
    INDArray x = Nd4j.randn(DataType.FLOAT, N, in, size, size);
    INDArray w = viewInFlat(k, k, in, out);
    INDArray b = Nd4j.randn(DataType.FLOAT, out);
    INDArray g = Nd4j.randn(DataType.FLOAT, N, out, outSize, outSize);
    INDArray[] fwdIn = bias ? new INDArray[] {x, w, b} : new INDArray[] {x, w};
    compare("conv2d", fwdIn, new long[][] {{N, out, outSize, outSize}}, iArgs);
    INDArray[] bpIn = bias ? new INDArray[] {x, w, b, g} : new INDArray[] {x, w, g};
    long[][] bpOut = bias ? new long[][] {x.shape(), w.shape(), b.shape()} : new long[][] {x.shape(), w.shape()};
    compare("conv2d_bp", bpIn, bpOut, iArgs);
  }

  /**
   * A convolution's backward data and backward weights both read the output's gradient, in the same
   * blocked format at these widths: the kernel copies it into that format once.
   */
  @Test
  void theBackwardKernelCopiesTheOutputsGradientOnce() {
    INDArray x = Nd4j.randn(DataType.FLOAT, N, 32, 12, 12);
    INDArray w = Nd4j.randn(DataType.FLOAT, 3, 3, 32, 32);
    INDArray g = Nd4j.randn(DataType.FLOAT, N, 32, 12, 12);
    long[] iArgs = {3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0};
    INDArray[] out = {x.ulike(), w.ulike()};
    OneDnn.Kernel k = (OneDnn.Kernel) OneDnnConvolutions.kernel("conv2d_bp", new INDArray[] {x, w, g}, out, iArgs, true, true);
    assertThat(k.copiesOf(x)).as("the input, for backward weights").isEqualTo(1);
    assertThat(k.copiesOf(g)).as("the output's gradient, for both primitives").isEqualTo(1);
  }

  /** in, out channels; input size; kernel; stride (no padding: Layers crops instead). */
  @ParameterizedTest
  @CsvSource({"32, 16, 3, 3, 2", "8, 1, 14, 3, 2", "6, 3, 5, 4, 2", "4, 4, 6, 3, 1"})
  void transposedConvolutionForwardAndBackwardAreBitIdenticalToNd4j(int in, int out, int size, int k, int s) {
    long outSize = (size - 1L) * s + k;
    long[] iArgs = {k, k, s, s, 0, 0, 1, 1, 0, 0, 0};
    INDArray x = Nd4j.randn(DataType.FLOAT, N, in, size, size);
    INDArray w = viewInFlat(k, k, out, in);
    INDArray g = Nd4j.randn(DataType.FLOAT, N, out, outSize, outSize);
    compare("deconv2d", new INDArray[] {x, w}, new long[][] {{N, out, outSize, outSize}}, iArgs);
    compare("deconv2d_bp", new INDArray[] {x, w, g}, new long[][] {x.shape(), w.shape()}, iArgs);
  }

  @Test
  void casesTheKernelsDoNotCoverRunNd4jsOp() {
    INDArray x = Nd4j.randn(DataType.FLOAT, N, 2, 8, 8);
    INDArray w = Nd4j.randn(DataType.FLOAT, 3, 3, 2, 4);
    INDArray[] out = {Nd4j.create(DataType.FLOAT, N, 4, 4, 4)};
    assertThat(OneDnnConvolutions.kernel("conv2d", new INDArray[] {x, w}, out, new long[] {3, 3, 2, 2, 1, 1, 2, 2, 0, 0, 0}, true, true))
        .as("dilation 2").isNull();
    assertThat(OneDnnConvolutions.kernel("conv2d", new INDArray[] {x, w}, out, new long[] {3, 3, 2, 2, 1, 1, 1, 1, 1, 0, 0}, true, true))
        .as("SAME padding").isNull();
    assertThat(OneDnnConvolutions.kernel("conv2d", new INDArray[] {x, w}, out, new long[] {3, 3, 2, 2, 1, 1, 1, 1, 0, 1, 0}, true, true))
        .as("NHWC").isNull();
    assertThat(OneDnnConvolutions.kernel("conv2d", new INDArray[] {x.castTo(DataType.DOUBLE), w.castTo(DataType.DOUBLE)},
        new INDArray[] {out[0].castTo(DataType.DOUBLE)}, new long[] {3, 3, 2, 2, 1, 1, 1, 1, 0, 0, 0}, true, true))
        .as("double").isNull();
    assertThat(OneDnnConvolutions.kernel("matmul", new INDArray[] {x, w}, out, new long[0], true, true)).as("other op").isNull();
  }

  /**
   * Runs ND4J's op and the kernel on the same inputs into fresh outputs; all outputs must be equal bit
   * for bit. Outside checked mode the forward (on 16-channel blocked activations where the channels
   * allow: not ND4J's kernel) must be within float rounding of ND4J's.
   */
  private static void compare(String op, INDArray[] in, long[][] outShapes, long[] iArgs) {
    List<INDArray> expected = new ArrayList<>();
    List<INDArray> actual = new ArrayList<>();
    for (long[] shape : outShapes) {
      expected.add(Nd4j.create(DataType.FLOAT, shape));
      actual.add(Nd4j.valueArrayOf(shape, Float.NaN, DataType.FLOAT));
    }
    Nd4jOp.run(op, in, expected.toArray(new INDArray[0]), iArgs);
    Runnable kernel = OneDnnConvolutions.kernel(op, in, actual.toArray(new INDArray[0]), iArgs, true, true);
    assertThat(kernel).as(op + " has a kernel").isNotNull();
    kernel.run();
    kernel.run(); // runs again on the same arrays (reorders and buffers are reused)
    for (int i = 0; i < outShapes.length; i++) {
      float[] e = expected.get(i).data().asFloat();
      float[] a = actual.get(i).dup('c').data().asFloat();
      assertThat(a).as(op + " output " + i).containsExactly(e);
    }
    if (op.equals("conv2d")) {
      INDArray loose = Nd4j.valueArrayOf(outShapes[0], Float.NaN, DataType.FLOAT);
      OneDnnConvolutions.kernel(op, in, new INDArray[] {loose}, iArgs, true, false).run();
      double scale = expected.get(0).amaxNumber().doubleValue();
      assertThat(expected.get(0).sub(loose).amaxNumber().doubleValue()).as(op + " outside checked mode, max abs difference")
          .isLessThan(1e-5 * scale);
    }
    if (op.endsWith("_bp")) {
      // without the input's gradient: the same weight (and bias) gradients, the input's untouched
      List<INDArray> partial = new ArrayList<>();
      for (long[] shape : outShapes) {
        partial.add(Nd4j.valueArrayOf(shape, Float.NaN, DataType.FLOAT));
      }
      OneDnnConvolutions.kernel(op, in, partial.toArray(new INDArray[0]), iArgs, false, true).run();
      assertThat(partial.get(0).data().asFloat()).as(op + " input gradient left out").containsOnly(Float.NaN);
      for (int i = 1; i < outShapes.length; i++) {
        assertThat(partial.get(i).data().asFloat()).as(op + " output " + i + " without the input gradient")
            .containsExactly(expected.get(i).data().asFloat());
      }
    }
  }

  /** An array of {@code shape} placed inside a larger flat array, as Net places parameters. */
  private static INDArray viewInFlat(long... shape) {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    INDArray flat = Nd4j.randn(DataType.FLOAT, n + 17);
    return flat.get(NDArrayIndex.interval(7, 7 + n)).reshape('c', shape);
  }
}
