package org.genpipe.jobs.train;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.genpipe.models.TrainableModel;
import org.genpipe.models.ModelState;
import org.genpipe.models.nn.Noise;

/**
 * One model replica with its slice of the data: the unit of work on an executor, and (with one
 * worker holding all the data) the single-machine training loop. Both paths run {@link #run}; a
 * barrier stage whose workers average in the model's memory runs {@link #runInPlace}.
 */
public final class Worker {
  private static final long STEP_SALT = 0x5354455053414c54L;

  private final int index;
  private final TrainableModel model;
  private final WorkerData data;
  private final int batchSize;
  private final long seed;
  private ModelState kept;
  private long keptStep = -1;
  /** The arrays a contribution's state is written into when it is not handed on (see {@link #run}). */
  private ModelState exported;
  private List<java.nio.FloatBuffer> memory;
  /** The two sets of arrays {@link #keepState} exports into in turn. */
  private final ModelState[] snapshots = new ModelState[2];

  public Worker(int index, TrainableModel model, WorkerData data, int batchSize, long seed) {
    this.index = index;
    this.model = model;
    this.data = data;
    this.batchSize = batchSize;
    this.seed = seed;
  }

  public TrainableModel model() {
    return model;
  }

  /**
   * Keeps the averaged state reached at {@code step} (a barrier stage's checkpoint, sample or last
   * round), so that a stage attempt starting there on this JVM need not fetch it.
   */
  public synchronized void keep(ModelState state, long step) {
    kept = state;
    keptStep = step;
  }

  /**
   * Exports the model's state (in a barrier stage that averages in the model's memory: the round's
   * average) and keeps it as the state reached at {@code step} ({@link #keep}); returns it. Into
   * arrays reused in turn: of two sets, the one not kept now, handed first to {@code beforeOverwrite}
   * (which waits until a reader of it, a report on its way to the driver, is done); the state
   * returned stays as it is until the next-but-one call. (A new state every time was a G1 humongous
   * allocation for the beta-VAE, and it started a collection: 10-20 ms of one worker's round at
   * every checkpoint.)
   */
  public synchronized ModelState keepState(long step, java.util.function.Consumer<ModelState> beforeOverwrite) {
    int i = snapshots[0] != null && snapshots[0] == kept ? 1 : 0;
    if (snapshots[i] == null) {
      snapshots[i] = new ModelState();
    } else {
      beforeOverwrite.accept(snapshots[i]);
    }
    model.exportTo(snapshots[i]);
    kept = snapshots[i];
    keptStep = step;
    return kept;
  }

  /** The step of the state kept, or -1. */
  public synchronized long keptStep() {
    return keptStep;
  }

  /** The state kept at {@code step}, or null. */
  public synchronized ModelState kept(long step) {
    return keptStep == step ? kept : null;
  }

  /** The seed of all noise that worker {@code worker} draws at {@code step}. */
  public static long stepSeed(long seed, int worker, long step) {
    return Noise.mix(seed ^ STEP_SALT, worker, step);
  }

  /** As {@link #run(ModelState, long, int, boolean)}, the contribution's state in arrays of its own. */
  public RoundResult run(ModelState state, long fromStep, int steps) {
    return run(state, fromStep, steps, false);
  }

  /**
   * Starts from {@code state}, runs local steps [fromStep, fromStep + steps) and returns this
   * worker's contribution, with the steps' time as its compute (loading the state and exporting it
   * again belong to the averaging, not the training). Stops early at the first non-finite loss.
   * {@code reuseState}: the contribution's state is in arrays this worker overwrites in its next
   * round (for a caller that is done with it by then), else arrays of its own.
   */
  public synchronized RoundResult run(ModelState state, long fromStep, int steps, boolean reuseState) {
    model.loadState(state);
    Steps done = steps(fromStep, steps);
    ModelState out;
    if (reuseState) {
      exported = exported == null ? new ModelState() : exported;
      model.exportTo(exported);
      out = exported;
    } else {
      out = model.state();
    }
    return RoundResult.of(index, out, done.examples, done.losses, fromStep, done.nanos);
  }

  /**
   * The memory the model trains in ({@link TrainableModel#stateMemory}), or null where the model
   * does not offer it.
   */
  public synchronized List<java.nio.FloatBuffer> stateMemory() {
    if (memory == null) {
      memory = model.stateMemory();
    }
    return memory;
  }

  /** Loads {@code state} into the model (where a barrier stage that averages in the model's memory starts). */
  public synchronized void load(ModelState state) {
    model.loadState(state);
  }

  /**
   * Runs local steps [fromStep, fromStep + steps) from the state the model holds, and returns this
   * worker's contribution without a state: for an allreduce that averages in the model's memory.
   */
  public synchronized RoundResult runInPlace(long fromStep, int steps) {
    Steps done = steps(fromStep, steps);
    return RoundResult.of(index, null, done.examples, done.losses, fromStep, done.nanos);
  }

  private record Steps(List<Map<String, Double>> losses, long examples, long nanos) {}

  /** The steps, timed (their time is the round's compute); stops at the first non-finite loss. */
  private Steps steps(long fromStep, int steps) {
    long start = System.nanoTime();
    List<Map<String, Double>> losses = new ArrayList<>(steps);
    long examples = 0;
    for (long s = fromStep; s < fromStep + steps; s++) {
      Map<String, Double> l = model.trainStep(data.batch(s, batchSize, model.pixelRange()), s, stepSeed(seed, index, s));
      losses.add(l);
      examples += batchSize;
      if (l.values().stream().anyMatch(v -> !Double.isFinite(v))) {
        break;
      }
    }
    return new Steps(losses, examples, System.nanoTime() - start);
  }
}
