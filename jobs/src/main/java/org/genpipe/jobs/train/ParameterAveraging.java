package org.genpipe.jobs.train;

import java.util.List;
import java.util.stream.IntStream;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;

/**
 * One round of parameter averaging on Spark: the driver's state goes out as a broadcast, each of the
 * {@code workers} partitions runs its local steps on its cached replica, and the weighted states
 * come back summed by {@code treeAggregate}. A task that fails (e.g. its executor dies) is retried
 * by Spark from the same broadcast state and the same data, so it contributes exactly once.
 *
 * <p>Per-round costs are kept off the critical path: the run's constants ({@link RoundJob}) are a
 * broadcast made once per run, so tasks carry only two broadcast handles; each worker returns its
 * state in float (half the bytes of the double sums) and the sums are formed where results meet.
 */
public final class ParameterAveraging {
  private ParameterAveraging() {}

  public static RoundResult round(JavaSparkContext jsc, Broadcast<RoundJob> job, RoundJob.Input in, int workers) {
    Broadcast<RoundJob.Input> state = jsc.broadcast(in);
    try {
      List<Integer> ids = IntStream.range(0, workers).boxed().toList();
      return jsc.parallelize(ids, workers)
          .mapPartitionsWithIndex((index, it) -> List.of(job.value().run(state.value(), index)).iterator(), false)
          .treeAggregate(new RoundResult(), RoundResult::merge, RoundResult::merge, 2);
    } finally {
      state.destroy();
    }
  }
}
