package org.genpipe.models.nn;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Normalisation layers fused into oneDNN kernels in plans outside checked mode: group, batch (over
 * images and over features) and instance norm, each input also read elsewhere (so its gradient is a
 * sum), with non-trivial scales and shifts; outputs, batch statistics and every gradient within
 * float rounding of SameDiff's; the same graph in checked mode keeps its ops; and a plan of the
 * outputs alone (inference) fuses the forward kernels.
 */
class OneDnnNormTest {
  @AfterEach
  void interpretedByDefaultAgain() {
    System.clearProperty(GraphPlan.Compiled.MODE_PROPERTY);
  }

  private record Net(SameDiff sd, List<String> params, List<String> stats) {}

  private static Net graph() {
    Layers layers = new Layers(SameDiff.create(), 3);
    SameDiff sd = layers.sd();
    SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, 8, 4, 6);
    SDVariable a = layers.conv2d("c1", x, 8, 8, 3, 1, 1);
    SDVariable g = layers.groupNorm("gn", a, 8, 2, 4, 6);
    SDVariable b = layers.batchNorm("bn", FastGrad.relu(sd, g).add(a), 8, 24, true);
    SDVariable i = layers.instanceNorm(b.mul(1.5).add(b));
    SDVariable flat = layers.dense("d", i.add(b).reshape(-1, 8 * 24), 8 * 24, 10);
    SDVariable f = layers.batchNorm("bnf", flat, 10, 0, true);
    SDVariable out = f.mul(f).sum(1).add(flat.sum(1));
    sd.identity("h", i);
    sd.setLossVariables(out.mean("loss", 0));
    Graphs.buildGradients(sd);
    List<String> params = layers.takeParams();
    // scales and shifts away from their initial 1 and 0
    for (String p : params) {
      if (p.endsWith("/gamma") || p.endsWith("/beta")) {
        INDArray v = sd.getArrForVarName(p);
        v.assign(Noise.gaussian(p.length(), v.shape()).muli(0.5).addi(p.endsWith("/gamma") ? 1 : 0));
      }
    }
    return new Net(sd, params, layers.batchStatOutputs());
  }

  @Test
  void fusedNormalisationsMatchTheirOpsOutputsStatisticsAndGradients() {
    Net net = graph();
    Map<String, INDArray> ph = Map.of("x", Noise.gaussian(11, 5, 8, 4, 6).muli(2).addi(0.3));
    List<String> outputs = new ArrayList<>(List.of("loss", "h"));
    outputs.addAll(net.stats());
    OutAndGrad reference = net.sd().calculateGradientsAndOutputs(ph, outputs, net.params());
    Map<String, INDArray> refOut = copy(reference.getOutputs());
    Map<String, INDArray> refGrad = copy(reference.getGradients());

    GraphPlan fast = GraphPlan.record(net.sd(), ph, outputs, net.params(), Map.of(), false);
    OutAndGrad result = fast.run(ph);
    assertThat(fast.kernels("group_norm")).as("group norm fused").isEqualTo(1);
    assertThat(fast.kernels("batch_norm")).as("both batch norms fused").isEqualTo(2);
    assertThat(fast.kernels("instance_norm")).as("instance norm fused").isEqualTo(1);
    assertThat(fast.kernels("group_norm_bp") + fast.kernels("batch_norm_bp") + fast.kernels("instance_norm_bp"))
        .as("and their backward kernels").isEqualTo(4);
    for (String o : outputs) {
      assertClose(o, refOut.get(o), result.getOutputs().get(o));
    }
    for (String p : net.params()) {
      assertClose("gradient of " + p, refGrad.get(p), result.getGradients().get(p));
    }
    // a second run with other inputs through the same plan
    Map<String, INDArray> ph2 = Map.of("x", Noise.gaussian(12, 5, 8, 4, 6));
    OutAndGrad reference2 = net.sd().calculateGradientsAndOutputs(ph2, outputs, net.params());
    Map<String, INDArray> refGrad2 = copy(reference2.getGradients());
    OutAndGrad result2 = fast.run(ph2);
    for (String p : net.params()) {
      assertClose("second run: gradient of " + p, refGrad2.get(p), result2.getGradients().get(p));
    }
    // a group norm scale of 0 (its backward then takes the two-pass form)
    net.sd().getArrForVarName("gn/gamma").putScalar(3, 0);
    Map<String, INDArray> refGrad3 = copy(net.sd().calculateGradientsAndOutputs(ph2, outputs, net.params())
        .getGradients());
    OutAndGrad result3 = fast.run(ph2);
    for (String p : net.params()) {
      assertClose("a scale of 0: gradient of " + p, refGrad3.get(p), result3.getGradients().get(p));
    }

    GraphPlan exact = GraphPlan.record(net.sd(), ph, outputs, net.params(), Map.of(), true);
    assertThat(exact.kernels("group_norm") + exact.kernels("batch_norm")).as("checked mode keeps the ops").isZero();
  }

  @Test
  void plansOfOutputsAloneFuseTheForwardKernels() {
    Net net = graph();
    Map<String, INDArray> ph = Map.of("x", Noise.gaussian(13, 3, 8, 4, 6));
    INDArray expected = net.sd().output(ph, List.of("h")).get("h").dup();
    GraphPlan fast = GraphPlan.record(net.sd(), ph, List.of("h"), List.of(), Map.of(), false);
    INDArray h = fast.run(ph).getOutputs().get("h");
    assertThat(fast.kernels("group_norm") + fast.kernels("batch_norm") + fast.kernels("instance_norm")).isEqualTo(3);
    assertClose("h", expected, h);
  }

  /**
   * One batch norm layer applied to two inputs (as a discriminator to real and generated images):
   * each application is fused, and the shared scale's and shift's gradients, the sums of both parts,
   * match SameDiff's.
   */
  @Test
  void aLayerAppliedTwiceIsFusedTwiceAndItsSharedParametersGetBothParts() {
    Layers layers = new Layers(SameDiff.create(), 4);
    SameDiff sd = layers.sd();
    SDVariable real = sd.placeHolder("real", DataType.FLOAT, -1, 4, 3, 5);
    SDVariable fake = sd.placeHolder("fake", DataType.FLOAT, -1, 4, 3, 5);
    SDVariable a = layers.batchNorm("shared", layers.conv2d("c", real, 4, 4, 3, 1, 1, false), 4, 15, true);
    SDVariable b = layers.batchNorm("shared", layers.conv2d("c", fake, 4, 4, 3, 1, 1, false), 4, 15, true);
    SDVariable loss = a.mul(a).mul(a).mean().add(sd.nn().sigmoid(b.mul(2.0)).mean()).rename("loss");
    sd.setLossVariables(loss);
    Graphs.buildGradients(sd);
    List<String> params = layers.takeParams();
    perturb(sd, "shared", 4);
    Map<String, INDArray> ph = Map.of("real", Noise.gaussian(3, 6, 4, 3, 5), "fake", Noise.gaussian(4, 6, 4, 3, 5));
    assertFusedLikeOps(sd, ph, params, "batch_norm", 2);
  }

  /**
   * Batch norm over images of at least {@link OneDnnNorm#BATCH_CLOSED_FORM_POSITIONS} positions takes
   * the closed-form backward (smaller ones oneDNN's, as the other tests): gradients close to SameDiff's.
   */
  @Test
  void batchNormOverLargerImagesTakesTheClosedFormBackward() {
    Layers layers = new Layers(SameDiff.create(), 6);
    SameDiff sd = layers.sd();
    SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, 3, 24, 24);
    SDVariable a = layers.conv2d("c", x, 3, 4, 3, 1, 1, false);
    SDVariable b = layers.batchNorm("bn", a.add(0.7), 4, 24 * 24, true);
    sd.setLossVariables(b.mul(b).mul(b).mean().add(b.mul(x.sum(true, 1)).mean()).rename("loss"));
    Graphs.buildGradients(sd);
    List<String> params = layers.takeParams();
    perturb(sd, "bn", 4);
    assertThat(24L * 24).isGreaterThanOrEqualTo(OneDnnNorm.BATCH_CLOSED_FORM_POSITIONS);
    assertFusedLikeOps(sd, Map.of("x", Noise.gaussian(5, 3, 3, 24, 24).muli(1.5)), params, "batch_norm", 1);
  }

  /**
   * A group norm of a per-channel shift (the DDPM's residual block: a timestep embedding added to
   * every pixel of a channel): the backward kernel ends at the norm's input gradient, and the shift's
   * gradient (that gradient summed over the pixels) stays with the ops before it. (The region used to
   * take that sum in and was left to its ops.)
   */
  @Test
  void aNormOfAPerChannelShiftIsFusedAndTheShiftsGradientStaysOutside() {
    Layers layers = new Layers(SameDiff.create(), 5);
    SameDiff sd = layers.sd();
    SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, 4, 3, 5);
    SDVariable e = sd.placeHolder("e", DataType.FLOAT, -1, 6);
    SDVariable a = layers.conv2d("c", x, 4, 4, 3, 1, 1);
    SDVariable shift = layers.dense("emb", e, 6, 4).reshape(-1, 4, 1, 1);
    SDVariable g = layers.groupNorm("gn", FastGrad.channelAdd(sd, a, shift, 2, 3), 4, 2, 3, 5);
    SDVariable loss = g.mul(g).mul(g).mean().rename("loss");
    sd.setLossVariables(loss);
    Graphs.buildGradients(sd);
    List<String> params = layers.takeParams();
    perturb(sd, "gn", 4);
    Map<String, INDArray> ph = Map.of("x", Noise.gaussian(3, 6, 4, 3, 5), "e", Noise.gaussian(4, 6, 6));
    assertFusedLikeOps(sd, ph, params, "group_norm", 1);
  }

  /** Moves layer {@code name}'s scale and shift ({@code channels} each) away from 1 and 0. */
  private static void perturb(SameDiff sd, String name, int channels) {
    sd.getArrForVarName(name + "/gamma").assign(Noise.gaussian(1, 1, channels, 1, 1).muli(0.3).addi(1));
    sd.getArrForVarName(name + "/beta").assign(Noise.gaussian(2, 1, channels, 1, 1).muli(0.3));
  }

  /**
   * The gradients of "loss" through a compiled plan with {@code kernel} fused {@code times} times each
   * way are those of SameDiff's ops, within float rounding.
   */
  private static void assertFusedLikeOps(SameDiff sd, Map<String, INDArray> ph, List<String> params, String kernel,
      int times) {
    Map<String, INDArray> expected = copy(sd.calculateGradientsAndOutputs(ph, List.of("loss"), params).getGradients());
    GraphPlan fast = GraphPlan.record(sd, ph, List.of("loss"), params, Map.of(), false);
    OutAndGrad result = fast.run(ph);
    assertThat(fast.kernels(kernel)).isEqualTo(times);
    assertThat(fast.kernels(kernel + "_bp")).isEqualTo(times);
    for (String p : params) {
      assertClose("gradient of " + p, expected.get(p), result.getGradients().get(p));
    }
  }

  private static Map<String, INDArray> copy(Map<String, INDArray> m) {
    Map<String, INDArray> out = new java.util.HashMap<>();
    m.forEach((k, v) -> out.put(k, v.dup()));
    return out;
  }

  /** Float rounding of sums over ~100-1,000 terms: within 2e-4 of the largest value. */
  private static void assertClose(String what, INDArray expected, INDArray actual) {
    assertThat(actual).as(what).isNotNull();
    assertThat(actual.shape()).as(what).isEqualTo(expected.shape());
    double scale = Math.max(1e-3, expected.amaxNumber().doubleValue());
    double diff = actual.castTo(DataType.DOUBLE).sub(expected.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    assertThat(diff / scale).as(what + " (max abs difference " + diff + ", largest value " + scale + ")")
        .isLessThan(2e-4);
  }
}
