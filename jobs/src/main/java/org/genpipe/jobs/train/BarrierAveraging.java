package org.genpipe.jobs.train;

import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.io.Serializable;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.genpipe.models.ModelState;

/**
 * Parameter averaging as one Spark barrier stage for many rounds: every task keeps its replica, and
 * the workers average between themselves every round over TCP instead of each round being a Spark
 * job. The tasks find each other with {@code BarrierTaskContext.allGather}; each round, worker 0
 * receives the other workers' contributions, sums them in worker order with {@link RoundResult#merge}
 * (the same double sums in the same order as a {@code rounds}-mode round of up to five workers, so
 * the parameters are bit for bit the same), and sends the averaged state back. Worker 0 returns the
 * stage's rounds (losses, examples, times: no states) and the final averaged state to the driver,
 * which checkpoints and logs as in rounds mode.
 *
 * <p>A failed task fails the barrier stage, and Spark runs the whole stage again from the stage's
 * start state (a broadcast): nothing is counted twice. (The outcome reaches the driver through a
 * one-partition shuffle: Spark retries a barrier stage only when it is a shuffle map stage.) A non-finite loss or state ends the stage
 * after that round on every worker.
 */
final class BarrierAveraging {
  /** How long a worker waits for the others (connecting, or a round's contribution). */
  private static final int TIMEOUT_MILLIS = 30 * 60 * 1000;

  private final JavaSparkContext jsc;
  private final Broadcast<RoundJob> job;
  private final int workers;
  private final JavaRDD<Integer> slots;
  private final boolean loopback;

  BarrierAveraging(JavaSparkContext jsc, Broadcast<RoundJob> job, int workers) {
    this.jsc = jsc;
    this.job = job;
    this.workers = workers;
    this.slots = jsc.parallelize(IntStream.range(0, workers).boxed().toList(), workers);
    // local and local-cluster masters: every task is on this machine, and the sockets stay on 127.0.0.1
    this.loopback = jsc.sc().master().startsWith("local");
  }

  /**
   * Why a barrier stage cannot run here (then rounds mode runs, with a warning), or null: dynamic
   * allocation, or fewer task slots than workers (a barrier stage needs all its tasks at once).
   */
  static String unavailable(JavaSparkContext jsc, int workers) {
    if (jsc.getConf().getBoolean("spark.dynamicAllocation.enabled", false)) {
      return "spark.dynamicAllocation.enabled is true (a barrier stage needs a fixed set of executors)";
    }
    int slots = jsc.sc().defaultParallelism();
    if (slots < workers) {
      return "train.workers " + workers + " needs as many free task slots at once, the cluster has " + slots
          + " (spark.default.parallelism / cores)";
    }
    return null;
  }

  /** A stage's start: the state, the step it is at, how many rounds, and each round's steps. */
  record Stage(ModelState state, long fromStep, int rounds, int frequency, long totalSteps) implements Serializable {}

  /** One round as worker 0 saw it: the merged contribution without its state, and the round's wall time. */
  record Round(RoundResult result, long nanos) implements Serializable {}

  /** What a stage returns: its rounds and the averaged state after the last one. */
  record Outcome(List<Round> rounds, ModelState state) implements Serializable {}

  /** Runs {@code stage} as one barrier stage; returns worker 0's account of it. */
  Outcome run(Stage stage) {
    jsc.setJobDescription("parameter averaging (barrier): " + stage.rounds() + " rounds from step " + stage.fromStep()
        + " on " + workers + " workers");
    Broadcast<Stage> start = jsc.broadcast(stage);
    try {
      // Spark cannot rerun a failed barrier stage whose tasks return results to the driver (a ResultStage);
      // behind a shuffle it is a ShuffleMapStage, which a lost executor makes Spark rerun whole
      List<Outcome> out = slots.rdd().barrier().mapPartitions(new StageTask(job, start, workers, loopback), false,
          scala.reflect.ClassTag$.MODULE$.<Outcome>apply(Outcome.class)).toJavaRDD().repartition(1).collect();
      if (out.size() != 1) {
        throw new IllegalStateException("the barrier stage returned " + out.size() + " outcomes, expected one");
      }
      return out.get(0);
    } finally {
      start.destroy();
      jsc.setJobDescription(null);
    }
  }

  /** The barrier stage's task function: a worker's part of the stage; worker 0's outcome is the stage's result. */
  private static final class StageTask
      extends scala.runtime.AbstractFunction1<scala.collection.Iterator<Integer>, scala.collection.Iterator<Outcome>>
      implements Serializable {
    private static final long serialVersionUID = 1L;
    private final Broadcast<RoundJob> job;
    private final Broadcast<Stage> stage;
    private final int workers;
    private final boolean loopback;

    StageTask(Broadcast<RoundJob> job, Broadcast<Stage> stage, int workers, boolean loopback) {
      this.job = job;
      this.stage = stage;
      this.workers = workers;
      this.loopback = loopback;
    }

    @Override
    public scala.collection.Iterator<Outcome> apply(scala.collection.Iterator<Integer> ignored) {
      try {
        Outcome o = runTask(job.value(), stage.value(), workers, loopback);
        List<Outcome> out = o == null ? List.of() : List.of(o);
        return scala.collection.JavaConverters.asScalaIteratorConverter(out.iterator()).asScala();
      } catch (IOException | ClassNotFoundException e) {
        throw new IllegalStateException("barrier averaging: worker " + BarrierTaskContext.get().partitionId() + ": "
            + e, e);
      }
    }
  }

  /** One worker's part of the stage; worker 0 returns the outcome, the others null. */
  private static Outcome runTask(RoundJob job, Stage stage, int workers, boolean loopback) throws IOException,
      ClassNotFoundException {
    BarrierTaskContext ctx = BarrierTaskContext.get();
    int rank = ctx.partitionId();
    String host = loopback ? "127.0.0.1" : ctx.getTaskInfos()[rank].address().replaceFirst(":\\d+$", "");
    try (ServerSocket server = rank == 0 ? new ServerSocket() : null) {
      if (server != null) {
        server.bind(new InetSocketAddress(InetAddress.getByName(host), 0), workers);
        server.setSoTimeout(TIMEOUT_MILLIS);
      }
      String[] addresses = ctx.allGather(server != null ? host + ":" + server.getLocalPort() : "");
      return rank == 0 ? lead(job, stage, workers, server) : follow(job, stage, rank, addresses[0]);
    }
  }

  /** Worker 0: its own steps, the others' contributions in worker order, the average back to them. */
  private static Outcome lead(RoundJob job, Stage stage, int workers, ServerSocket server) throws IOException,
      ClassNotFoundException {
    Peer[] peers = new Peer[workers];
    try {
      for (int i = 1; i < workers; i++) {
        Socket s = server.accept();
        s.setSoTimeout(TIMEOUT_MILLIS);
        s.setTcpNoDelay(true);
        Peer p = new Peer(s);
        int rank = p.in.readInt();
        peers[rank] = p;
      }
      List<Round> rounds = new ArrayList<>();
      ModelState state = stage.state();
      long step = stage.fromStep();
      for (int k = 0; k < stage.rounds() && step < stage.totalSteps(); k++) {
        long started = System.nanoTime();
        int n = (int) Math.min(stage.frequency(), stage.totalSteps() - step);
        RoundResult sum = RoundResult.merge(new RoundResult(), job.run(new RoundJob.Input(state, step, n), 0));
        for (int i = 1; i < workers; i++) {
          sum = RoundResult.merge(sum, (RoundResult) peers[i].in.readObject());
        }
        ModelState averaged = sum.averagedState();
        boolean stop = sum.nonFinite() != null || averaged.firstNonFinite() != null;
        byte[] bytes = averaged.toBytes();
        for (int i = 1; i < workers; i++) {
          peers[i].out.writeBoolean(stop);
          peers[i].out.writeInt(bytes.length);
          peers[i].out.write(bytes);
          peers[i].out.flush();
        }
        rounds.add(new Round(sum.withoutState(), System.nanoTime() - started));
        state = averaged;
        step += n;
        if (stop) {
          break;
        }
      }
      return new Outcome(rounds, state);
    } finally {
      for (Peer p : peers) {
        if (p != null) {
          p.socket.close();
        }
      }
    }
  }

  /** Any other worker: its steps, its contribution to worker 0, the average back, until worker 0 says stop. */
  private static Outcome follow(RoundJob job, Stage stage, int rank, String leader) throws IOException {
    String[] hp = leader.split(":");
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress(hp[0], Integer.parseInt(hp[1])), TIMEOUT_MILLIS);
      s.setSoTimeout(TIMEOUT_MILLIS);
      s.setTcpNoDelay(true);
      Peer p = new Peer(s);
      p.out.writeInt(rank);
      p.out.flush();
      ModelState state = stage.state();
      long step = stage.fromStep();
      for (int k = 0; k < stage.rounds() && step < stage.totalSteps(); k++) {
        int n = (int) Math.min(stage.frequency(), stage.totalSteps() - step);
        p.out.writeObject(job.run(new RoundJob.Input(state, step, n), rank));
        p.out.flush();
        p.out.reset();
        boolean stop = p.in.readBoolean();
        byte[] bytes = new byte[p.in.readInt()];
        p.in.readFully(bytes);
        if (stop) {
          break;
        }
        state = ModelState.fromBytes(bytes, "the average from worker 0");
        step += n;
      }
      return null;
    }
  }

  /** A connection between worker 0 and another worker. */
  private static final class Peer {
    final Socket socket;
    final ObjectOutputStream out;
    final ObjectInputStream in;

    Peer(Socket socket) throws IOException {
      this.socket = socket;
      this.out = new ObjectOutputStream(new java.io.BufferedOutputStream(socket.getOutputStream(), 1 << 16));
      out.flush();
      this.in = new ObjectInputStream(new java.io.BufferedInputStream(socket.getInputStream(), 1 << 16));
    }
  }
}
