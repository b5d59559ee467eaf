package org.genpipe.models.nn;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.api.OutAndGrad;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class GraphPlanTest {
  @AfterEach
  void interpretedByDefaultAgain() {
    System.clearProperty(GraphPlan.Compiled.MODE_PROPERTY);
  }

  /** x [N, 3] -> relu(x W + b) -> sum of squares, mean over the batch; and an inference output. */
  private static SameDiff graph(Layers layers) {
    SameDiff sd = layers.sd();
    SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, 3);
    SDVariable h = FastGrad.relu(sd, layers.dense("d", x, 3, 4));
    h = layers.batchNorm("bn", h, 4, 0, true);
    sd.identity("h", h);
    sd.setLossVariables(h.mul(h).sum(1).mean("loss", 0));
    Graphs.buildGradients(sd);
    return sd;
  }

  private static Map<String, INDArray> batch(long seed, int n) {
    Map<String, INDArray> ph = new LinkedHashMap<>();
    ph.put("x", Noise.gaussian(seed, n, 3));
    return ph;
  }

  /**
   * Plans outside checked mode run the batch norm fused (OneDnnNorm) and agree with SameDiff to float
   * rounding: within 1e-5 of the largest output or gradient value.
   */
  private static void assertMatches(OutAndGrad expected, OutAndGrad actual) {
    assertThat(actual.getGradients().keySet()).isEqualTo(expected.getGradients().keySet());
    Map<String, INDArray> all = new LinkedHashMap<>(expected.getOutputs());
    expected.getGradients().forEach((k, v) -> all.put("gradient of " + k, v));
    Map<String, INDArray> got = new LinkedHashMap<>(actual.getOutputs());
    actual.getGradients().forEach((k, v) -> got.put("gradient of " + k, v));
    // the loss (the batch norm's output squared) hardly depends on what comes before the norm: those
    // gradients are rounding-sized and judged against the largest value of all
    double scale = all.values().stream().mapToDouble(a -> a.amaxNumber().doubleValue()).max().orElseThrow();
    for (String k : all.keySet()) {
      INDArray e = all.get(k);
      assertThat(got.get(k).sub(e).amaxNumber().doubleValue() / scale).as(k).isLessThan(1e-5);
    }
  }

  private static void assertSame(OutAndGrad expected, OutAndGrad actual) {
    for (String k : expected.getOutputs().keySet()) {
      assertThat(actual.getOutputs().get(k)).as(k).isEqualTo(expected.getOutputs().get(k));
    }
    assertThat(actual.getGradients().keySet()).isEqualTo(expected.getGradients().keySet());
    for (String k : expected.getGradients().keySet()) {
      assertThat(actual.getGradients().get(k).equalsWithEps(expected.getGradients().get(k), 0)).as(k).isTrue();
    }
  }

  @Test
  void aCompiledRunMatchesSameDiffsOwnForNewInputsNewParametersAndNewBatchSizes() {
    Layers layers = new Layers(SameDiff.create(), 1);
    SameDiff sd = graph(layers);
    List<String> params = layers.takeParams();
    GraphPlan.Compiled c = new GraphPlan.Compiled(sd, List.of("loss", "h"), params);
    for (int step = 0; step < 3; step++) {
      Map<String, INDArray> ph = batch(step, 5);
      OutAndGrad compiled = c.run(ph);
      assertMatches(c.interpreted(ph), compiled);
      // parameters changed in place are read by the next run
      sd.getArrForVarName("d/W").addi(0.1);
    }
    GraphPlan five = c.last();
    assertThat(five.size()).isGreaterThan(10);
    Map<String, INDArray> seven = batch(9, 7);
    assertMatches(c.interpreted(seven), c.run(seven));
    assertThat(c.last()).isNotSameAs(five);
    c.run(batch(10, 5));
    assertThat(c.last()).isSameAs(five);
  }

  /** A computation run at many batch sizes keeps the plans of the most recent few, and stays right. */
  @Test
  void onlyTheMostRecentlyUsedPlansAreKept() {
    Layers layers = new Layers(SameDiff.create(), 1);
    SameDiff sd = graph(layers);
    GraphPlan.Compiled c = new GraphPlan.Compiled(sd, List.of("loss", "h"), layers.takeParams());
    c.run(batch(1, 2));
    GraphPlan two = c.last();
    GraphPlan firstThree = null;
    for (int n = 3; n < 3 + GraphPlan.Compiled.KEPT_PLANS; n++) {
      c.run(batch(n, n));
      firstThree = n == 3 ? c.last() : firstThree;
      c.run(batch(1, 2)); // used again: stays
    }
    assertThat(c.last()).isSameAs(two);
    assertThat(c.keptPlans()).isEqualTo(GraphPlan.Compiled.KEPT_PLANS);
    // size 3, the least recently used, was dropped: compiled again, with the same results as SameDiff
    assertMatches(c.interpreted(batch(20, 3)), c.run(batch(20, 3)));
    GraphPlan three = c.last();
    assertThat(three).isNotSameAs(firstThree);
    c.run(batch(21, 3 + GraphPlan.Compiled.KEPT_PLANS));
    c.run(batch(22, 3));
    assertThat(c.last()).isSameAs(three);
    assertThat(c.keptPlans()).isEqualTo(GraphPlan.Compiled.KEPT_PLANS);
  }

  @Test
  void parametersSetThroughSameDiffAreSeenByTheNextRun() {
    Layers layers = new Layers(SameDiff.create(), 2);
    SameDiff sd = graph(layers);
    GraphPlan.Compiled c = new GraphPlan.Compiled(sd, List.of("loss"), layers.takeParams());
    Map<String, INDArray> ph = batch(1, 6);
    double before = c.run(ph).getOutputs().get("loss").getDouble(0);
    sd.getVariable("d/W").setArray(Nd4j.rand(DataType.FLOAT, 3, 4));
    OutAndGrad after = c.run(ph);
    assertThat(after.getOutputs().get("loss").getDouble(0)).isNotEqualTo(before);
    assertMatches(c.interpreted(ph), after);
  }

  @Test
  void checkedModeComparesEveryRunAndInterpretedModeBypassesPlans() {
    Layers layers = new Layers(SameDiff.create(), 3);
    SameDiff sd = graph(layers);
    GraphPlan.Compiled c = new GraphPlan.Compiled(sd, List.of("loss"), layers.takeParams());
    System.setProperty(GraphPlan.Compiled.MODE_PROPERTY, "checked");
    double loss = c.run(batch(2, 4)).getOutputs().get("loss").getDouble(0);
    assertThat(c.last()).isNotNull();
    System.setProperty(GraphPlan.Compiled.MODE_PROPERTY, "interpreted");
    GraphPlan.Compiled c2 = new GraphPlan.Compiled(sd, List.of("loss"), List.of());
    assertThat(c2.run(batch(2, 4)).getOutputs().get("loss").getDouble(0)).isEqualTo(loss);
    assertThat(c2.last()).isNull();
    assertThatThrownBy(() -> c.run(Map.of())).isInstanceOf(IllegalStateException.class);
    // a difference in the last bit is a difference
    INDArray a = Nd4j.createFromArray(1f, 2f);
    INDArray b = Nd4j.createFromArray(1f, Math.nextUp(2f));
    GraphPlan.Compiled.compare("output", Map.of("h", a), Map.of("h", a.dup()));
    assertThatThrownBy(() -> GraphPlan.Compiled.compare("output", Map.of("h", a), Map.of("h", b)))
        .hasMessageContaining("output h");
  }

  @Test
  void aRunPausedAfterAnOutputFinishesWithTheDeferredPlaceholdersNewValues() {
    // h = relu(x W + b) needs only x; the loss mean(sum(h * s)) also the placeholder s, given late
    Layers layers = new Layers(SameDiff.create(), 4);
    SameDiff sd = layers.sd();
    SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, 3);
    SDVariable s = sd.placeHolder("s", DataType.FLOAT, -1, 4);
    SDVariable h = sd.identity("h", FastGrad.relu(sd, layers.dense("d", x, 3, 4)));
    sd.setLossVariables(h.mul(s).sum(1).mean("loss", 0));
    Graphs.buildGradients(sd);
    GraphPlan.Compiled c = new GraphPlan.Compiled(sd, List.of("loss", "h"), layers.takeParams());
    for (String mode : List.of("compiled", "checked", "interpreted")) {
      System.setProperty(GraphPlan.Compiled.MODE_PROPERTY, mode);
      Map<String, INDArray> ph = batch(1, 5);
      ph.put("s", Noise.gaussian(2, 5, 4));
      Map<String, INDArray> later = Map.of("s", Noise.gaussian(3, 5, 4));
      Map<String, INDArray> all = new LinkedHashMap<>(ph);
      all.putAll(later);
      OutAndGrad expected = c.interpreted(all);
      INDArray expectedH = expected.getOutputs().get("h").dup();
      Map<String, INDArray> expectedGrads = new LinkedHashMap<>();
      expected.getGradients().forEach((k, v) -> expectedGrads.put(k, v.dup()));
      double expectedLoss = expected.getOutputs().get("loss").getDouble(0);

      GraphPlan.Compiled.Started run = c.start(ph, "h", java.util.Set.of("s"));
      assertThat(run.pauses()).as(mode).isEqualTo(!mode.equals("interpreted"));
      assertThat(run.output()).as(mode).isEqualTo(expectedH);
      OutAndGrad done = run.finish(later);
      assertThat(done.getOutputs().get("loss").getDouble(0)).as(mode).isEqualTo(expectedLoss);
      expectedGrads.forEach((k, v) -> assertThat(done.getGradients().get(k)).as(mode + " " + k).isEqualTo(v));
    }
    // deferring what the output needs: no pause, the same results from two whole runs
    System.setProperty(GraphPlan.Compiled.MODE_PROPERTY, "compiled");
    Map<String, INDArray> ph = batch(4, 5);
    ph.put("s", Noise.gaussian(5, 5, 4));
    GraphPlan.Compiled.Started run = c.start(ph, "h", java.util.Set.of("x"));
    assertThat(run.pauses()).isFalse();
    assertThat(run.output()).isEqualTo(c.interpreted(ph).getOutputs().get("h"));
    assertThatThrownBy(() -> c.start(ph, "nope", java.util.Set.of("s"))).hasMessageContaining("nope");
  }

  /**
   * A block of GroupNorm, SiLU and self-attention (reshape-heavy): compiled, its reshapes become views
   * and the run stays bit-identical to SameDiff, gradients included; SiLU runs oneDNN's kernel only
   * outside checked mode, within float rounding of ND4J's.
   */
  @Test
  void reshapesBecomeViewsAndOnlyUncheckedPlansUseApproximateKernels() {
    Layers layers = new Layers(SameDiff.create(), 5);
    SameDiff sd = layers.sd();
    SDVariable a = attentionBlock(layers);
    sd.identity("h", a);
    sd.setLossVariables(a.mul(a).sum().rename("loss"));
    Graphs.buildGradients(sd);
    List<String> params = layers.takeParams();
    Map<String, INDArray> ph = Map.of("x", Noise.gaussian(6, 3, 8, 2, 3));

    System.setProperty(GraphPlan.Compiled.MODE_PROPERTY, "checked");
    GraphPlan.Compiled checked = new GraphPlan.Compiled(sd, List.of("loss", "h"), params);
    OutAndGrad expected = checked.interpreted(ph);
    INDArray expectedH = expected.getOutputs().get("h").dup();
    assertSame(expected, checked.run(ph));
    assertThat(checked.last().views()).isGreaterThanOrEqualTo(8);
    assertThat(checked.last().kernels()).isZero();

    System.setProperty(GraphPlan.Compiled.MODE_PROPERTY, "compiled");
    GraphPlan.Compiled fast = new GraphPlan.Compiled(sd, List.of("loss", "h"), params);
    INDArray h1 = fast.run(ph).getOutputs().get("h").dup();
    assertThat(fast.last().kernels()).as("swish and its derivative").isGreaterThanOrEqualTo(2);
    assertThat(h1.equalsWithEps(expectedH, 1e-5)).isTrue();
    // deterministic: the same inputs give the same bits
    assertThat(fast.run(ph).getOutputs().get("h")).isEqualTo(h1);
  }

  /** GroupNorm and SiLU of a placeholder x [N, 8, 2, 3], then self-attention over its 6 positions: [N, 6, 8]. */
  private static SDVariable attentionBlock(Layers layers) {
    SDVariable x = layers.sd().placeHolder("x", DataType.FLOAT, -1, 8, 2, 3);
    SDVariable h = layers.silu(layers.groupNorm("gn", x, 8, 4, 2, 3));
    SDVariable seq = h.reshape(-1, 8, 6).permute(0, 2, 1);
    return layers.attention("att", seq, 8, 6, seq, 8, 6, 4);
  }

  /**
   * The same block compiled for its output alone (how samplers run it): SameDiff's inference runs
   * hand arrays released by earlier ops to later ones, which must not stop reshapes from becoming
   * views (the plan gives each op an array of its own); the output stays bit-identical.
   */
  @Test
  void reshapesBecomeViewsInPlansOfOutputsAlone() {
    Layers layers = new Layers(SameDiff.create(), 5);
    SameDiff sd = layers.sd();
    SDVariable a = attentionBlock(layers);
    sd.identity("h", layers.groupNorm("gn2", a.permute(0, 2, 1).reshape(-1, 8, 2, 3), 8, 2, 2, 3));
    Map<String, INDArray> ph = Map.of("x", Noise.gaussian(6, 3, 8, 2, 3));

    System.setProperty(GraphPlan.Compiled.MODE_PROPERTY, "checked");
    GraphPlan.Compiled checked = new GraphPlan.Compiled(sd, List.of("h"), List.of());
    INDArray expected = sd.output(ph, List.of("h")).get("h").dup();
    assertThat(checked.run(ph).getOutputs().get("h")).isEqualTo(expected);
    assertThat(checked.last().views()).as("reshapes made views").isGreaterThanOrEqualTo(8);
  }
  /**
   * A sum of two branches of one shape: the backward op's two gradients are its input's array
   * itself (no copies), and the run stays bit-identical to SameDiff, gradients included.
   */
  @Test
  void theGradientsOfASumAreItsOutputsGradientNotCopies() {
    Layers layers = new Layers(SameDiff.create(), 6);
    SameDiff sd = layers.sd();
    SDVariable x = sd.placeHolder("x", DataType.FLOAT, -1, 5);
    SDVariable a = FastGrad.relu(sd, layers.dense("a", x, 5, 7));
    SDVariable b = layers.silu(layers.dense("b", x, 5, 7));
    SDVariable sum = a.add(b);
    sd.setLossVariables(sum.mul(sum).sum().rename("loss"));
    Graphs.buildGradients(sd);
    List<String> params = layers.takeParams();
    Map<String, INDArray> ph = Map.of("x", Noise.gaussian(8, 4, 5));
    System.setProperty(GraphPlan.Compiled.MODE_PROPERTY, "checked");
    GraphPlan.Compiled checked = new GraphPlan.Compiled(sd, List.of("loss"), params);
    assertSame(checked.interpreted(ph), checked.run(ph));
    assertThat(checked.last().views()).as("the sum's backward op, no reshapes here").isEqualTo(1);
  }
}
