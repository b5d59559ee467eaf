package org.genpipe.models.nn;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.genpipe.models.ModelState;
import org.nd4j.autodiff.samediff.ArrayHolder;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.autodiff.samediff.array.SingleThreadArrayHolder;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.learning.config.IUpdater;

/**
 * One trainable network: a set of parameters of a SameDiff graph (in creation order) with its own
 * optimizer and optimizer state. A GAN has two, each updated from its own loss.
 *
 * <p>Parameters, gradients and optimizer state are each one flat array. The graph's parameter
 * arrays are views into the flat parameter array (the network takes over the graph's variable
 * store for that), and a compiled update ({@link GraphPlan.Compiled#Compiled(SameDiff, List, Net)})
 * writes the gradients straight into views of the flat gradient array: an optimizer step is then
 * one updater call and one subtraction over the whole network instead of two copies and one
 * subtraction per parameter, and the state moves in and out of {@link ModelState} as whole arrays.
 */
public final class Net implements StateMemory {
  /** The name SameDiff gives its gradient graph among its functions. */
  private static final String GRAD_FUNCTION = "grad";
  private final String name;
  private final SameDiff sd;
  private final List<String> params;
  private final INDArray flatParams;
  private final List<INDArray> gradViews = new ArrayList<>();
  private final INDArray flatGrads;
  private final FlatOptimizer optimizer;
  private final long paramCount;

  public Net(String name, SameDiff sd, List<String> params, IUpdater updater) {
    if (params.isEmpty()) {
      throw new IllegalArgumentException("network " + name + " has no parameters");
    }
    this.name = name;
    this.sd = sd;
    this.params = List.copyOf(params);
    long count = 0;
    for (String p : this.params) {
      count += sd.getArrForVarName(p).length();
    }
    paramCount = count;
    flatParams = Nd4j.create(DataType.FLOAT, 1, count);
    flatGrads = Nd4j.create(DataType.FLOAT, 1, count);
    ArrayHolder store = plainVariableStore(sd);
    long offset = 0;
    for (String p : this.params) {
      INDArray w = sd.getArrForVarName(p);
      long n = w.length();
      INDArray view = slice(flatParams, offset, n, w.shape());
      view.assign(w);
      place(store, p, view);
      gradViews.add(slice(flatGrads, offset, n, w.shape()));
      offset += n;
    }
    this.optimizer = FlatOptimizer.of(updater, count);
  }

  /**
   * SameDiff's default variable store copies arrays on the way in; the plain one keeps the views it
   * is given.
   */
  private static ArrayHolder plainVariableStore(SameDiff sd) {
    ArrayHolder store = sd.getVariablesArrays();
    if (store instanceof SingleThreadArrayHolder) {
      return store;
    }
    SingleThreadArrayHolder plain = new SingleThreadArrayHolder();
    plain.initFrom(store);
    sd.setVariablesArrays(plain);
    return plain;
  }

  /** Makes {@code view} the array of parameter {@code p} in the graph and in its gradient graph. */
  private void place(ArrayHolder store, String p, INDArray view) {
    store.setArray(p, view);
    // the gradient graph is a SameDiff of its own holding the same parameter arrays
    SameDiff grad = sd.getFunction(GRAD_FUNCTION);
    if (grad != null && grad.getVariablesArrays().hasArray(p)) {
      grad.getVariablesArrays().setArray(p, view);
    }
    if (sd.getArrForVarName(p) != view || (grad != null && grad.hasVariable(p) && grad.getArrForVarName(p) != view)) {
      throw new IllegalStateException("parameter " + p + " of network " + name + " could not be placed in its flat array");
    }
  }

  private static INDArray slice(INDArray flat, long offset, long n, long[] shape) {
    return flat.get(NDArrayIndex.point(0), NDArrayIndex.interval(offset, offset + n)).reshape('c', shape);
  }

  public String name() {
    return name;
  }

  public List<String> params() {
    return params;
  }

  public long paramCount() {
    return paramCount;
  }

  /** All parameters as one [1, count] array; the graph's parameter arrays are views into it. */
  public INDArray flatParams() {
    return flatParams;
  }

  public INDArray param(String p) {
    return sd.getArrForVarName(p);
  }

  /** Where an update should write each parameter's gradient (views of the flat gradient array). */
  Map<String, INDArray> gradientTargets() {
    Map<String, INDArray> out = new LinkedHashMap<>();
    for (int i = 0; i < params.size(); i++) {
      out.put(params.get(i), gradViews.get(i));
    }
    return out;
  }

  /**
   * Applies one optimizer step from {@code grads} (by parameter name) at iteration {@code step};
   * gradients already in this network's gradient views are not copied.
   */
  public void apply(Map<String, INDArray> grads, long step) {
    for (int i = 0; i < params.size(); i++) {
      INDArray g = grads.get(params.get(i));
      if (g == null) {
        throw new IllegalStateException("no gradient for parameter " + params.get(i) + " of network " + name);
      }
      if (g != gradViews.get(i)) {
        gradViews.get(i).assign(g);
      }
    }
    optimizer.update(flatGrads, step);
    flatParams.subi(flatGrads);
  }

  /** Writes {@code <name>/params} and {@code <name>/updater} into {@code state}. */
  public void exportTo(ModelState state) {
    copy(flatParams, state.reuse(name + "/params", Math.toIntExact(paramCount)));
    optimizer.stateInto(state.reuse(name + "/updater", Math.toIntExact(optimizer.stateSize())));
  }

  /** Appends the memory of {@code <name>/params} and then of {@code <name>/updater}. */
  @Override
  public void stateMemory(List<java.nio.FloatBuffer> out) {
    out.add(whole(flatParams, Math.toIntExact(paramCount), name + "'s parameters"));
    optimizer.stateMemory(out);
  }

  /**
   * Copies {@code values} into the whole float array {@code a} ({@link #whole}) of their length: one
   * copy into its memory (an ND4J array made of them and assigned, as before, cost ~0.25 ms of a
   * worker's round for the beta-VAE's 92,000 parameters).
   */
  public static void load(float[] values, INDArray a, String what) {
    whole(a, values.length, what).put(0, values);
  }

  /** Copies the values of a whole float array ({@link #whole}) into {@code out}, of its length. */
  public static void copy(INDArray a, float[] out) {
    whole(a, out.length, "a state array").get(0, out);
  }

  /**
   * The native memory of {@code a}, checked to be one whole float array of {@code n} values (offset
   * 0, its buffer's length), as a flat parameter, gradient or optimizer array is; {@code what} names
   * it in the error.
   */
  public static java.nio.FloatBuffer whole(INDArray a, int n, String what) {
    if (a.dataType() != DataType.FLOAT || a.offset() != 0 || a.length() != n || a.data().length() != n) {
      throw new IllegalArgumentException("expected " + what + " as one whole float array of " + n + " values, got "
          + a.shapeInfoToString());
    }
    return a.data().asNioFloat();
  }

  /** Reads what {@link #exportTo} wrote, checking lengths. */
  public void importFrom(ModelState state) {
    float[] flat = state.get(name + "/params", paramCount);
    load(flat, flatParams, name + "'s parameters");
    optimizer.loadState(state.get(name + "/updater", optimizer.stateSize()));
  }
}
