package org.genpipe.models.nn;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Swish;
import org.nd4j.linalg.api.ops.impl.transforms.strict.SwishDerivative;
import org.nd4j.linalg.factory.Nd4j;

/**
 * oneDNN's SiLU and SiLU derivative against their double-precision values and ND4J's ops: within a
 * few float ulp over the range a network sees and in the tails (where ND4J's derivative overflows to
 * NaN and oneDNN's does not); the arrays it does not take; and a
 * plan compiled outside checked mode using them, its outputs and gradients close to SameDiff's.
 */
class OneDnnEltwiseTest {
  /** Relative bound, in units of float epsilon, on the difference to ND4J's value (absolute near zero). */
  private static final double ULPS = 8;

  @Test
  void siluAndItsDerivativeAgreeWithNd4jToAFewUlp() {
    float[] values = new float[200_000];
    java.util.Random random = new java.util.Random(7);
    float[] tails = {-100f, -88f, -0f, 0f, 88f, 100f, 1e-20f, -1e-20f, Float.MIN_NORMAL};
    for (int i = 0; i < values.length; i++) {
      // a fine grid over [-30, 30], draws at the scale of activations, the tails
      values[i] = i < 120_000 ? -30f + 60f * i / 120_000 : i < values.length - tails.length
          ? (float) (3 * random.nextGaussian()) : tails[i - (values.length - tails.length)];
    }
    INDArray x = Nd4j.createFromArray(values).reshape(10, -1).dup();
    INDArray expected = Nd4j.exec(new Swish(x.dup()));
    INDArray expectedDerivative = Nd4j.exec(new SwishDerivative(x.dup()));
    INDArray y = x.ulike();
    INDArray d = x.ulike();
    OneDnnEltwise.kernel("swish", new INDArray[] {x}, new INDArray[] {y}).run();
    OneDnnEltwise.kernel("_swishderivative", new INDArray[] {x}, new INDArray[] {d}).run();
    assertClose("swish", expected, y);
    assertClose("_swishderivative", expectedDerivative, d);
  }

  @Test
  void viewsOtherTypesAndOtherOpsAreLeftToNd4j() {
    INDArray x = Nd4j.randn(DataType.FLOAT, 4, 6);
    INDArray out = x.ulike();
    assertThat(OneDnnEltwise.kernel("swish", new INDArray[] {x}, new INDArray[] {out})).isNotNull();
    assertThat(OneDnnEltwise.kernel("sigmoid", new INDArray[] {x}, new INDArray[] {out})).as("other op").isNull();
    INDArray view = Nd4j.randn(DataType.FLOAT, 4, 12).get(org.nd4j.linalg.indexing.NDArrayIndex.all(),
        org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 6));
    assertThat(OneDnnEltwise.kernel("swish", new INDArray[] {view}, new INDArray[] {out})).as("view").isNull();
    assertThat(OneDnnEltwise.kernel("swish", new INDArray[] {x}, new INDArray[] {x.transpose().dup().transpose()}))
        .as("other memory order").isNull();
    INDArray dx = x.castTo(DataType.DOUBLE);
    assertThat(OneDnnEltwise.kernel("swish", new INDArray[] {dx}, new INDArray[] {dx.ulike()})).as("double").isNull();
  }

  @Test
  void aPlanOutsideCheckedModeRunsTheKernelsAndStaysCloseToSameDiff() {
    SameDiff sd = SameDiff.create();
    SDVariable in = sd.placeHolder("in", DataType.FLOAT, -1, 64);
    SDVariable w = sd.var("w", Nd4j.randn(DataType.FLOAT, 64, 64).muli(0.3));
    SDVariable h = sd.nn().swish(in.mmul(w));
    SDVariable loss = sd.nn().swish(h.mmul(w)).mul(h.mmul(w)).mean().rename("loss");
    sd.setLossVariables(loss);
    Map<String, INDArray> ph = Map.of("in", Nd4j.randn(DataType.FLOAT, 32, 64));
    OutAndGrad reference = sd.calculateGradientsAndOutputs(ph, List.of("loss"), List.of("w"));
    INDArray refLoss = reference.getOutputs().get("loss").dup();
    INDArray refGrad = reference.getGradients().get("w").dup();

    GraphPlan fast = GraphPlan.record(sd, ph, List.of("loss"), List.of("w"), Map.of(), false);
    OutAndGrad result = fast.run(ph);
    assertThat(fast.kernels("swish")).as("2 swish").isEqualTo(2);
    assertThat(fast.kernels("swish_bp")).as("their backward: derivative and multiply fused").isEqualTo(2);
    assertThat(fast.kernels("_swishderivative") + fast.kernels("multiply")).as("nothing left of them").isZero();
    assertClose("loss", refLoss, result.getOutputs().get("loss"));
    double scale = refGrad.norm2Number().doubleValue();
    assertThat(result.getGradients().get("w").sub(refGrad).norm2Number().doubleValue()).isLessThan(1e-5 * scale);

    GraphPlan exact = GraphPlan.record(sd, ph, List.of("loss"), List.of("w"));
    assertThat(exact.kernels()).as("checked-mode plans keep ND4J's ops").isZero();
    OutAndGrad same = exact.run(ph);
    assertThat(same.getOutputs().get("loss")).isEqualTo(refLoss);
    assertThat(same.getGradients().get("w")).isEqualTo(refGrad);
  }

  @Test
  void siluBackwardInOnePassAgreesWithTheDerivativeTimesTheGradient() {
    INDArray x = Nd4j.randn(DataType.FLOAT, 50, 40).muli(3);
    INDArray grad = Nd4j.randn(DataType.FLOAT, 50, 40);
    INDArray expected = Nd4j.exec(new SwishDerivative(x.dup())).muli(grad);
    INDArray out = x.ulike();
    OneDnnEltwise.backward(org.bytedeco.dnnl.global.dnnl.algorithm.eltwise_swish, x, grad, out).run();
    assertClose("swish backward", expected, out, 2);
    // a view of the gradient: ND4J's two ops
    INDArray wide = Nd4j.randn(DataType.FLOAT, 50, 80);
    INDArray view = wide.get(org.nd4j.linalg.indexing.NDArrayIndex.all(),
        org.nd4j.linalg.indexing.NDArrayIndex.interval(0, 40));
    INDArray viaNd4j = x.ulike();
    OneDnnEltwise.backward(org.bytedeco.dnnl.global.dnnl.algorithm.eltwise_swish, x, view, viaNd4j).run();
    assertThat(viaNd4j).isEqualTo(Nd4j.exec(new SwishDerivative(x.dup())).muli(view));
  }

  @Test
  void reluAndItsOnePassBackwardMatchNd4j() {
    INDArray x = Nd4j.randn(DataType.FLOAT, 30, 40);
    x.putScalar(0, 0f); // the derivative at 0 is 0, as ND4J's step
    INDArray grad = Nd4j.randn(DataType.FLOAT, 30, 40);
    INDArray y = x.ulike();
    OneDnnEltwise.kernel(FastGrad.Relu.NAME, new INDArray[] {x}, new INDArray[] {y}).run();
    assertThat(y).isEqualTo(org.nd4j.linalg.ops.transforms.Transforms.relu(x, true));
    INDArray out = x.ulike();
    OneDnnEltwise.backward(org.bytedeco.dnnl.global.dnnl.algorithm.eltwise_relu, x, grad, out).run();
    assertThat(out).isEqualTo(Nd4j.exec(new org.nd4j.linalg.api.ops.impl.scalar.Step(x.dup(), 0.0)).muli(grad));

    SameDiff sd = SameDiff.create();
    SDVariable in = sd.placeHolder("in", DataType.FLOAT, -1, 16);
    SDVariable w = sd.var("w", Nd4j.randn(DataType.FLOAT, 16, 16).muli(0.3));
    sd.setLossVariables(FastGrad.relu(sd, in.mmul(w)).mul(in).mean().rename("loss"));
    Map<String, INDArray> ph = Map.of("in", Nd4j.randn(DataType.FLOAT, 8, 16));
    INDArray refGrad = sd.calculateGradientsAndOutputs(ph, List.of("loss"), List.of("w")).getGradients().get("w").dup();
    GraphPlan fast = GraphPlan.record(sd, ph, List.of("loss"), List.of("w"), Map.of(), false);
    INDArray grad2 = fast.run(ph).getGradients().get("w");
    assertThat(fast.kernels(FastGrad.Relu.NAME)).as("relu").isEqualTo(1);
    assertThat(fast.kernels("relu_bp")).as("step and multiply fused").isEqualTo(1);
    assertThat(fast.kernels("step")).isZero();
    assertThat(grad2.sub(refGrad).amaxNumber().doubleValue()).isLessThan(1e-6);
  }

  private static void assertClose(String what, INDArray expected, INDArray actual) {
    assertClose(what, expected, actual, 1);
  }

  /** Within {@code times} x {@link #ULPS} of {@code expected}, where that is finite. */
  private static void assertClose(String what, INDArray expected, INDArray actual, int times) {
    float[] e = expected.data().asFloat();
    float[] a = actual.data().asFloat();
    for (int i = 0; i < e.length; i++) {
      if (!Float.isFinite(e[i])) {
        continue;
      }
      double tolerance = times * ULPS * Math.ulp(Math.max(Math.abs(e[i]), 1f));
      if (!(Math.abs(e[i] - a[i]) <= tolerance)) {
        throw new AssertionError(what + " at element " + i + ": ND4J " + e[i] + ", oneDNN " + a[i]);
      }
    }
  }
}
