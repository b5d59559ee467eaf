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

/** Layers whose formulation is not a single ND4J op, against their definitions. */
class LayersTest {
  private static final int N = 3;
  private static final int C = 8;
  private static final int GROUPS = 4;
  private static final int H = 3;
  private static final int W = 5;

  /**
   * GroupNorm(4, 8) as PyTorch defines it (per example and group of 2 channels: (x - mean) /
   * sqrt(biased var + 1e-5), then per-channel gamma and beta), computed in double; its gradients
   * equal those of the same function written with plain broadcast ops.
   */
  @Test
  void groupNormMatchesItsDefinitionAndItsGradients() {
    INDArray x = Noise.gaussian(1, N, C, H, W).muli(3).addi(1);
    INDArray gamma = Noise.gaussian(2, 1, C, 1, 1);
    INDArray beta = Noise.gaussian(3, 1, C, 1, 1);
    INDArray r = Noise.gaussian(4, N, C, H, W);

    Layers layers = new Layers(SameDiff.create(), 1);
    SameDiff sd = layers.sd();
    SDVariable in = sd.var("x", x.dup());
    SDVariable out = layers.groupNorm("gn", in, C, GROUPS, H, W);
    sd.getVariable("gn/gamma").getArr().assign(gamma);
    sd.getVariable("gn/beta").getArr().assign(beta);
    sd.setLossVariables(out.mul(sd.constant(r)).sum().rename("loss"));
    OutAndGrad result = sd.calculateGradientsAndOutputs(Map.of(), List.of(out.name()), List.of("x", "gn/gamma", "gn/beta"));

    float[] actual = result.getOutputs().get(out.name()).dup('c').data().asFloat();
    double[] v = x.castTo(DataType.DOUBLE).dup('c').data().asDouble();
    int perGroup = C / GROUPS * H * W;
    for (int n = 0; n < N; n++) {
      for (int g = 0; g < GROUPS; g++) {
        int from = (n * GROUPS + g) * perGroup;
        double mean = 0;
        for (int i = 0; i < perGroup; i++) {
          mean += v[from + i] / perGroup;
        }
        double var = 0;
        for (int i = 0; i < perGroup; i++) {
          var += (v[from + i] - mean) * (v[from + i] - mean) / perGroup;
        }
        for (int i = 0; i < perGroup; i++) {
          int c = g * (C / GROUPS) + i / (H * W);
          double expected = (v[from + i] - mean) / Math.sqrt(var + 1e-5) * gamma.getDouble(c) + beta.getDouble(c);
          assertThat((double) actual[from + i]).as("element " + (from + i)).isCloseTo(expected,
              org.assertj.core.data.Offset.offset(1e-5 * Math.max(1, Math.abs(expected))));
        }
      }
    }

    SameDiff plain = SameDiff.create();
    SDVariable px = plain.var("x", x.dup());
    SDVariable pg = plain.var("gamma", gamma.dup());
    SDVariable pb = plain.var("beta", beta.dup());
    SDVariable grouped = px.reshape(N, GROUPS, perGroup);
    SDVariable centred = grouped.sub(grouped.mean(true, 2));
    SDVariable normed = centred.div(plain.math().sqrt(centred.mul(centred).mean(true, 2).add(1e-5)))
        .reshape(N, C, H, W);
    plain.setLossVariables(normed.mul(pg).add(pb).mul(plain.constant(r)).sum().rename("loss"));
    Map<String, INDArray> expected = plain.calculateGradients(Map.of(), "x", "gamma", "beta");
    assertClose("dL/dx", expected.get("x"), result.getGradients().get("x"));
    assertClose("dL/dgamma", expected.get("gamma"), result.getGradients().get("gn/gamma"));
    assertClose("dL/dbeta", expected.get("beta"), result.getGradients().get("gn/beta"));
  }

  private static void assertClose(String what, INDArray expected, INDArray actual) {
    assertThat(actual.shape()).as(what).isEqualTo(expected.shape());
    double scale = expected.amaxNumber().doubleValue();
    assertThat(actual.sub(expected).amaxNumber().doubleValue()).as(what + " (largest " + scale + ")")
        .isLessThan(1e-4 * scale);
  }
}
