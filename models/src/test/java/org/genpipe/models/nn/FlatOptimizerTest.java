package org.genpipe.models.nn;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Map;
import org.genpipe.models.ModelState;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.GradientUpdater;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.Sgd;

/** The Java Adam against DL4J's own updater, and Net's flat arrays. */
class FlatOptimizerTest {
  @Test
  void javaAdamFollowsDl4jsAdamStepForStepWithTheSameStateLayout() {
    int n = 1000;
    Adam config = new Adam(3e-3, 0.8, 0.99, 1e-6);
    FlatOptimizer ours = FlatOptimizer.of(config, n);
    assertThat(ours).isInstanceOf(FlatOptimizer.FlatAdam.class);
    INDArray dl4jState = Nd4j.zeros(DataType.FLOAT, 1, config.stateSize(n));
    GradientUpdater<?> dl4j = config.instantiate(dl4jState, true);
    for (int step = 0; step < 30; step++) {
      INDArray g = Noise.gaussian(step, 1, n).muli(step % 3 == 0 ? 1e-3 : 2.0); // small and large gradients
      INDArray a = g.dup();
      INDArray b = g.dup();
      ours.update(a, step);
      dl4j.applyUpdater(b, step, 0);
      assertClose(a.toFloatVector(), b.toFloatVector(), "update at step " + step);
    }
    assertClose(state(ours), dl4jState.toFloatVector(), "state (m then v)");
    assertThat(ours.stateSize()).isEqualTo(config.stateSize(n));
  }

  @Test
  void adamStateRoundTripsAndOtherUpdatersRunAsDl4jsOwn() {
    int n = 50;
    FlatOptimizer a = FlatOptimizer.of(new Adam(1e-3), n);
    a.update(Noise.gaussian(1, 1, n), 0);
    FlatOptimizer b = FlatOptimizer.of(new Adam(1e-3), n);
    b.loadState(state(a));
    INDArray g1 = Noise.gaussian(2, 1, n);
    INDArray g2 = g1.dup();
    a.update(g1, 1);
    b.update(g2, 1);
    assertThat(g2.toFloatVector()).containsExactly(g1.toFloatVector());

    FlatOptimizer sgd = FlatOptimizer.of(new Sgd(0.5), n);
    assertThat(sgd).isInstanceOf(FlatOptimizer.Dl4j.class);
    INDArray g = Nd4j.ones(DataType.FLOAT, 1, n);
    sgd.update(g, 0);
    assertThat(g.getFloat(0)).isEqualTo(0.5f);
    assertThat(state(sgd)).isEmpty();
  }

  @Test
  void adamRefusesAViewInsteadOfTheWholeGradientArray() {
    FlatOptimizer a = FlatOptimizer.of(new Adam(1e-3), 4);
    INDArray wide = Nd4j.zeros(DataType.FLOAT, 1, 8);
    INDArray view = wide.get(org.nd4j.linalg.indexing.NDArrayIndex.point(0),
        org.nd4j.linalg.indexing.NDArrayIndex.interval(4, 8)).reshape(1, 4);
    assertThatThrownBy(() -> a.update(view, 0)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("Adam's gradients as one whole float array of 4 values");
  }

  @Test
  void netKeepsParametersAndGradientsInItsFlatArrays() {
    SameDiff sd = SameDiff.create();
    Layers layers = new Layers(sd, 3);
    SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, 3);
    SDVariable y = layers.dense("l2", FastGrad.relu(sd, layers.dense("l1", x, 3, 4)), 4, 2);
    sd.setLossVariables(y.mul(y).sum("loss"));
    Graphs.buildGradients(sd);
    Net net = new Net("n", sd, layers.takeParams(), new Adam(1e-2));
    GraphPlan.Compiled update = new GraphPlan.Compiled(sd, List.of("loss"), net);
    Map<String, INDArray> ph = Map.of("x", Noise.gaussian(4, 5, 3));
    var r = update.run(ph);
    Map<String, INDArray> targets = net.gradientTargets();
    for (String p : net.params()) {
      // the plan wrote each gradient where the network keeps it: nothing to copy
      assertThat(r.getGradients().get(p)).isSameAs(targets.get(p));
    }
    ModelState before = new ModelState();
    net.exportTo(before);
    net.apply(r.getGradients(), 0);
    ModelState after = new ModelState();
    net.exportTo(after);
    // the graph's parameter arrays are the flat array's views: an update is seen through both
    float[] flat = after.get("n/params", net.paramCount());
    assertThat(flat).isNotEqualTo(before.get("n/params", net.paramCount()));
    assertThat(net.param("l1/W").getFloat(0)).isEqualTo(flat[0]);
    assertThat(sd.getArrForVarName("l2/b").getFloat(1)).isEqualTo(flat[flat.length - 1]);
    // and the interpreter sees the same parameters as the plan
    CheckedPlans.run(() -> update.run(ph));
  }

  private static void assertClose(float[] actual, float[] expected, String what) {
    assertThat(actual).hasSameSizeAs(expected);
    for (int i = 0; i < actual.length; i++) {
      double tol = 1e-6 * Math.max(1e-3, Math.abs(expected[i]));
      assertThat((double) actual[i]).as(what + " [" + i + "]").isCloseTo(expected[i], org.assertj.core.data.Offset.offset(tol * 5));
    }
  }

  private static float[] state(FlatOptimizer o) {
    float[] out = new float[Math.toIntExact(o.stateSize())];
    o.stateInto(out);
    return out;
  }
}
