package org.genpipe.models.vae;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.Map;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class DivergenceTest {

  /** The divergence graph of one example (double precision), evaluated. */
  private static double graphValue(Divergence d, double[] mu, double[] logVar) {
    SameDiff sd = SameDiff.create();
    SDVariable m = sd.placeHolder("mu", DataType.DOUBLE, 1, mu.length);
    SDVariable lv = sd.placeHolder("lv", DataType.DOUBLE, 1, mu.length);
    d.perExample(m, lv).rename("out");
    INDArray out = sd.output(Map.of(
        "mu", Nd4j.createFromArray(new double[][] {mu}),
        "lv", Nd4j.createFromArray(new double[][] {logVar})), "out").get("out");
    return out.getDouble(0);
  }

  @Test
  void klOfKnownGaussiansMatchesHandComputedValue() {
    // N(1, 2) and N(-0.5, 0.5) against N(0, 1):
    // 0.5 (2 + 1 - 1 - ln 2) + 0.5 (0.5 + 0.25 - 1 - ln 0.5) = 0.5 (2 - 0.693147) + 0.5 (-0.25 + 0.693147)
    double expected = 0.5 * (2 - Math.log(2)) + 0.5 * (-0.25 + Math.log(2));
    double[] mu = {1.0, -0.5};
    double[] lv = {Math.log(2), Math.log(0.5)};
    assertThat(graphValue(Divergence.KL, mu, lv)).isCloseTo(expected, within(1e-12));
    assertThat(Divergence.KL.value(mu, lv)).isCloseTo(expected, within(1e-12));
  }

  @Test
  void klIsZeroAtThePrior() {
    assertThat(graphValue(Divergence.KL, new double[] {0, 0, 0}, new double[] {0, 0, 0})).isCloseTo(0, within(1e-15));
  }

  @Test
  void csOfEqualVarianceGaussiansIsSquaredDistanceOverFourVariances() {
    // D_CS(N(m1, s^2 I), N(m2, s^2 I)) = |m1 - m2|^2 / (4 s^2); against the prior s^2 = 1
    double[] mu = {0.8, -1.5, 0.0};
    double expected = (0.64 + 2.25) / 4.0;
    assertThat(graphValue(Divergence.CS, mu, new double[] {0, 0, 0})).isCloseTo(expected, within(1e-12));
  }

  @Test
  void csMatchesNumericalIntegrationForUnequalVariances() {
    double mu = 0.7;
    double var = 0.3;
    // D_CS = -log int(pq) + 0.5 log int(p^2) + 0.5 log int(q^2), trapezoid on [-12, 12]
    double pq = 0;
    double pp = 0;
    double qq = 0;
    double h = 1e-4;
    for (double x = -12; x <= 12; x += h) {
      double q = Math.exp(-(x - mu) * (x - mu) / (2 * var)) / Math.sqrt(2 * Math.PI * var);
      double p = Math.exp(-x * x / 2) / Math.sqrt(2 * Math.PI);
      pq += p * q * h;
      pp += p * p * h;
      qq += q * q * h;
    }
    double numeric = -Math.log(pq) + 0.5 * Math.log(pp) + 0.5 * Math.log(qq);
    assertThat(graphValue(Divergence.CS, new double[] {mu}, new double[] {Math.log(var)}))
        .isCloseTo(numeric, within(1e-6));
  }

  @Test
  void gradientsOfBothDivergencesMatchFiniteDifferences() {
    for (Divergence d : Divergence.values()) {
      SameDiff sd = SameDiff.create();
      SDVariable m = sd.var("mu", Nd4j.createFromArray(new double[][] {{0.3, -1.2}}));
      SDVariable lv = sd.var("lv", Nd4j.createFromArray(new double[][] {{0.4, -0.7}}));
      sd.setLossVariables(d.perExample(m, lv).sum());
      Map<String, INDArray> g = sd.calculateGradients(Map.of(), "mu", "lv");
      double[] mu = {0.3, -1.2};
      double[] lvv = {0.4, -0.7};
      double eps = 1e-6;
      for (int i = 0; i < 2; i++) {
        double[] up = mu.clone();
        double[] dn = mu.clone();
        up[i] += eps;
        dn[i] -= eps;
        double fd = (d.value(up, lvv) - d.value(dn, lvv)) / (2 * eps);
        assertThat(g.get("mu").getDouble(0, i)).as(d + " dmu" + i).isCloseTo(fd, within(1e-7));
        double[] lu = lvv.clone();
        double[] ld = lvv.clone();
        lu[i] += eps;
        ld[i] -= eps;
        double fdl = (d.value(mu, lu) - d.value(mu, ld)) / (2 * eps);
        assertThat(g.get("lv").getDouble(0, i)).as(d + " dlogvar" + i).isCloseTo(fdl, within(1e-7));
      }
    }
  }
}
