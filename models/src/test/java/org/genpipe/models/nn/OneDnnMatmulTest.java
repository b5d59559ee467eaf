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
 * oneDNN's matmul in plans: every transpose combination of rank-2 and rank-3 products and of their
 * gradients against the products computed in double; what it leaves to ND4J (size-1 axes among it);
 * and a plan outside
 * checked mode (attention-shaped batched products with a transposed factor) close to SameDiff.
 */
class OneDnnMatmulTest {
  @Test
  void productsAndGradientsMatchDoublePrecisionForEveryTransposeCombination() {
    for (int rank = 2; rank <= 3; rank++) {
      for (int t = 0; t < 4; t++) {
        boolean tx = (t & 1) != 0;
        boolean ty = (t & 2) != 0;
        long b = 3;
        long m = 5;
        long k = 7;
        long n = 4;
        INDArray x = Nd4j.randn(DataType.FLOAT, shape(rank, b, tx ? k : m, tx ? m : k));
        INDArray y = Nd4j.randn(DataType.FLOAT, shape(rank, b, ty ? n : k, ty ? k : n));
        INDArray dz = Nd4j.randn(DataType.FLOAT, shape(rank, b, m, n));
        long[] iArgs = {tx ? 1 : 0, ty ? 1 : 0, 0};
        String what = "rank " + rank + ", transposed x " + tx + ", y " + ty;

        INDArray z = Nd4j.create(DataType.FLOAT, shape(rank, b, m, n));
        Runnable forward = OneDnnMatmul.kernel("matmul", new INDArray[] {x, y}, new INDArray[] {z}, iArgs,
            new double[] {1.0, 0.0});
        assertThat(forward).as(what).isNotNull();
        forward.run();
        INDArray xd = op(x.castTo(DataType.DOUBLE), tx);
        INDArray yd = op(y.castTo(DataType.DOUBLE), ty);
        assertClose(what + ": z", Nd4j.matmul(xd, yd), z);

        INDArray dx = x.ulike();
        INDArray dy = y.ulike();
        Runnable backward = OneDnnMatmul.kernel("matmul_bp", new INDArray[] {x, y, dz}, new INDArray[] {dx, dy},
            iArgs, new double[0]);
        assertThat(backward).as(what).isNotNull();
        backward.run();
        INDArray dzd = dz.castTo(DataType.DOUBLE);
        // d op(x) = dz op(y)^T, d op(y) = op(x)^T dz; transposed back where x or y was transposed
        assertClose(what + ": dx", op(Nd4j.matmul(dzd, op(yd, true)), tx), dx);
        assertClose(what + ": dy", op(Nd4j.matmul(op(xd, true), dzd), ty), dy);
      }
    }
  }

  @Test
  void otherOpsScaledOrTransposedResultsAndOtherTypesAreLeftToNd4j() {
    INDArray x = Nd4j.randn(DataType.FLOAT, 4, 6);
    INDArray y = Nd4j.randn(DataType.FLOAT, 6, 3);
    INDArray z = Nd4j.create(DataType.FLOAT, 4, 3);
    INDArray[] in = {x, y};
    INDArray[] out = {z};
    assertThat(OneDnnMatmul.kernel("matmul", in, out, new long[] {0, 0, 0}, new double[] {1, 0})).isNotNull();
    assertThat(OneDnnMatmul.kernel("mmul", in, out, new long[] {0, 0, 0}, new double[0])).as("other op").isNull();
    assertThat(OneDnnMatmul.kernel("matmul", in, out, new long[] {0, 0, 1}, new double[0])).as("transposed z").isNull();
    assertThat(OneDnnMatmul.kernel("matmul", in, out, new long[] {0, 0, 0}, new double[] {2, 0})).as("alpha").isNull();
    assertThat(OneDnnMatmul.kernel("matmul", in, out, new long[] {0, 0, 0}, new double[] {1, 1})).as("beta").isNull();
    INDArray xd = x.castTo(DataType.DOUBLE);
    assertThat(OneDnnMatmul.kernel("matmul", new INDArray[] {xd, y.castTo(DataType.DOUBLE)},
        new INDArray[] {z.castTo(DataType.DOUBLE)}, new long[] {0, 0, 0}, new double[0])).as("double").isNull();
    assertThat(OneDnnMatmul.kernel("matmul", new INDArray[] {Nd4j.randn(DataType.FLOAT, 2, 4, 6),
        Nd4j.randn(DataType.FLOAT, 3, 6, 3)}, new INDArray[] {Nd4j.create(DataType.FLOAT, 2, 4, 3)},
        new long[] {0, 0, 0}, new double[0])).as("different batch sizes").isNull();
    // ND4J's strides of size-1 axes ([4, 1]: [1, 1]) are refused by oneDNN when it runs
    INDArray column = Nd4j.randn(DataType.FLOAT, 4, 1);
    INDArray row = Nd4j.randn(DataType.FLOAT, 1, 3);
    assertThat(OneDnnMatmul.kernel("matmul_bp", new INDArray[] {column, row, Nd4j.randn(DataType.FLOAT, 4, 3)},
        new INDArray[] {column.ulike(), row.ulike()}, new long[] {0, 0, 0}, new double[0])).as("size-1 axis").isNull();
  }

  @Test
  void aPlanOutsideCheckedModeRunsTheProductsThroughOneDnnAndStaysCloseToSameDiff() {
    SameDiff sd = SameDiff.create();
    SDVariable in = sd.placeHolder("in", DataType.FLOAT, -1, 12, 16);
    SDVariable wq = sd.var("wq", Nd4j.randn(DataType.FLOAT, 16, 16).muli(0.3));
    SDVariable q = in.reshape(-1, 16).mmul(wq).reshape(-1, 12, 16);
    SDVariable scores = sd.mmul(q, in, false, true, false);
    SDVariable out = sd.mmul(sd.nn().softmax(scores, 2), in, false, false, false);
    SDVariable loss = out.mul(out).mean().rename("loss");
    sd.setLossVariables(loss);
    Map<String, INDArray> ph = Map.of("in", Nd4j.randn(DataType.FLOAT, 4, 12, 16));
    OutAndGrad reference = sd.calculateGradientsAndOutputs(ph, List.of("loss"), List.of("wq"));
    INDArray refLoss = reference.getOutputs().get("loss").dup();
    INDArray refGrad = reference.getGradients().get("wq").dup();

    GraphPlan fast = GraphPlan.record(sd, ph, List.of("loss"), List.of("wq"), Map.of(), false);
    OutAndGrad result = fast.run(ph);
    assertThat(fast.kernels("matmul") + fast.kernels("matmul_bp")).as("3 products and their 3 gradients through oneDNN")
        .isEqualTo(6);
    assertClose("loss", refLoss, result.getOutputs().get("loss"));
    assertClose("gradient of wq", refGrad, result.getGradients().get("wq"));
    GraphPlan exact = GraphPlan.record(sd, ph, List.of("loss"), List.of("wq"), Map.of(), true);
    assertThat(exact.kernels()).as("checked mode keeps ND4J's products").isZero();
  }

  private static long[] shape(int rank, long b, long r, long c) {
    return rank == 2 ? new long[] {r, c} : new long[] {b, r, c};
  }

  /** a, or a with its last two axes swapped. */
  private static INDArray op(INDArray a, boolean transposed) {
    if (!transposed) {
      return a;
    }
    return a.rank() == 2 ? a.transpose().dup() : a.permute(0, 2, 1).dup();
  }

  /** Float rounding of a few products of 7-16 terms: within 1e-5 of the largest value. */
  private static void assertClose(String what, INDArray expected, INDArray actual) {
    assertThat(actual.shape()).as(what).isEqualTo(expected.shape());
    double scale = Math.max(1e-6, expected.amaxNumber().doubleValue());
    double diff = actual.castTo(DataType.DOUBLE).sub(expected.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    assertThat(diff / scale).as(what + " (max abs difference " + diff + ")").isLessThan(1e-5);
  }
}
