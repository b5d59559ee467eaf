package org.genpipe.jobs.train;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import scala.collection.JavaConverters;
import scala.reflect.ClassTag$;
import scala.runtime.AbstractFunction2;
import scala.runtime.BoxedUnit;

/**
 * Parameter averaging on Spark, one instance per run: each {@link #round} sends the driver's state
 * out as a broadcast, each of the {@code workers} partitions runs its local steps on its cached
 * replica, and the states come back weighted by examples and summed ({@link RoundResult#merge}). A
 * task that fails (e.g. its executor dies) is retried by Spark from the same broadcast state and the
 * same data, and Spark keeps one result per partition, so every worker contributes exactly once.
 *
 * <p>How the results meet follows DL4J's ParameterAveragingTrainingMaster: {@code treeAggregate}
 * at depth 2. Spark's tree has intermediate levels only above five partitions (see
 * {@link #hasTreeLevels}); below, it is one merge on the driver, and the round runs as a single
 * {@code runJob} over a partition RDD made once per run, with a task function and a result handler
 * of named classes. That skips what Spark's Java API does per action (a new RDD, the closure
 * cleaner's bytecode scan of the wrapping Scala closures, a zero value): measured here ~4-5 ms of a
 * ~25 ms round overhead on a two-core machine. The results are merged in partition order, so the
 * average does not depend on which task finished first.
 *
 * <p>The run's constants ({@link RoundJob}) are a broadcast made once per run, so tasks carry only
 * two broadcast handles; each round's state broadcast is destroyed when the round ends.
 */
public final class ParameterAveraging {
  /** treeAggregate depth, as DL4J's ParameterAveragingTrainingMaster's default. */
  static final int DEPTH = 2;

  private final JavaSparkContext jsc;
  private final Broadcast<RoundJob> job;
  private final int workers;
  private final JavaRDD<Integer> slots;
  private final scala.collection.Seq<Object> partitions;

  public ParameterAveraging(JavaSparkContext jsc, Broadcast<RoundJob> job, int workers) {
    this.jsc = jsc;
    this.job = job;
    this.workers = workers;
    List<Integer> ids = IntStream.range(0, workers).boxed().toList();
    this.slots = jsc.parallelize(ids, workers);
    this.partitions = JavaConverters.asScalaBufferConverter(new ArrayList<Object>(ids)).asScala().toSeq();
  }

  /**
   * Whether Spark's treeAggregate over {@code partitions} at {@code depth} has intermediate levels
   * (its rule: scale = max(ceil(n^(1/depth)), 2); another level while n > scale + ceil(n / scale)).
   */
  static boolean hasTreeLevels(int partitions, int depth) {
    int scale = Math.max((int) Math.ceil(Math.pow(partitions, 1.0 / depth)), 2);
    return partitions > scale + (int) Math.ceil((double) partitions / scale);
  }

  /** One round: every worker's local steps from {@code in}, the results summed. */
  public RoundResult round(RoundJob.Input in) {
    Broadcast<RoundJob.Input> state = jsc.broadcast(in);
    try {
      WorkerTask task = new WorkerTask(job, state);
      if (hasTreeLevels(workers, DEPTH)) {
        return slots.mapPartitionsWithIndex((index, it) -> List.of(task.run(index)).iterator(), false)
            .treeAggregate(new RoundResult(), RoundResult::merge, RoundResult::merge, DEPTH);
      }
      Collect collect = new Collect(workers);
      jsc.sc().runJob(slots.rdd(), task, partitions, collect, ClassTag$.MODULE$.apply(RoundResult.class));
      return collect.merged();
    } finally {
      state.destroy();
    }
  }

  /** A worker's part of the round, as the task function of {@code runJob}. */
  private static final class WorkerTask
      extends AbstractFunction2<TaskContext, scala.collection.Iterator<Integer>, RoundResult>
      implements Serializable {
    private static final long serialVersionUID = 1L;
    private final Broadcast<RoundJob> job;
    private final Broadcast<RoundJob.Input> state;

    WorkerTask(Broadcast<RoundJob> job, Broadcast<RoundJob.Input> state) {
      this.job = job;
      this.state = state;
    }

    RoundResult run(int worker) {
      return job.value().run(state.value(), worker);
    }

    @Override
    public RoundResult apply(TaskContext context, scala.collection.Iterator<Integer> ignored) {
      return run(context.partitionId());
    }
  }

  /** The driver's result handler: one result per partition, merged in partition order at the end. */
  private static final class Collect extends AbstractFunction2<Object, RoundResult, BoxedUnit> {
    private final RoundResult[] results;

    Collect(int workers) {
      this.results = new RoundResult[workers];
    }

    @Override
    public synchronized BoxedUnit apply(Object partition, RoundResult result) {
      results[(Integer) partition] = result;
      return BoxedUnit.UNIT;
    }

    synchronized RoundResult merged() {
      RoundResult sum = new RoundResult();
      for (int i = 0; i < results.length; i++) {
        if (results[i] == null) {
          throw new IllegalStateException("no result from worker " + i + " although its Spark job succeeded");
        }
        sum = RoundResult.merge(sum, results[i]);
      }
      return sum;
    }
  }
}
