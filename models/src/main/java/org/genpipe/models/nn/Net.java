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
 * <p>The optimizer state is one flat array; each parameter's updater works on a view of it, so the
 * state moves in and out of {@link ModelState} without copying per parameter.
 */
public final class Net {
  private final String name;
  private final SameDiff sd;
  private final List<String> params;
  private final INDArray updaterState;
  private final List<GradientUpdater<?>> updaters = new ArrayList<>();
  private final long paramCount;

  public Net(String name, SameDiff sd, List<String> params, IUpdater updater) {
    if (params.isEmpty()) {
      throw new IllegalArgumentException("network " + name + " has no parameters");
    }
    this.name = name;
    this.sd = sd;
    this.params = List.copyOf(params);
    long count = 0;
    long stateSize = 0;
    for (String p : this.params) {
      long n = sd.getArrForVarName(p).length();
      count += n;
      stateSize += updater.stateSize(n);
    }
    this.paramCount = count;
    this.updaterState = stateSize == 0 ? null : Nd4j.zeros(DataType.FLOAT, 1, stateSize);
    long offset = 0;
    for (String p : this.params) {
      long n = sd.getArrForVarName(p).length();
      long s = updater.stateSize(n);
      INDArray view =
          s == 0 ? null : updaterState.get(NDArrayIndex.point(0), NDArrayIndex.interval(offset, offset + s)).reshape(1, s);
      updaters.add(updater.instantiate(view, true));
      offset += s;
    }
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
      String p = params.get(i);
      INDArray g = grads.get(p);
      if (g == null) {
        throw new IllegalStateException("no gradient for parameter " + p + " of network " + name);
      }
      INDArray w = sd.getArrForVarName(p);
      // gradients are fresh arrays owned by this step: update them in place (a copy only if strided)
      INDArray flat = (g.isView() || g.ordering() != 'c' ? g.dup('c') : g).reshape(1, g.length());
      updaters.get(i).applyUpdater(flat, (int) step, 0);
      w.subi(flat.reshape(w.shape()));
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
    state.put(name + "/updater", updaterState == null ? new float[0] : updaterState.dup().data().asFloat());
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
