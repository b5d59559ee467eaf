package org.genpipe.models.nn;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.junit.jupiter.api.Test;

/** FastGrad's ops against ND4J's own: same outputs, same gradients, on NCHW and [N, F] inputs. */
class FastGradTest {
  private static final int[] NCHW_AXES = {0, 2, 3};

  @Test
  void reluMatchesNd4jIncludingZeroInputs() {
    INDArray x = Noise.gaussian(1, 4, 3, 5, 5);
    x.putScalar(0, 0f);
    x.putScalar(1, 0f);
    compare(x, null, (sd, v) -> sd.nn().relu(v[0], 0), (sd, v) -> FastGrad.relu(sd, v[0]));
    assertThat(gradientOps(x, null, (sd, v) -> FastGrad.relu(sd, v[0]))).doesNotContain("thresholdedrelu_bp", "relu_bp");
  }

  @Test
  void leakyReluMatchesNd4j() {
    // away from 0 (at 0 itself ND4J's lrelu_bp and the step mask pick different one-sided slopes)
    INDArray x = Noise.gaussian(6, 4, 3, 5, 5);
    compare(x, null, (sd, v) -> sd.nn().leakyRelu(v[0], 0.2), (sd, v) -> FastGrad.leakyRelu(sd, v[0], 0.2));
    assertThat(gradientOps(x, null, (sd, v) -> FastGrad.leakyRelu(sd, v[0], 0.2))).doesNotContain("lrelu_bp");
  }

  @Test
  void bceWithLogitsMatchesTheWrittenOutStableFormEvenForLargeLogits() {
    INDArray logits = Noise.gaussian(7, 4, 1, 6, 6).muli(30); // |l| up to ~100: exp(-l) overflows a naive form
    INDArray targets = org.nd4j.linalg.ops.transforms.Transforms.sigmoid(Noise.gaussian(8, 4, 1, 6, 6), false);
    BiFunction<SameDiff, SDVariable[], SDVariable> written = (sd, v) -> FastGrad.relu(sd, v[0])
        .sub(v[0].mul(sd.constant(targets)))
        .add(sd.math().log(sd.math().exp(sd.math().abs(v[0]).neg()).add(1.0)));
    compare(logits, null, written, (sd, v) -> FastGrad.bceWithLogits(sd, v[0], sd.constant(targets)));
    OutAndGrad fast = run(logits, null, (sd, v) -> FastGrad.bceWithLogits(sd, v[0], sd.constant(targets)));
    assertThat(fast.getOutputs().get("y").isInfinite().any()).isFalse();
    assertThat(fast.getOutputs().get("y").minNumber().doubleValue()).isGreaterThanOrEqualTo(0.0);
    assertThat(count(gradientOps(logits, null, (sd, v) -> FastGrad.bceWithLogits(sd, v[0], sd.constant(targets))),
        "sigm_cross_entropy_loss_grad")).isZero();
  }

  @Test
  void channelMulAndAddMatchBroadcastOps() {
    INDArray x = Noise.gaussian(2, 4, 3, 5, 5);
    INDArray s = Noise.gaussian(3, 1, 3, 1, 1);
    compare(x, s, (sd, v) -> v[0].mul(v[1]), (sd, v) -> FastGrad.channelMul(sd, v[0], v[1], NCHW_AXES));
    compare(x, s, (sd, v) -> v[0].add(v[1]), (sd, v) -> FastGrad.channelAdd(sd, v[0], v[1], NCHW_AXES));
    // the gradient graph uses the cheap ops instead of ND4J's broadcast backward kernels (the loss's
    // own same-shape multiply keeps one multiply_bp in both graphs)
    assertThat(count(gradientOps(x, s, (sd, v) -> FastGrad.channelMul(sd, v[0], v[1], NCHW_AXES)), "multiply_bp"))
        .isLessThan(count(gradientOps(x, s, (sd, v) -> v[0].mul(v[1])), "multiply_bp"));
    assertThat(count(gradientOps(x, s, (sd, v) -> FastGrad.channelAdd(sd, v[0], v[1], NCHW_AXES)), "add_bp"))
        .isLessThan(count(gradientOps(x, s, (sd, v) -> v[0].add(v[1])), "add_bp"));
    INDArray f = Noise.gaussian(4, 6, 7);
    INDArray t = Noise.gaussian(5, 1, 7);
    compare(f, t, (sd, v) -> v[0].mul(v[1]), (sd, v) -> FastGrad.channelMul(sd, v[0], v[1], 0));
    compare(f, t, (sd, v) -> v[0].add(v[1]), (sd, v) -> FastGrad.channelAdd(sd, v[0], v[1], 0));
  }

  /** Output and gradients of sum(op(x, s) * w) for a fixed random w, by both ops. */
  private static void compare(INDArray x, INDArray s, BiFunction<SameDiff, SDVariable[], SDVariable> reference,
      BiFunction<SameDiff, SDVariable[], SDVariable> fast) {
    OutAndGrad a = run(x, s, reference);
    OutAndGrad b = run(x, s, fast);
    assertThat(maxAbsDiff(a.getOutputs().get("y"), b.getOutputs().get("y"))).isLessThan(1e-6);
    assertThat(maxAbsDiff(a.getGradients().get("x"), b.getGradients().get("x"))).isLessThan(1e-5);
    if (s != null) {
      assertThat(maxAbsDiff(a.getGradients().get("s"), b.getGradients().get("s"))).isLessThan(1e-4);
    }
  }

  private static OutAndGrad run(INDArray x, INDArray s, BiFunction<SameDiff, SDVariable[], SDVariable> op) {
    SameDiff sd = build(x, s, op);
    List<String> wrt = s == null ? List.of("x") : List.of("x", "s");
    return sd.calculateGradientsAndOutputs(Map.of(), List.of("y"), wrt);
  }

  private static List<String> gradientOps(INDArray x, INDArray s, BiFunction<SameDiff, SDVariable[], SDVariable> op) {
    SameDiff grad = build(x, s, op).getFunction("grad");
    return grad.getOps().values().stream().map(o -> o.getOp().opName()).toList();
  }

  private static long count(List<String> ops, String name) {
    return ops.stream().filter(name::equals).count();
  }

  private static SameDiff build(INDArray x, INDArray s, BiFunction<SameDiff, SDVariable[], SDVariable> op) {
    SameDiff sd = SameDiff.create();
    SDVariable vx = sd.var("x", x.dup());
    SDVariable vs = s == null ? null : sd.var("s", s.dup());
    SDVariable y = sd.identity("y", op.apply(sd, new SDVariable[] {vx, vs}));
    SDVariable w = sd.constant(Noise.gaussian(9, x.shape()));
    sd.setLossVariables(y.mul(w).sum());
    Graphs.buildGradients(sd);
    return sd;
  }

  private static double maxAbsDiff(INDArray a, INDArray b) {
    assertThat(a.shape()).isEqualTo(b.shape());
    return a.castTo(DataType.DOUBLE).sub(b.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
  }
}
