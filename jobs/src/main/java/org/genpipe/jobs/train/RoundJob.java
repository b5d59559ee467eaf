package org.genpipe.jobs.train;

import java.io.Serializable;
import org.genpipe.common.io.HadoopConf;
import org.genpipe.models.ModelFactory;
import org.genpipe.models.ModelState;

/**
 * What every task of a run needs besides the round's state: sent with each task (small), while the
 * state travels as a broadcast.
 *
 * @param runKey unique per run: the key of the executors' cached workers
 */
public record RoundJob(
    String runKey, ModelFactory factory, DataPlan plan, HadoopConf conf, long seed, int batchSize, boolean shuffle)
    implements Serializable {

  /** The round's starting point, broadcast to the workers. */
  public record Input(ModelState state, long fromStep, int steps) implements Serializable {}

  /** Runs worker {@code index}'s part of a round on this JVM (an executor, or the driver in local mode). */
  public RoundResult run(Input in, int index) {
    return worker(index).run(in.state(), in.fromStep(), in.steps());
  }

  /**
   * As {@link #run}, for a barrier stage's worker, whose contribution is averaged and dropped before
   * its next round: its state is written into arrays the worker reuses every round.
   */
  RoundResult runInStage(Input in, int index) {
    return worker(index).run(in.state(), in.fromStep(), in.steps(), true);
  }

  /** Worker {@code index} of this run on this JVM, made (graph built, data slice read) on first use. */
  Worker worker(int index) {
    return ExecutorCache.get(runKey, index, () -> new Worker(index, factory.create(),
        WorkerData.load(index, plan.workers().get(index), conf.get(), seed, shuffle), batchSize, seed));
  }
}
