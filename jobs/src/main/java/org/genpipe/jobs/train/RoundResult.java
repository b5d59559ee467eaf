package org.genpipe.jobs.train;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.genpipe.models.ModelState;

/**
 * What the workers of one round send back, summed by {@code treeAggregate}: each worker's state
 * weighted by the examples it saw (summed in double precision), the example count, and the losses of
 * every local step (summed over workers). The driver scales the sums by 1 / examples: that is the
 * parameter average.
 *
 * <p>A single worker's contribution travels as its float state and example count (half the bytes);
 * it becomes double weighted sums when it meets another contribution. The result is the same.
 */
public final class RoundResult implements Serializable {
  private static final long serialVersionUID = 1L;

  private ModelState single;
  private LinkedHashMap<String, double[]> weightedState;
  private long examples;
  private int workers;
  private List<String> lossNames;
  private double[][] lossSums;
  private long maxComputeNanos;
  private long badStep = -1;
  private String badLoss;
  private int badWorker = -1;

  /** The empty result (the aggregation's zero value). */
  public RoundResult() {}

  /** One worker's contribution. */
  public static RoundResult of(int worker, ModelState state, long examples, List<Map<String, Double>> losses,
      long fromStep, long computeNanos) {
    RoundResult r = new RoundResult();
    r.single = state;
    r.examples = examples;
    r.workers = 1;
    r.lossNames = losses.isEmpty() ? List.of() : new ArrayList<>(losses.get(0).keySet());
    r.lossSums = new double[losses.size()][r.lossNames.size()];
    for (int s = 0; s < losses.size(); s++) {
      for (int l = 0; l < r.lossNames.size(); l++) {
        double v = losses.get(s).get(r.lossNames.get(l));
        r.lossSums[s][l] = v;
        if (!Double.isFinite(v) && r.badStep < 0) {
          r.badStep = fromStep + s;
          r.badLoss = r.lossNames.get(l) + " = " + v;
          r.badWorker = worker;
        }
      }
    }
    r.maxComputeNanos = computeNanos;
    return r;
  }

  /**
   * Sums two results (associative and commutative up to floating-point rounding); both with their
   * states, or both without ({@link #withoutState}: counts and losses only). Reuses
   * {@code a}'s double sums when it has them, as Spark's aggregations allow: neither argument is
   * used again.
   */
  public static RoundResult merge(RoundResult a, RoundResult b) {
    if (a.isEmpty()) {
      return b;
    }
    if (b.isEmpty()) {
      return a;
    }
    RoundResult r = new RoundResult();
    if (a.hasState() != b.hasState()) {
      throw new IllegalArgumentException("cannot merge a round result that has a state with one that has none");
    }
    if (a.hasState()) {
      r.weightedState = a.weighted();
      for (Map.Entry<String, double[]> e : r.weightedState.entrySet()) {
        double[] x = e.getValue();
        if (b.single != null) {
          float[] v = b.single.get(e.getKey(), x.length);
          double n = b.examples;
          for (int i = 0; i < x.length; i++) {
            x[i] += v[i] * n;
          }
        } else {
          double[] y = b.weightedState.get(e.getKey());
          for (int i = 0; i < x.length; i++) {
            x[i] += y[i];
          }
        }
      }
    }
    r.examples = a.examples + b.examples;
    r.workers = a.workers + b.workers;
    r.lossNames = a.lossNames;
    int steps = Math.max(a.lossSums.length, b.lossSums.length);
    r.lossSums = new double[steps][a.lossNames.size()];
    for (double[][] src : new double[][][] {a.lossSums, b.lossSums}) {
      for (int s = 0; s < src.length; s++) {
        for (int l = 0; l < src[s].length; l++) {
          r.lossSums[s][l] += src[s][l];
        }
      }
    }
    r.maxComputeNanos = Math.max(a.maxComputeNanos, b.maxComputeNanos);
    RoundResult bad = a.badStep >= 0 && (b.badStep < 0 || a.badStep <= b.badStep) ? a : b;
    r.badStep = bad.badStep;
    r.badLoss = bad.badLoss;
    r.badWorker = bad.badWorker;
    return r;
  }

  /** This result without its state (what the driver logs of a round the workers averaged themselves). */
  RoundResult withoutState() {
    RoundResult r = new RoundResult();
    r.examples = examples;
    r.workers = workers;
    r.lossNames = lossNames;
    r.lossSums = lossSums;
    r.maxComputeNanos = maxComputeNanos;
    r.badStep = badStep;
    r.badLoss = badLoss;
    r.badWorker = badWorker;
    return r;
  }

  /**
   * Writes this result's counts and losses (not its state) compactly: what a barrier stage's workers
   * send each other and the driver every round, where Java serialisation cost ~0.1 ms a message on
   * each side (class descriptors every time) and kept the JIT busy. {@link #readTotals} reads it.
   */
  void writeTotals(java.io.DataOutput out) throws java.io.IOException {
    out.writeLong(examples);
    out.writeInt(workers);
    out.writeLong(maxComputeNanos);
    out.writeInt(lossNames.size());
    for (String n : lossNames) {
      out.writeUTF(n);
    }
    out.writeInt(lossSums.length);
    for (double[] step : lossSums) {
      for (double v : step) {
        out.writeDouble(v);
      }
    }
    out.writeLong(badStep);
    if (badStep >= 0) {
      out.writeUTF(badLoss);
      out.writeInt(badWorker);
    }
  }

  /** A result without state, as {@link #writeTotals} wrote it. */
  static RoundResult readTotals(java.io.DataInput in) throws java.io.IOException {
    RoundResult r = new RoundResult();
    r.examples = in.readLong();
    r.workers = in.readInt();
    r.maxComputeNanos = in.readLong();
    int names = in.readInt();
    r.lossNames = new ArrayList<>(names);
    for (int i = 0; i < names; i++) {
      r.lossNames.add(in.readUTF());
    }
    r.lossSums = new double[in.readInt()][names];
    for (double[] step : r.lossSums) {
      for (int l = 0; l < names; l++) {
        step[l] = in.readDouble();
      }
    }
    r.badStep = in.readLong();
    if (r.badStep >= 0) {
      r.badLoss = in.readUTF();
      r.badWorker = in.readInt();
    }
    return r;
  }

  /** The aggregation's zero value (no worker's contribution yet). */
  private boolean isEmpty() {
    return workers == 0;
  }

  private boolean hasState() {
    return single != null || weightedState != null;
  }

  /** A single worker's state (its contribution before it met another). */
  ModelState state() {
    if (single == null) {
      throw new IllegalStateException("not a single worker's contribution with its state");
    }
    return single;
  }

  /** The state times the examples in double: a fresh copy for a single contribution, else the sums (owned). */
  private LinkedHashMap<String, double[]> weighted() {
    if (weightedState != null) {
      return weightedState;
    }
    LinkedHashMap<String, double[]> out = new LinkedHashMap<>();
    for (Map.Entry<String, float[]> e : single.arrays().entrySet()) {
      float[] v = e.getValue();
      double[] w = new double[v.length];
      for (int i = 0; i < v.length; i++) {
        w[i] = (double) v[i] * examples;
      }
      out.put(e.getKey(), w);
    }
    return out;
  }

  /**
   * What the summed weighted values are multiplied by to give the average: 1 / {@code examples} in
   * double. (A division per value took a third of the weighted mean's time: 292 against 199 µs for two
   * workers' 137,000 values. Both modes scale by it, so they agree bit for bit.)
   */
  static double meanScale(long examples) {
    return 1.0 / examples;
  }

  /** The average of the workers' states, weighted by examples. */
  public ModelState averagedState() {
    if (single != null) {
      return single; // one worker: its own state (v * n / n is exact in double)
    }
    ModelState s = new ModelState();
    double scale = meanScale(examples);
    for (Map.Entry<String, double[]> e : weightedState.entrySet()) {
      double[] w = e.getValue();
      float[] v = new float[w.length];
      for (int i = 0; i < w.length; i++) {
        v[i] = (float) (w[i] * scale);
      }
      s.put(e.getKey(), v);
    }
    return s;
  }

  /** Losses of local step {@code i} of the round, averaged over workers. */
  public Map<String, Double> meanLosses(int i) {
    Map<String, Double> m = new LinkedHashMap<>();
    for (int l = 0; l < lossNames.size(); l++) {
      m.put(lossNames.get(l), lossSums[i][l] / workers);
    }
    return m;
  }

  public int steps() {
    return lossSums.length;
  }

  public long examples() {
    return examples;
  }

  public int workers() {
    return workers;
  }

  public long maxComputeNanos() {
    return maxComputeNanos;
  }

  /** "loss 'kl = NaN' at step 1234 on worker 1", or null when every loss was finite. */
  public String nonFinite() {
    return badStep < 0 ? null : "loss " + badLoss + " at step " + badStep + " on worker " + badWorker;
  }
}
