package org.genpipe.models.nn;

import java.nio.FloatBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.GradientUpdater;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.IUpdater;

/**
 * The optimizer of one {@link Net}: turns the network's flat gradient array, in place, into the
 * update to subtract from its flat parameter array, and keeps its state as one flat array.
 *
 * <p>Adam runs in plain Java ({@link FlatAdam}): ND4J M2.1's native {@code adam_updater} takes
 * ~840 us for the beta-VAE's 92k parameters on one thread (~9 ns per element), the Java loop over
 * heap arrays ~70 us with the copies in and out. Every other DL4J updater runs as DL4J's own.
 */
abstract sealed class FlatOptimizer permits FlatOptimizer.FlatAdam, FlatOptimizer.Dl4j {
  static FlatOptimizer of(IUpdater config, long parameters) {
    int n = Math.toIntExact(parameters);
    return config instanceof Adam adam ? new FlatAdam(adam, n) : new Dl4j(config, n);
  }

  /** Gradients in, update out (same array), for iteration {@code step} (0-based). */
  abstract void update(INDArray flatGrads, long step);

  /** Copies the state, {@link #stateSize()} values, into {@code out} (the layout of DL4J's updater for the same config). */
  abstract void stateInto(float[] out);

  abstract long stateSize();

  abstract void loadState(float[] state);

  /** Appends the memory {@link #stateInto} copies from, in its order. */
  abstract void stateMemory(java.util.List<FloatBuffer> out);

  /**
   * DL4J's Adam (same formula and same state layout, first moments then second moments):
   * m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, update = a_t m / (sqrt(v) + eps) with
   * a_t = lr sqrt(1 - b2^t) / (1 - b1^t), t = step + 1.
   */
  static final class FlatAdam extends FlatOptimizer {
    private final Adam config;
    private final float[] m;
    private final float[] v;
    private final float[] g;

    FlatAdam(Adam config, int n) {
      this.config = config;
      this.m = new float[n];
      this.v = new float[n];
      this.g = new float[n];
    }

    @Override
    void update(INDArray flatGrads, long step) {
      FloatBuffer buffer = Net.whole(flatGrads, g.length, "Adam's gradients");
      buffer.get(0, g);
      double t = step + 1.0;
      double lr = config.getLearningRate((int) step, 0);
      float at = (float) (lr * Math.sqrt(1 - Math.pow(config.getBeta2(), t)) / (1 - Math.pow(config.getBeta1(), t)));
      float b1 = (float) config.getBeta1();
      float b2 = (float) config.getBeta2();
      float c1 = 1 - b1;
      float c2 = 1 - b2;
      float eps = (float) config.getEpsilon();
      for (int k = 0; k < g.length; k++) {
        float gk = g[k];
        float mk = b1 * m[k] + c1 * gk;
        float vk = b2 * v[k] + c2 * gk * gk;
        m[k] = mk;
        v[k] = vk;
        g[k] = at * mk / ((float) Math.sqrt(vk) + eps);
      }
      buffer.put(0, g);
    }

    @Override
    void stateInto(float[] out) {
      System.arraycopy(m, 0, out, 0, m.length);
      System.arraycopy(v, 0, out, m.length, v.length);
    }

    @Override
    long stateSize() {
      return 2L * m.length;
    }

    @Override
    void loadState(float[] state) {
      System.arraycopy(state, 0, m, 0, m.length);
      System.arraycopy(state, m.length, v, 0, v.length);
    }

    @Override
    void stateMemory(java.util.List<FloatBuffer> out) {
      out.add(FloatBuffer.wrap(m));
      out.add(FloatBuffer.wrap(v));
    }
  }

  /** Any other DL4J updater, run by DL4J over a flat state array. */
  static final class Dl4j extends FlatOptimizer {
    private final INDArray state;
    private final GradientUpdater<?> updater;

    Dl4j(IUpdater config, int n) {
      long size = config.stateSize(n);
      this.state = size == 0 ? null : Nd4j.zeros(DataType.FLOAT, 1, size);
      this.updater = config.instantiate(state, true);
    }

    @Override
    void update(INDArray flatGrads, long step) {
      updater.applyUpdater(flatGrads, (int) step, 0);
    }

    @Override
    void stateInto(float[] out) {
      if (state != null) {
        Net.copy(state, out);
      }
    }

    @Override
    long stateSize() {
      return state == null ? 0 : state.length();
    }

    @Override
    void stateMemory(java.util.List<FloatBuffer> out) {
      if (state != null) {
        out.add(Net.whole(state, Math.toIntExact(state.length()), "the updater's state"));
      }
    }

    @Override
    void loadState(float[] values) {
      if (state != null) {
        Net.load(values, state, "the updater's state");
      }
    }
  }
}
