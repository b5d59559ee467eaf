package org.genpipe.models.nn;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.DynamicCustomOp;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.factory.Nd4j;

/** ND4J's op {@code name} run as a plan without this package's kernels would run it: the reference the kernels' tests compare with. */
final class Nd4jOp {
  private Nd4jOp() {}

  static void run(String name, INDArray[] in, INDArray[] out, long... iArgs) {
    OpContext ctx = Nd4j.getExecutioner().buildContext();
    ctx.setInputArrays(in);
    ctx.setOutputArrays(out);
    ctx.setIArguments(iArgs);
    Nd4j.exec(DynamicCustomOp.builder(name).build(), ctx);
  }
}
