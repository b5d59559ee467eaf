package org.genpipe.jobs.train;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.io.Serializable;
import java.util.stream.IntStream;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.genpipe.models.ModelState;

/**
 * Parameter averaging as one Spark barrier stage for many rounds: every task keeps its replica, and
 * the workers average between themselves every round over TCP instead of each round being a Spark
 * job. The tasks find each other through the driver's {@link StageCoordinator} and average by an
 * {@link Allreduce} (reduce-scatter + all-gather, sums in double in worker order: the same operations
 * in the same order as a {@code rounds}-mode round, so the parameters are bit for bit the same).
 * Worker 0 reports every round (losses, examples, time) to the driver as it ends, with the averaged
 * state at the rounds where the driver checkpoints or draws samples and at the last; the driver logs,
 * checkpoints and samples as in rounds mode while the workers go on.
 *
 * <p>A failed task fails the barrier stage, and Spark runs the stage again; the new attempt starts
 * from the last state the driver took (the coordinator's resume point), so nothing is counted twice
 * and little is recomputed. (The stage is a shuffle map stage: Spark retries a barrier stage only then.)
 * A non-finite loss or state ends the stage after that round on every worker.
 */
final class BarrierAveraging implements java.io.Closeable {
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(BarrierAveraging.class);
  /**
   * Where workers on one host share their states' memory (a tmpfs: Linux's /dev/shm) instead of
   * sending them over TCP; null where there is none. Workers on other hosts use TCP.
   */
  private static final java.nio.file.Path SHARED_MEMORY = sharedMemory(java.nio.file.Path.of("/dev/shm"));

  private static java.nio.file.Path sharedMemory(java.nio.file.Path dir) {
    return java.nio.file.Files.isDirectory(dir) && java.nio.file.Files.isWritable(dir) ? dir : null;
  }

  /** How often worker 0 sends the driver the rounds that carry no state (the progress bar's and metrics' delay). */
  static final int REPORT_MILLIS = 500;

  /** How long a worker waits for the others (connecting, or a round's contribution). */
  private static final int TIMEOUT_MILLIS = 30 * 60 * 1000;

  private final JavaSparkContext jsc;
  private final Broadcast<RoundJob> job;
  private final int workers;
  private final JavaRDD<Integer> slots;
  private final boolean loopback;
  private final boolean sharedMemory;
  private final StageCoordinator coordinator;

  /** {@code sharedMemory}: workers on one host may move their states through {@link #SHARED_MEMORY}. */
  BarrierAveraging(JavaSparkContext jsc, Broadcast<RoundJob> job, int workers, boolean sharedMemory) {
    this.jsc = jsc;
    this.sharedMemory = sharedMemory;
    this.job = job;
    this.workers = workers;
    this.slots = jsc.parallelize(IntStream.range(0, workers).boxed().toList(), workers);
    // local and local-cluster masters: every task is on this machine, and the sockets stay on 127.0.0.1
    this.loopback = jsc.sc().master().startsWith("local");
    org.apache.spark.SparkConf c = jsc.getConf();
    String driverHost = loopback ? "127.0.0.1" : c.get("spark.driver.host", "127.0.0.1");
    try {
      this.coordinator = new StageCoordinator(loopback ? "127.0.0.1" : c.get("spark.driver.bindAddress", driverHost),
          driverHost);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException("barrier averaging: cannot open the driver's coordinator socket", e);
    }
  }

  /**
   * Why a barrier stage cannot run here (then rounds mode runs, with a warning), or null: dynamic
   * allocation, or fewer task slots than workers (a barrier stage needs all its tasks at once). On a
   * cluster the executors register after the application starts, so this waits up to
   * {@code spark.scheduler.maxRegisteredResourcesWaitingTime} (default 30 s) for enough slots:
   * Spark itself would otherwise fail the barrier stage's slot check and try again only every 15 s.
   */
  static String unavailable(JavaSparkContext jsc, int workers) {
    if (jsc.getConf().getBoolean("spark.dynamicAllocation.enabled", false)) {
      return "spark.dynamicAllocation.enabled is true (a barrier stage needs a fixed set of executors)";
    }
    long deadline = System.nanoTime()
        + jsc.getConf().getTimeAsMs("spark.scheduler.maxRegisteredResourcesWaitingTime", "30s") * 1_000_000L;
    int slots = slots(jsc);
    boolean local = jsc.sc().master().startsWith("local[") || jsc.sc().master().equals("local");
    if (slots < workers && !local) {
      LOG.info("barrier averaging: waiting for {} task slots (now {})", workers, slots);
      while (slots < workers && System.nanoTime() < deadline) {
        try {
          Thread.sleep(100);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          break;
        }
        slots = slots(jsc);
      }
    }
    if (slots < workers) {
      return "train.workers " + workers + " needs as many free task slots at once, the cluster has " + slots
          + " (executor cores / spark.task.cpus, and task GPUs where they are scheduled)";
    }
    return null;
  }

  /** The tasks the registered executors can run at once, as Spark's barrier check counts them. */
  private static int slots(JavaSparkContext jsc) {
    return jsc.sc().maxNumConcurrentTasks(jsc.sc().resourceProfileManager().defaultResourceProfile());
  }

  /**
   * A stage's start: the state, the step it is at, how many rounds, each round's steps, and the rounds
   * (numbered from the stage's start) after which the driver needs the averaged state (checkpoints,
   * sample grids); it always gets the state of the stage's last round.
   */
  record Stage(ModelState state, long fromStep, int rounds, int frequency, long totalSteps, java.util.BitSet stateRounds)
      implements Serializable {}

  /** A stage without its start state (which the coordinator hands to the tasks that need it). */
  private record Plan(long fromStep, int rounds, int frequency, long totalSteps, java.util.BitSet stateRounds)
      implements Serializable {}

  /**
   * One round as worker 0 saw it: the merged contribution without its state, its wall time on worker
   * 0 (since the previous round's report; the attempt's first: since its rounds began), the averaged
   * state where the driver asked for it (else null), and whether the stage ends with it.
   */
  record Round(RoundResult result, long nanos, ModelState state, boolean last) {
    /** Writes this round as worker 0 sends it to the driver ({@link #read} reads it). */
    void write(DataOutputStream out) throws IOException {
      out.writeLong(nanos);
      out.writeBoolean(last);
      result.writeTotals(out);
      out.writeInt(state == null ? -1 : Math.toIntExact(state.byteSize()));
      if (state != null) {
        state.writeTo(out);
      }
    }

    static Round read(DataInputStream in) throws IOException {
      long nanos = in.readLong();
      boolean last = in.readBoolean();
      RoundResult result = RoundResult.readTotals(in);
      int n = in.readInt();
      ModelState state = null;
      if (n >= 0) {
        byte[] b = new byte[n];
        in.readFully(b);
        state = ModelState.fromBytes(b, "worker 0's report of a barrier round");
      }
      return new Round(result, nanos, state, last);
    }
  }

  /**
   * Runs {@code stage} as one barrier stage; hands each round to {@code live} as worker 0 reports it
   * (every round once, in order: the driver takes the states it carries, and a retried attempt
   * starts from the latest of them), and asks the workers to stop after the current round when
   * {@code stopRequested} turns true. Returns the number of rounds run, once the stage's last round
   * arrived and its tasks ended. An exception from {@code live} cancels the stage.
   */
  int run(Stage stage, java.util.function.Consumer<Round> live, java.util.function.BooleanSupplier stopRequested) {
    jsc.setJobDescription("parameter averaging (barrier): " + stage.rounds() + " rounds from step " + stage.fromStep()
        + " on " + workers + " workers");
    String key = java.util.UUID.randomUUID().toString();
    StageCoordinator.Contact contact = coordinator.begin(key, workers, stage.fromStep(), stage.state());
    org.apache.spark.SimpleFutureAction<org.apache.spark.MapOutputStatistics> future = null;
    try {
      Plan plan = new Plan(stage.fromStep(), stage.rounds(), stage.frequency(), stage.totalSteps(),
          stage.stateRounds());
      JavaRDD<Integer> tasks = slots.rdd().barrier().mapPartitions(new StageTask(job, plan, workers, loopback,
          sharedMemory, contact), false, scala.reflect.ClassTag$.MODULE$.<Integer>apply(Integer.class)).toJavaRDD();
      // only the barrier stage runs, as a shuffle map stage (its tasks write nothing): Spark reruns a failed
      // barrier map stage whole, but not a barrier stage that returns results to the driver; the rounds and
      // states come from worker 0 through the coordinator
      org.apache.spark.ShuffleDependency<?, ?, ?> dependency = (org.apache.spark.ShuffleDependency<?, ?, ?>) tasks
          .mapToPair(i -> new scala.Tuple2<>(i, i)).partitionBy(new org.apache.spark.HashPartitioner(1)).rdd()
          .dependencies().head();
      future = jsc.sc().submitMapStage(dependency);
      int delivered = 0;
      long step = stage.fromStep();
      boolean stopSent = false;
      boolean ended = false;
      long drained = 0;
      while (!ended) {
        StageCoordinator.Reported r = coordinator.reported().poll(20, java.util.concurrent.TimeUnit.MILLISECONDS);
        if (r != null && r.stage().equals(key) && r.index() == delivered) {
          live.accept(r.round());
          delivered++;
          step += r.round().result().steps();
          ended = r.round().last();
          if (r.round().state() != null) {
            coordinator.resumeAt(new StageCoordinator.Resume(delivered, step, r.round().state()));
          }
        } else if (r == null && future.isCompleted()) {
          future.get(); // throws the stage's failure
          // the tasks ended: worker 0's last reports may still be on their way through the coordinator
          if (drained == 0) {
            drained = System.nanoTime() + 60_000_000_000L;
          } else if (System.nanoTime() > drained) {
            throw new IllegalStateException("barrier stage " + key + " ended after " + delivered + " of "
                + stage.rounds() + " rounds without its last round reaching the driver within 60 s");
          }
        }
        if (!stopSent && !ended && stopRequested.getAsBoolean()) {
          coordinator.requestStop(delivered);
          stopSent = true;
        }
      }
      future.get(); // the tasks end right after the last round: their slots are free for what comes next
      return delivered;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while a barrier stage ran", e);
    } catch (org.apache.spark.SparkException e) {
      throw new IllegalStateException(e.getMessage(), e);
    } finally {
      if (future != null && !future.isCompleted()) {
        future.cancel();
      }
      jsc.setJobDescription(null);
    }
  }

  @Override
  public void close() throws IOException {
    coordinator.close();
  }

  /** The barrier stage's task function: a worker's part of the stage (it returns nothing: worker 0 reports to the driver). */
  private static final class StageTask
      extends scala.runtime.AbstractFunction1<scala.collection.Iterator<Integer>, scala.collection.Iterator<Integer>>
      implements Serializable {
    private static final long serialVersionUID = 1L;
    private final Broadcast<RoundJob> job;
    private final Plan plan;
    private final int workers;
    private final boolean loopback;
    private final boolean sharedMemory;
    private final StageCoordinator.Contact contact;

    StageTask(Broadcast<RoundJob> job, Plan plan, int workers, boolean loopback, boolean sharedMemory,
        StageCoordinator.Contact contact) {
      this.job = job;
      this.plan = plan;
      this.workers = workers;
      this.loopback = loopback;
      this.sharedMemory = sharedMemory;
      this.contact = contact;
    }

    @Override
    public scala.collection.Iterator<Integer> apply(scala.collection.Iterator<Integer> ignored) {
      try {
        runTask(job.value(), plan, workers, loopback, sharedMemory ? SHARED_MEMORY : null, contact);
        return scala.collection.JavaConverters.asScalaIteratorConverter(java.util.Collections.<Integer>emptyIterator())
            .asScala();
      } catch (IOException e) {
        throw new IllegalStateException("barrier averaging: worker " + BarrierTaskContext.get().partitionId() + ": "
            + e, e);
      }
    }
  }

  /**
   * One worker's part of the stage; worker 0 reports each round to the driver. The attempt starts at
   * the coordinator's resume point, from the state this JVM's worker kept there when it has it (every
   * worker keeps the average at each round whose state the driver takes), else from the state the
   * coordinator sends.
   */
  private static void runTask(RoundJob job, Plan stage, int workers, boolean loopback,
      java.nio.file.Path sharedMemory, StageCoordinator.Contact contact) throws IOException {
    BarrierTaskContext ctx = BarrierTaskContext.get();
    int rank = ctx.partitionId();
    String host = loopback ? "127.0.0.1" : ctx.getTaskInfos()[rank].address().replaceFirst(":\\d+$", "");
    Worker worker = job.worker(rank);
    try (java.nio.channels.ServerSocketChannel server = Allreduce.listen(host, workers);
        Socket driver = new Socket()) {
      try {
        driver.connect(new java.net.InetSocketAddress(contact.host(), contact.port()), 60_000);
      } catch (IOException e) {
        throw new IOException("cannot reach the driver's barrier coordinator at " + contact.host() + ":"
            + contact.port() + " (" + e + "): executors must be able to open connections to the driver on any port,"
            + " or set train.averaging.mode: rounds", e);
      }
      driver.setTcpNoDelay(true);
      driver.setSoTimeout(TIMEOUT_MILLIS);
      DataOutputStream toDriver = new DataOutputStream(new java.io.BufferedOutputStream(driver.getOutputStream()));
      DataInputStream fromDriver = new DataInputStream(new java.io.BufferedInputStream(driver.getInputStream()));
      toDriver.writeUTF(contact.stage());
      toDriver.writeInt(ctx.stageAttemptNumber());
      toDriver.writeInt(rank);
      toDriver.writeUTF(Allreduce.address(server));
      toDriver.writeLong(worker.keptStep());
      toDriver.flush();
      Runnable alive = ctx::killTaskIfInterrupted;
      awaitData(driver, fromDriver, alive); // until every task of the attempt registered
      String[] addresses = new String[fromDriver.readInt()];
      for (int i = 0; i < addresses.length; i++) {
        addresses[i] = fromDriver.readUTF();
      }
      int first = fromDriver.readInt();
      long step = fromDriver.readLong();
      int length = fromDriver.readInt();
      ModelState state;
      if (length >= 0) {
        byte[] b = new byte[length];
        fromDriver.readFully(b);
        state = ModelState.fromBytes(b, "the barrier coordinator's start state");
      } else {
        state = worker.kept(step);
        if (state == null) {
          throw new IOException("worker " + rank + ": the coordinator did not send the state of step " + step
              + ", and this executor does not hold it");
        }
      }
      // worker 0 hears the driver's stop request (the round to stop after, at the earliest) while it trains
      java.util.concurrent.atomic.AtomicInteger stopAt = new java.util.concurrent.atomic.AtomicInteger(-1);
      if (rank == 0) {
        Thread listener = new Thread(() -> {
          try {
            while (true) {
              stopAt.set(fromDriver.readInt());
            }
          } catch (IOException ended) {
            // the stage ended, or the driver went away (then the stage fails anyway)
          }
        }, "genpipe-barrier-stop-listener");
        listener.setDaemon(true);
        listener.start();
      }
      // where the model offers it, the workers average in the memory the model trains in: no state is
      // exported from the model and loaded into it every round (~0.2 ms of the beta-VAE's round)
      java.util.List<java.nio.FloatBuffer> memory = worker.stateMemory();
      long values = memory != null ? memory.stream().mapToLong(java.nio.FloatBuffer::capacity).sum()
          : state.totalValues();
      try (Allreduce allreduce = Allreduce.connect(rank, addresses, server, TIMEOUT_MILLIS, alive, values,
          sharedMemory);
          Reports reports = new Reports(toDriver)) {
        if (memory != null) {
          worker.load(state);
        }
        long reportedAt = System.nanoTime();
        for (int k = first; k < stage.rounds() && step < stage.totalSteps(); k++) {
          int n = (int) Math.min(stage.frequency(), stage.totalSteps() - step);
          int at = stopAt.get();
          boolean stop = at >= 0 && k >= at;
          Allreduce.Averaged a = memory != null ? allreduce.average(worker.runInPlace(step, n), memory, stop)
              : allreduce.average(job.runInStage(new RoundJob.Input(state, step, n), rank), stop);
          state = a.state();
          step += n;
          // every worker sees the same totals, average and request, so all stop after the same round
          boolean last = k == stage.rounds() - 1 || step >= stage.totalSteps() || a.diverged() || a.stopRequested();
          boolean withState = last || stage.stateRounds().get(k);
          // a copy: the allreduce's next round overwrites the state's arrays (or the model's memory)
          ModelState taken = null;
          if (withState && memory != null) {
            taken = worker.keepState(step, reports::awaitSent);
          } else if (withState) {
            taken = state.copy();
            worker.keep(taken, step);
          }
          if (rank == 0) {
            long now = System.nanoTime();
            // the attempt's first round goes at once: the driver times it from the stage's submission
            reports.send(new Round(a.totals(), now - reportedAt, taken, last), k == first);
            reportedAt = now;
          }
          if (last) {
            break;
          }
        }
        reports.finish();
      }
    }
  }

  /**
   * Waits until {@code in} has a byte to read (nothing consumed), running {@code alive} every 200 ms:
   * a task whose barrier stage failed elsewhere is killed without an interrupt and must notice.
   */
  private static void awaitData(Socket socket, DataInputStream in, Runnable alive) throws IOException {
    int timeout = socket.getSoTimeout();
    socket.setSoTimeout(200);
    long deadline = System.currentTimeMillis() + timeout;
    try {
      while (true) {
        in.mark(1);
        try {
          if (in.read() < 0) {
            throw new java.io.EOFException("the driver's barrier coordinator closed the connection (the stage attempt"
                + " was superseded or the driver ended)");
          }
          in.reset();
          return;
        } catch (java.net.SocketTimeoutException e) {
          alive.run();
          if (System.currentTimeMillis() >= deadline) {
            throw new java.net.SocketTimeoutException("the other workers did not register with the driver within "
                + timeout / 1000 + " s");
          }
        }
      }
    } finally {
      socket.setSoTimeout(timeout);
    }
  }

  /**
   * Worker 0's reports to the driver, in order. Rounds without a state are collected and go out
   * together every {@value #REPORT_MILLIS} ms (and before a round with a state, and with the last):
   * a report of its own every round cost the worker 0.1-0.3 ms (the driver's thread woken each time)
   * at frequency 1. A round with a state (~28 ms to serialise the beta-VAE's) is written by a thread of
   * its own while the worker goes on; collected rounds go out on the worker's path when nothing waits
   * for that thread, else after it. {@link #finish} waits until all went out; a failed send fails the
   * next call.
   */
  private static final class Reports implements java.io.Closeable {
    private final java.util.concurrent.ExecutorService sender = java.util.concurrent.Executors.newSingleThreadExecutor(
        r -> {
          Thread t = new Thread(r, "genpipe-barrier-reports");
          t.setDaemon(true);
          return t;
        });
    private final DataOutputStream toDriver;
    /** Rounds collected since the last send, written as they go to the driver. */
    private final java.io.ByteArrayOutputStream collected = new java.io.ByteArrayOutputStream();
    private final DataOutputStream collecting = new DataOutputStream(collected);
    private long sentAt = System.nanoTime();
    /** Sends handed to the thread and not yet done (only the worker's thread adds). */
    private final java.util.concurrent.atomic.AtomicInteger queued = new java.util.concurrent.atomic.AtomicInteger();
    private volatile IOException failed;
    /** Sends of rounds with a state not known to be done, by state (only the worker's thread uses it). */
    private final java.util.Map<ModelState, java.util.concurrent.Future<?>> stateSends = new java.util.IdentityHashMap<>();

    Reports(DataOutputStream toDriver) {
      this.toDriver = toDriver;
    }

    /** Sends {@code round} in order; {@code now}: without waiting for others to go with it. */
    void send(Round round, boolean now) throws IOException {
      rethrow();
      if (round.state() == null) {
        round.write(collecting);
        if (now || round.last() || System.nanoTime() - sentAt >= REPORT_MILLIS * 1_000_000L) {
          sendCollected();
        }
        return;
      }
      sendCollected();
      stateSends.values().removeIf(java.util.concurrent.Future::isDone);
      stateSends.put(round.state(), queue(() -> {
        round.write(toDriver);
        toDriver.flush();
      }));
    }

    /** Waits until a report carrying {@code state} (if one was handed over) went out: its arrays may then change. */
    void awaitSent(ModelState state) {
      java.util.concurrent.Future<?> f = stateSends.remove(state);
      if (f == null) {
        return;
      }
      try {
        f.get(); // a failed send does not throw here: the send records it (rethrow)
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while a report to the driver went out", e);
      } catch (java.util.concurrent.ExecutionException e) {
        throw new IllegalStateException(e.getCause());
      }
    }

    /** Sends the rounds collected: on this thread when the sending thread has nothing, else after what it has. */
    private void sendCollected() throws IOException {
      sentAt = System.nanoTime();
      if (collected.size() == 0) {
        return;
      }
      byte[] b = collected.toByteArray();
      collected.reset();
      if (queued.get() == 0) {
        toDriver.write(b);
        toDriver.flush();
      } else {
        queue(() -> {
          toDriver.write(b);
          toDriver.flush();
        });
      }
    }

    private interface Send {
      void run() throws IOException;
    }

    private java.util.concurrent.Future<?> queue(Send send) {
      queued.incrementAndGet();
      return sender.submit(() -> {
        try {
          if (failed == null) {
            send.run();
          }
        } catch (IOException e) {
          failed = e;
        } catch (RuntimeException e) {
          failed = new IOException(e.toString(), e);
        } finally {
          queued.decrementAndGet();
        }
      });
    }

    /** Waits until every report went out. */
    void finish() throws IOException {
      rethrow();
      sendCollected();
      sender.shutdown();
      try {
        if (!sender.awaitTermination(TIMEOUT_MILLIS, java.util.concurrent.TimeUnit.MILLISECONDS)) {
          throw new IOException("the reports to the driver did not go out within " + TIMEOUT_MILLIS / 1000 + " s");
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted while sending the reports to the driver", e);
      }
      rethrow();
    }

    private void rethrow() throws IOException {
      if (failed != null) {
        throw new IOException("cannot report to the driver's barrier coordinator: " + failed, failed);
      }
    }

    @Override
    public void close() {
      sender.shutdownNow();
    }
  }
}
