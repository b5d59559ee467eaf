package org.genpipe.models.nn;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.custom.LayerNorm;
import org.nd4j.linalg.factory.Nd4j;

/**
 * ND4J's layer norm and its backward as oneDNN kernels in a plan outside checked mode: the output
 * and the gradients of the input (through a scale before it), the gain and the bias within float rounding
 * of SameDiff's; a row of equal values stays finite; checked mode keeps ND4J's ops; other axes and
 * layouts are left to ND4J.
 */
class OneDnnLayerNormTest {
  @AfterEach
  void interpretedByDefaultAgain() {
    System.clearProperty(GraphPlan.Compiled.MODE_PROPERTY);
  }

  private static SameDiff graph() {
    Layers layers = new Layers(SameDiff.create(), 5);
    SameDiff sd = layers.sd();
    SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, 6, 16);
    SDVariable s = sd.var("s", Noise.gaussian(5, 16).muli(0.3).addi(1.5));
    SDVariable h = layers.layerNorm("ln", x.mul(s).add(0.25), 16);
    SDVariable w = sd.constant("w", Noise.gaussian(9, 1, 6, 16));
    sd.identity("y", h);
    sd.setLossVariables(h.mul(w).mul(h).add(h.mul(x)).mean("loss"));
    Graphs.buildGradients(sd);
    layers.takeParams();
    sd.getArrForVarName("ln/gain").assign(Noise.gaussian(3, 16).muli(0.5).addi(1));
    sd.getArrForVarName("ln/bias").assign(Noise.gaussian(4, 16).muli(0.5));
    return sd;
  }

  @Test
  void layerNormAndItsBackwardMatchSameDiff() {
    SameDiff sd = graph();
    Map<String, INDArray> ph = Map.of("x", Noise.gaussian(11, 4, 6, 16).muli(2).addi(0.3));
    // s scales the input: its gradient is the input gradient's sum
    List<String> params = List.of("ln/gain", "ln/bias", "s");
    OutAndGrad reference = sd.calculateGradientsAndOutputs(ph, List.of("loss", "y"), params);
    GraphPlan fast = GraphPlan.record(sd, ph, List.of("loss", "y"), params, Map.of(), false);
    OutAndGrad result = fast.run(ph);
    assertThat(fast.kernels("layer_norm")).as("forward through oneDNN").isEqualTo(1);
    assertThat(fast.kernels("layer_norm_bp")).as("backward through oneDNN").isEqualTo(1);
    assertClose("y", reference.getOutputs().get("y"), result.getOutputs().get("y"));
    assertClose("loss", reference.getOutputs().get("loss"), result.getOutputs().get("loss"));
    for (String p : params) {
      assertClose("gradient of " + p, reference.getGradients().get(p), result.getGradients().get(p));
    }
  }

  @Test
  void aRowOfEqualValuesStaysFinite() {
    INDArray x = Noise.gaussian(2, 3, 16);
    x.getRow(1).assign(0.7);
    INDArray g = Noise.gaussian(3, 16).addi(1);
    INDArray b = Noise.gaussian(4, 16);
    INDArray expected = Nd4j.exec(new LayerNorm(x, g, b, Nd4j.create(DataType.FLOAT, 3, 16), false, 1))[0];
    INDArray y = x.ulike();
    OneDnnLayerNorm.kernel("layer_norm", new INDArray[] {x, g, b}, new INDArray[] {y}, new long[] {1},
        new boolean[0]).run();
    for (int row : new int[] {0, 2}) {
      assertClose("row " + row, expected.getRow(row), y.getRow(row));
    }
    // ND4J divides the row's rounding residue by a deviation of 0
    assertThat(y.getRow(1).amaxNumber().doubleValue()).as("the row of equal values").isFinite();
  }

  @Test
  void checkedModeKeepsNd4jsOps() {
    SameDiff sd = graph();
    Map<String, INDArray> ph = Map.of("x", Noise.gaussian(11, 4, 6, 16));
    GraphPlan exact = GraphPlan.record(sd, ph, List.of("loss"), List.of("ln/gain"), Map.of(), true);
    assertThat(exact.kernels("layer_norm") + exact.kernels("layer_norm_bp")).isZero();
  }

  @Test
  void otherAxesAreLeftToNd4j() {
    INDArray x = Nd4j.randn(DataType.FLOAT, 4, 6, 16);
    INDArray g = Nd4j.ones(DataType.FLOAT, 16);
    INDArray b = Nd4j.zeros(DataType.FLOAT, 16);
    INDArray[] out = {x.ulike()};
    assertThat(OneDnnLayerNorm.kernel("layer_norm", new INDArray[] {x, g, b}, out, new long[] {2}, new boolean[0]))
        .isNotNull();
    assertThat(OneDnnLayerNorm.kernel("layer_norm", new INDArray[] {x, g, b}, out, new long[] {1}, new boolean[0]))
        .as("another axis").isNull();
    assertThat(OneDnnLayerNorm.kernel("layer_norm", new INDArray[] {x, g, b}, out, new long[] {2},
        new boolean[] {true})).as("channels first").isNull();
    assertThat(OneDnnLayerNorm.kernel("layer_norm", new INDArray[] {x, g}, out, new long[] {2}, new boolean[0]))
        .as("no bias").isNull();
  }

  private static void assertClose(String what, INDArray expected, INDArray actual) {
    double scale = Math.max(1, expected.amaxNumber().doubleValue());
    double diff = expected.sub(actual).amaxNumber().doubleValue();
    assertThat(diff).as(what + " (max abs difference " + diff + ")").isLessThan(1e-4 * scale);
  }
}
