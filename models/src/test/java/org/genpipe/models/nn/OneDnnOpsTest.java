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
import org.nd4j.linalg.factory.Nd4j;

/**
 * The oneDNN kernels of {@link OneDnnReduction}, {@link OneDnnSoftmax} and
 * {@link OneDnnResampling} against ND4J's ops on the same arrays (exact for the nearest-neighbour
 * forward, float rounding otherwise), the cases they leave to ND4J, and a plan outside checked mode
 * that runs all of them with its gradients close to SameDiff's.
 */
class OneDnnOpsTest {
  @Test
  void sumOverTrailingAxesMatchesNd4j() {
    INDArray x = Noise.gaussian(1, 4, 6, 5, 7);
    INDArray expected = x.sum(true, 2, 3);
    INDArray y = Nd4j.create(DataType.FLOAT, 4, 6, 1, 1);
    OneDnnReduction.kernel("reduce_sum", new INDArray[] {x}, new INDArray[] {y}).run();
    assertClose("sum over H, W", expected, y);
    INDArray z = Nd4j.create(DataType.FLOAT, 4, 1, 1, 1);
    OneDnnReduction.kernel("reduce_sum", new INDArray[] {x}, new INDArray[] {z}).run();
    assertClose("sum over C, H, W", x.sum(true, 1, 2, 3), z);
    assertThat(OneDnnReduction.kernel("reduce_sum", new INDArray[] {x},
        new INDArray[] {Nd4j.create(DataType.FLOAT, 1, 6, 5, 7)})).as("a leading axis").isNull();
    assertThat(OneDnnReduction.kernel("reduce_sum", new INDArray[] {x},
        new INDArray[] {Nd4j.create(DataType.FLOAT, 4, 1, 5, 7)})).as("a middle axis").isNull();
    assertThat(OneDnnReduction.kernel("reduce_sum", new INDArray[] {x},
        new INDArray[] {Nd4j.create(DataType.FLOAT, 4, 6)})).as("axes not kept").isNull();
  }

  @Test
  void softmaxBackwardMatchesNd4j() {
    INDArray x = Noise.gaussian(2, 3, 5, 9).muli(2);
    INDArray grad = Noise.gaussian(3, 3, 5, 9);
    INDArray expected = Nd4j.create(DataType.FLOAT, 3, 5, 9);
    Nd4jOp.run("softmax_bp", new INDArray[] {x, grad}, new INDArray[] {expected}, 2);
    INDArray actual = x.ulike();
    OneDnnSoftmax.kernel("softmax_bp", new INDArray[] {x, grad}, new INDArray[] {actual}, new long[] {2}).run();
    assertClose("softmax_bp", expected, actual);
    assertThat(OneDnnSoftmax.kernel("softmax_bp", new INDArray[] {x, grad}, new INDArray[] {actual}, new long[] {1}))
        .as("another axis").isNull();
  }

  @Test
  void nearestUpsamplingAndItsBackwardMatchNd4j() {
    INDArray x = Noise.gaussian(4, 2, 3, 4, 5);
    INDArray expected = Nd4j.create(DataType.FLOAT, 2, 3, 8, 15);
    Nd4jOp.run("upsampling2d", new INDArray[] {x}, new INDArray[] {expected}, 2, 3, 1);
    INDArray actual = expected.ulike();
    OneDnnResampling.kernel("upsampling2d", new INDArray[] {x}, new INDArray[] {actual}, new long[] {2, 3, 1}).run();
    assertThat(actual).as("copies: exact").isEqualTo(expected);
    INDArray grad = Noise.gaussian(5, 2, 3, 8, 15);
    INDArray expectedGrad = x.ulike();
    Nd4jOp.run("upsampling2d_bp", new INDArray[] {x, grad}, new INDArray[] {expectedGrad}, 2, 3, 1);
    INDArray actualGrad = x.ulike();
    OneDnnResampling.kernel("upsampling2d_bp", new INDArray[] {x, grad}, new INDArray[] {actualGrad},
        new long[] {2, 3, 1}).run();
    assertClose("upsampling2d_bp", expectedGrad, actualGrad);
    assertThat(OneDnnResampling.kernel("upsampling2d", new INDArray[] {x}, new INDArray[] {actual},
        new long[] {2, 3, 0})).as("NHWC").isNull();
  }

  @Test
  void aPlanOutsideCheckedModeRunsThemAndStaysCloseToSameDiff() {
    Layers layers = new Layers(SameDiff.create(), 6);
    SameDiff sd = layers.sd();
    SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, 4, 3, 5);
    SDVariable s = sd.var("s", Noise.gaussian(7, 1, 4, 1, 1).addi(1));
    SDVariable up = sd.cnn().upsampling2d(x.mul(s), 2, 2, true);
    SDVariable t = sd.var("t", Noise.gaussian(8, 1, 4, 1, 1));
    // a shift per example and channel (as the DDPM's timestep embedding): its gradient sums over H, W
    SDVariable perExample = x.mean(true, 2, 3).mul(t);
    SDVariable shifted = FastGrad.channelAdd(sd, up, perExample, 2, 3);
    SDVariable attention = sd.nn().softmax(shifted.reshape(-1, 4, 60), 2);
    sd.setLossVariables(attention.mul(attention).sum().add(shifted.mul(shifted).mean()).rename("loss"));
    Map<String, INDArray> ph = Map.of("x", Noise.gaussian(9, 2, 4, 3, 5));
    List<String> params = List.of("s", "t");
    OutAndGrad reference = sd.calculateGradientsAndOutputs(ph, List.of("loss"), params);
    GraphPlan fast = GraphPlan.record(sd, ph, List.of("loss"), params, Map.of(), false);
    OutAndGrad result = fast.run(ph);
    assertThat(fast.kernels("upsampling2d") + fast.kernels("upsampling2d_bp")).isEqualTo(2);
    assertThat(fast.kernels("softmax_bp")).isEqualTo(1);
    assertThat(fast.kernels("reduce_sum")).as("the shift's gradient").isGreaterThanOrEqualTo(1);
    assertClose("loss", reference.getOutputs().get("loss"), result.getOutputs().get("loss"));
    for (String p : params) {
      assertClose("gradient of " + p, reference.getGradients().get(p), result.getGradients().get(p));
    }
    GraphPlan exact = GraphPlan.record(sd, ph, List.of("loss"), params, Map.of(), true);
    assertThat(exact.kernels()).as("checked mode keeps ND4J's ops").isZero();
  }

  private static void assertClose(String what, INDArray expected, INDArray actual) {
    double scale = Math.max(1e-3, expected.amaxNumber().doubleValue());
    double diff = expected.sub(actual).amaxNumber().doubleValue();
    assertThat(diff).as(what + " (max abs difference " + diff + ")").isLessThan(1e-5 * scale);
  }
}
