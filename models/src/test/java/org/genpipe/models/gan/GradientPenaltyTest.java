package org.genpipe.models.gan;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import org.genpipe.models.nn.LayerStack;
import org.genpipe.models.nn.Layers;
import org.genpipe.models.nn.Noise;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * WGAN-GP's penalty needs d/dW of a norm of dD/dx: {@link LayerStack} writes dD/dx as graph ops.
 * Checked against SameDiff's own input gradient, and the penalty and its weight gradients against
 * a hand derivation in double precision.
 */
class GradientPenaltyTest {

  @Test
  void inputGradientOfAConvCriticEqualsAutodiff() {
    LayerStack stack = new LayerStack(3, 8, 8).conv("c1", 4, 4, 2, 1, true).leakyRelu(0.2).dropout(0.5)
        .conv("c2", 5, 3, 2, 1, false).leakyRelu(0.2).flatten().dense("out", 2);
    SameDiff sd = SameDiff.create();
    Layers layers = new Layers(sd, 3).normalInit(0.3);
    INDArray x0 = Noise.gaussian(5, 4, 3, 8, 8);
    SDVariable x = sd.var("x", x0);
    LayerStack.Applied a = stack.apply(layers, x, "t");
    SDVariable dOut = sd.constant(Noise.gaussian(6, 4, 2));
    sd.identity("inputGrad", a.inputGradient(dOut));
    sd.setLossVariables(a.output().mul(dOut).sum("loss"));
    Map<String, INDArray> masks = stack.dropoutMasks(a, 4, 9);
    INDArray auto = sd.calculateGradients(masks, List.of("x")).get("x");
    INDArray ours = sd.output(masks, "inputGrad").get("inputGrad");
    assertThat(auto.shape()).isEqualTo(new long[] {4, 3, 8, 8});
    assertThat(auto.sub(ours).amaxNumber().doubleValue()).isLessThan(1e-5 * auto.amaxNumber().doubleValue());
  }

  @Test
  void penaltyAndItsWeightGradientsMatchTheHandDerivation() {
    int n = 6;
    int f = 5;
    int h = 4;
    LayerStack stack = new LayerStack(f).dense("h", h).leakyRelu(0.2).dense("o", 1);
    SameDiff sd = SameDiff.create();
    Layers layers = new Layers(sd, 11).normalInit(0.7);
    SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, f);
    LayerStack.Applied a = stack.apply(layers, x, "t");
    SDVariable g = a.inputGradient(sd.onesLike(a.output()));
    SDVariable norm = sd.math().sqrt(g.mul(g).sum(1).add(1e-12));
    sd.setLossVariables(norm.sub(1.0).mul(norm.sub(1.0)).mean("gp"));
    INDArray xv = Noise.gaussian(12, n, f);
    double ours = sd.output(Map.of("x", xv), "gp").get("gp").getDouble(0);
    Map<String, INDArray> grads = sd.calculateGradients(Map.of("x", xv), List.of("h/W", "o/W", "h/b"));

    // by hand: D(x) = v . leaky(W^T x + b); dD/dx = W (v * m), m = 1 where pre-activation > 0, else 0.2
    double[][] w = sd.getArrForVarName("h/W").castTo(DataType.DOUBLE).toDoubleMatrix(); // [f][h]
    double[] v = sd.getArrForVarName("o/W").castTo(DataType.DOUBLE).reshape(h).toDoubleVector();
    double[] b = sd.getArrForVarName("h/b").castTo(DataType.DOUBLE).toDoubleVector();
    double gp = 0;
    double[][] dW = new double[f][h];
    double[] dv = new double[h];
    for (int i = 0; i < n; i++) {
      double[] m = new double[h];
      for (int k = 0; k < h; k++) {
        double pre = b[k];
        for (int j = 0; j < f; j++) {
          pre += xv.getDouble(i, j) * w[j][k];
        }
        m[k] = pre > 0 ? 1 : 0.2;
      }
      double[] gi = new double[f];
      double sq = 0;
      for (int j = 0; j < f; j++) {
        for (int k = 0; k < h; k++) {
          gi[j] += w[j][k] * v[k] * m[k];
        }
        sq += gi[j] * gi[j];
      }
      double nrm = Math.sqrt(sq);
      gp += (nrm - 1) * (nrm - 1) / n;
      double c = 2 * (nrm - 1) / nrm / n; // d gp / d g_j = c g_j
      for (int j = 0; j < f; j++) {
        for (int k = 0; k < h; k++) {
          dW[j][k] += c * gi[j] * v[k] * m[k];
          dv[k] += c * gi[j] * w[j][k] * m[k];
        }
      }
    }
    assertThat(ours).isCloseTo(gp, org.assertj.core.api.Assertions.within(1e-5 * Math.max(1, gp)));
    for (int j = 0; j < f; j++) {
      for (int k = 0; k < h; k++) {
        assertThat(grads.get("h/W").getDouble(j, k)).isCloseTo(dW[j][k],
            org.assertj.core.api.Assertions.within(1e-4));
      }
    }
    for (int k = 0; k < h; k++) {
      assertThat(grads.get("o/W").getDouble(k, 0)).isCloseTo(dv[k], org.assertj.core.api.Assertions.within(1e-4));
    }
    // the mask is piecewise constant: no gradient reaches the hidden bias through it
    assertThat(grads.get("h/b").amaxNumber().doubleValue()).isLessThan(1e-6);
  }
}
