package org.genpipe.models.nn;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.genpipe.models.ModelState;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.learning.GradientUpdater;
import org.nd4j.linalg.learning.config.IUpdater;

/**
 * One trainable network: a set of parameters of a SameDiff graph (in creation order) with its own
 * optimizer and optimizer state. A GAN has two, each updated from its own loss.
 *
 * <p>The gradients are gathered into one flat array and the optimizer state is one flat array, so
 * that a step is one optimizer call over the whole network instead of one per parameter, and the
 * state moves in and out of {@link ModelState} without copying per parameter. The parameters stay
 * the graph's own arrays and are updated in place.
 */
public final class Net {
  private final String name;
  private final SameDiff sd;
  private final List<String> params;
  private final List<INDArray> gradViews = new ArrayList<>();
  private final INDArray flatGrads;
  private final INDArray updaterState;
  private final GradientUpdater<?> updater;
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
    flatGrads = Nd4j.create(DataType.FLOAT, 1, count);
    long offset = 0;
    for (String p : this.params) {
      INDArray w = sd.getArrForVarName(p);
      long n = w.length();
      gradViews.add(flatGrads.get(NDArrayIndex.point(0), NDArrayIndex.interval(offset, offset + n)).reshape('c', w.shape()));
      offset += n;
    }
    long stateSize = updater.stateSize(count);
    this.updaterState = stateSize == 0 ? null : Nd4j.zeros(DataType.FLOAT, 1, stateSize);
    this.updater = updater.instantiate(updaterState, true);
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

  public INDArray param(String p) {
    return sd.getArrForVarName(p);
  }

  /** Applies one optimizer step from {@code grads} (by parameter name) at iteration {@code step}. */
  public void apply(Map<String, INDArray> grads, long step) {
    for (int i = 0; i < params.size(); i++) {
      INDArray g = grads.get(params.get(i));
      if (g == null) {
        throw new IllegalStateException("no gradient for parameter " + params.get(i) + " of network " + name);
      }
      gradViews.get(i).assign(g);
    }
    updater.applyUpdater(flatGrads, (int) step, 0);
    for (int i = 0; i < params.size(); i++) {
      sd.getArrForVarName(params.get(i)).subi(gradViews.get(i));
    }
  }

  /** Writes {@code <name>/params} and {@code <name>/updater} into {@code state}. */
  public void exportTo(ModelState state) {
    float[] flat = new float[Math.toIntExact(paramCount)];
    int off = 0;
    for (String p : params) {
      float[] v = sd.getArrForVarName(p).dup('c').data().asFloat();
      System.arraycopy(v, 0, flat, off, v.length);
      off += v.length;
    }
    state.put(name + "/params", flat);
    state.put(name + "/updater", updaterState == null ? new float[0] : updaterState.data().asFloat());
  }

  /** Reads what {@link #exportTo} wrote, checking lengths. */
  public void importFrom(ModelState state) {
    float[] flat = state.get(name + "/params", paramCount);
    int off = 0;
    for (String p : params) {
      INDArray w = sd.getArrForVarName(p);
      int n = (int) w.length();
      float[] part = new float[n];
      System.arraycopy(flat, off, part, 0, n);
      w.assign(Nd4j.create(part, w.shape(), 'c'));
      off += n;
    }
    long stateLen = updaterState == null ? 0 : updaterState.length();
    float[] u = state.get(name + "/updater", stateLen);
    if (stateLen > 0) {
      updaterState.assign(Nd4j.create(u, new long[] {1, stateLen}, 'c'));
    }
  }
}
