package org.genpipe.jobs.train;

import java.io.Closeable;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.Serializable;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import org.genpipe.models.ModelState;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The driver's side of barrier stages: where a stage's tasks find each other and where they start,
 * and how the driver follows a stage while it runs. Each task connects once at its start and sends its
 * rank, its listening address and the step of the state its executor kept; when all of an attempt's
 * tasks are there, each gets every address back (Spark's own {@code BarrierTaskContext.allGather}
 * does the same but polls once a second, which cost ~1 s a stage) and the stage's resume point: the
 * round to start at and, to a task whose executor does not hold that state, the state itself. Worker
 * 0's connection stays open: it reports every round as it ends (the driver's progress bar, metrics and
 * ETA stay live; at checkpoint and sample rounds and at the stage's last round with the averaged
 * state) and hears the driver ask it to stop.
 *
 * <p>Rounds are numbered from the stage's start. The resume point moves on with every state the
 * driver takes, so a retried attempt starts from the last one instead of the stage's start; it reports
 * the rounds after it again (computed from the same state and seeds), and the driver takes each
 * number once.
 */
final class StageCoordinator implements Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(StageCoordinator.class);

  /** A round as worker 0 reported it, numbered from the start of stage {@code stage}. */
  record Reported(String stage, int index, BarrierAveraging.Round round) {}

  /** Where a task registers: the coordinator's address and the stage's key. */
  record Contact(String host, int port, String stage) implements Serializable {}

  /** Where a stage attempt starts: at round {@code index} of the stage, at {@code step}, from {@code state}. */
  record Resume(int index, long step, ModelState state) {}

  private final ServerSocket server;
  private final String host;
  private final Thread acceptor;
  private final BlockingQueue<Reported> reported = new LinkedBlockingQueue<>();
  private final Map<Integer, String[]> addresses = new HashMap<>(); // by stage attempt
  private String stage;
  private int latestAttempt = -1;
  private int workers;
  private int stopAt = -1;
  private DataOutputStream leader;
  private Resume resume;
  private byte[] resumeBytes; // the resume state serialised, once, for the tasks that need it

  /**
   * Listens on {@code bindHost}; tasks reach it at {@code host} (the driver's address, as its
   * executors know it).
   */
  StageCoordinator(String bindHost, String host) throws IOException {
    this.server = new ServerSocket();
    server.bind(new InetSocketAddress(InetAddress.getByName(bindHost), 0), 64);
    this.host = host;
    this.acceptor = new Thread(this::acceptLoop, "genpipe-barrier-coordinator");
    acceptor.setDaemon(true);
    acceptor.start();
  }

  /**
   * Starts following a new stage of {@code workers} tasks that starts at {@code step} from {@code
   * state}; returns what its tasks need to register.
   */
  synchronized Contact begin(String stageKey, int workers, long step, ModelState state) {
    this.stage = stageKey;
    this.workers = workers;
    this.latestAttempt = -1;
    this.stopAt = -1;
    this.leader = null;
    addresses.clear();
    reported.clear();
    resumeAt(new Resume(0, step, state));
    notifyAll();
    return new Contact(host, server.getLocalPort(), stageKey);
  }

  /** The driver took the state after round {@code index - 1}: an attempt that starts from now on starts there. */
  synchronized void resumeAt(Resume r) {
    resume = r;
    resumeBytes = null;
  }

  /** Rounds worker 0 reported, in arrival order. */
  BlockingQueue<Reported> reported() {
    return reported;
  }

  /** Asks worker 0 to end the stage after round {@code atLeast} or later (it tells the others in that round). */
  synchronized void requestStop(int atLeast) {
    stopAt = atLeast;
    sendStop();
  }

  private void sendStop() {
    if (leader != null && stopAt >= 0) {
      try {
        leader.writeInt(stopAt);
        leader.flush();
      } catch (IOException e) {
        LOG.debug("could not send the stop request to worker 0: {}", e.toString());
      }
    }
  }

  private void acceptLoop() {
    while (!server.isClosed()) {
      try {
        Socket s = server.accept();
        Thread t = new Thread(() -> handle(s), "genpipe-barrier-task");
        t.setDaemon(true);
        t.start();
      } catch (IOException e) {
        if (!server.isClosed()) {
          LOG.warn("barrier coordinator: {}", e.toString());
        }
      }
    }
  }

  /** One task's connection: its registration, the addresses and resume point back, and (worker 0) its rounds. */
  private void handle(Socket s) {
    try (s) {
      s.setTcpNoDelay(true);
      DataInputStream in = new DataInputStream(new java.io.BufferedInputStream(s.getInputStream()));
      DataOutputStream out = new DataOutputStream(new java.io.BufferedOutputStream(s.getOutputStream()));
      String key = in.readUTF();
      int attempt = in.readInt();
      int rank = in.readInt();
      String address = in.readUTF();
      long keptStep = in.readLong();
      String[] all;
      Resume start;
      byte[] state = null;
      synchronized (this) {
        if (!key.equals(stage) || attempt < latestAttempt || rank < 0 || rank >= workers) {
          return; // a task of an earlier stage or attempt: closing tells it so
        }
        latestAttempt = attempt;
        notifyAll(); // earlier attempts' tasks still waiting give up
        all = addresses.computeIfAbsent(attempt, a -> new String[workers]);
        all[rank] = address;
        notifyAll();
        while (key.equals(stage) && attempt == latestAttempt && java.util.Arrays.asList(all).contains(null)) {
          wait();
        }
        if (!key.equals(stage) || attempt != latestAttempt) {
          return;
        }
        start = resume;
        if (keptStep != start.step()) {
          if (resumeBytes == null) {
            resumeBytes = start.state().toBytes();
          }
          state = resumeBytes;
        }
      }
      out.writeInt(all.length);
      for (String a : all) {
        out.writeUTF(a);
      }
      out.writeInt(start.index());
      out.writeLong(start.step());
      out.writeInt(state == null ? -1 : state.length);
      if (state != null) {
        out.write(state);
      }
      out.flush();
      if (rank != 0) {
        return;
      }
      synchronized (this) {
        leader = out;
        sendStop();
      }
      for (int index = start.index(); ; index++) { // the rounds, numbered from the stage's start
        in.mark(1);
        if (in.read() < 0) {
          return; // the stage's task ended
        }
        in.reset();
        BarrierAveraging.Round r = BarrierAveraging.Round.read(in);
        reported.add(new Reported(key, index, r));
        if (r.last()) {
          return;
        }
      }
    } catch (IOException e) {
      LOG.debug("barrier coordinator: a task's connection ended: {}", e.toString());
    } catch (RuntimeException e) {
      LOG.warn("barrier coordinator: an unreadable report from worker 0: {}", e.toString());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public void close() throws IOException {
    server.close();
    synchronized (this) {
      stage = null;
      notifyAll();
    }
  }
}
