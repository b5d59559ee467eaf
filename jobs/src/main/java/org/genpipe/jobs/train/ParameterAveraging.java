package org.genpipe.jobs.train;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
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
 *
 * <p>In Spark local mode the tasks run in the driver's JVM, and the runJob path hands the round's
 * state to them and their results back by reference, through a map keyed by run, round, partition
 * and task attempt, instead of through a broadcast and Spark's task results (which serialise and
 * copy the megabytes of state on the way out and on each worker's way back: ~6 ms of a round here).
 * Spark still schedules, retries and keeps one result per partition; a round's entries, including
 * those of failed attempts, are removed when it ends. {@link #SERIALIZE_PROPERTY} turns this off.
 */
public final class ParameterAveraging {
  /** treeAggregate depth, as DL4J's ParameterAveragingTrainingMaster's default. */
  static final int DEPTH = 2;

  /** Set to true to send the state serialised (broadcast and task results) in local mode too. */
  public static final String SERIALIZE_PROPERTY = "genpipe.averaging.serialize";

  /** In local mode: rounds' inputs and results handed between the driver and its tasks, by key. */
  private static final Map<String, Object> HANDED = new ConcurrentHashMap<>();
  private static final String INPUT = "input";

  private final JavaSparkContext jsc;
  private final Broadcast<RoundJob> job;
  private final int workers;
  private final JavaRDD<Integer> slots;
  private final scala.collection.Seq<Object> partitions;
  private final String id = UUID.randomUUID().toString();
  private final boolean inProcess;
  private long rounds;

  public ParameterAveraging(JavaSparkContext jsc, Broadcast<RoundJob> job, int workers) {
    this.jsc = jsc;
    this.job = job;
    this.workers = workers;
    List<Integer> ids = IntStream.range(0, workers).boxed().toList();
    this.slots = jsc.parallelize(ids, workers);
    this.partitions = JavaConverters.asScalaBufferConverter(new ArrayList<Object>(ids)).asScala().toSeq();
    this.inProcess = handsOverInProcess(jsc, workers);
  }

  /**
   * Whether a run with {@code workers} on this Spark context hands the state over by reference: in
   * local mode, on the runJob path (below six workers), unless {@link #SERIALIZE_PROPERTY} is set.
   */
  public static boolean handsOverInProcess(JavaSparkContext jsc, int workers) {
    return jsc.sc().isLocal() && !hasTreeLevels(workers, DEPTH) && !Boolean.getBoolean(SERIALIZE_PROPERTY);
  }

  /** How many inputs and results are handed over now (0 between rounds). */
  static int handedCount() {
    return HANDED.size();
  }

  /**
   * Whether Spark's treeAggregate over {@code partitions} at {@code depth} has intermediate levels
   * (its rule: scale = max(ceil(n^(1/depth)), 2); another level while n > scale + ceil(n / scale)).
   */
  static boolean hasTreeLevels(int partitions, int depth) {
    int scale = Math.max((int) Math.ceil(Math.pow(partitions, 1.0 / depth)), 2);
    return partitions > scale + (int) Math.ceil((double) partitions / scale);
  }

  /**
   * One round: every worker's local steps from {@code in}, the results summed. Named in Spark's UI
   * as the steps it runs.
   */
  public RoundResult round(RoundJob.Input in) {
    jsc.setJobDescription("parameter averaging: steps " + in.fromStep() + "-" + (in.fromStep() + in.steps() - 1)
        + " on " + workers + " workers");
    try {
      return inProcess ? inProcessRound(in) : broadcastRound(in);
    } finally {
      jsc.setJobDescription(null);
    }
  }

  /**
   * The state out as a broadcast, the results back as Spark's task results: through treeAggregate
   * from six workers on, as DL4J (the results meet on executors first), else one runJob.
   */
  private RoundResult broadcastRound(RoundJob.Input in) {
    Broadcast<RoundJob.Input> state = jsc.broadcast(in);
    try {
      WorkerTask task = new WorkerTask(job, state, null);
      if (hasTreeLevels(workers, DEPTH)) {
        return slots.mapPartitionsWithIndex((index, it) -> List.of(task.run(index)).iterator(), false)
            .treeAggregate(new RoundResult(), RoundResult::merge, RoundResult::merge, DEPTH);
      }
      return runJob(task);
    } finally {
      state.destroy();
    }
  }

  /** The state out and the results back through {@link #HANDED} (local mode: tasks run in this JVM). */
  private RoundResult inProcessRound(RoundJob.Input in) {
    String round = id + "/" + rounds++ + "/";
    HANDED.put(round + INPUT, in);
    try {
      return runJob(new WorkerTask(job, null, round));
    } finally {
      HANDED.keySet().removeIf(k -> k.startsWith(round)); // the input and any failed attempt's result
    }
  }

  private RoundResult runJob(WorkerTask task) {
    Collect collect = new Collect(workers);
    jsc.sc().runJob(slots.rdd(), task, partitions, collect, ClassTag$.MODULE$.apply(Object.class));
    return collect.merged();
  }

  /** A worker's part of the round, as the task function of {@code runJob}. */
  private static final class WorkerTask
      extends AbstractFunction2<TaskContext, scala.collection.Iterator<Integer>, Object>
      implements Serializable {
    private static final long serialVersionUID = 1L;
    private final Broadcast<RoundJob> job;
    private final Broadcast<RoundJob.Input> state;
    private final String handedRound;

    /** Exactly one of {@code state} (a broadcast) and {@code handedRound} (a key prefix in HANDED) is set. */
    WorkerTask(Broadcast<RoundJob> job, Broadcast<RoundJob.Input> state, String handedRound) {
      this.job = job;
      this.state = state;
      this.handedRound = handedRound;
    }

    RoundResult run(int worker) {
      RoundJob.Input in = state != null ? state.value() : (RoundJob.Input) HANDED.get(handedRound + INPUT);
      if (in == null) {
        throw new IllegalStateException("averaging round " + handedRound + " handed no state to this JVM: its task"
            + " runs outside the driver's JVM although the Spark master is local");
      }
      return job.value().run(in, worker);
    }

    @Override
    public Object apply(TaskContext context, scala.collection.Iterator<Integer> ignored) {
      RoundResult r = run(context.partitionId());
      if (handedRound == null) {
        return r;
      }
      String key = handedRound + context.partitionId() + "/" + context.taskAttemptId();
      HANDED.put(key, r);
      return new Handed(key);
    }
  }

  /** A task's result left in {@link #HANDED} under {@code key}. */
  private record Handed(String key) implements Serializable {}

  /** The driver's result handler: one result per partition, merged in partition order at the end. */
  private static final class Collect extends AbstractFunction2<Object, Object, BoxedUnit> {
    private final RoundResult[] results;

    Collect(int workers) {
      this.results = new RoundResult[workers];
    }

    @Override
    public synchronized BoxedUnit apply(Object partition, Object result) {
      results[(Integer) partition] =
          result instanceof Handed h ? (RoundResult) HANDED.remove(h.key()) : (RoundResult) result;
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
