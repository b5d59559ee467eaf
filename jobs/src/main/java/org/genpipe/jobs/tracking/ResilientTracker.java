package org.genpipe.jobs.tracking;

import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.mlflow.tracking.MlflowHttpException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Makes tracking harmless to training: every call is queued and sent from one background thread, in
 * order, each tried {@code attempts} times with exponential backoff. When the tracking store stays
 * unreachable the calls are held, in order, and resent in the background (the store probed every few
 * seconds, the wait doubling up to {@link #MAX_RETRY_MILLIS}) until the run ends; a call the store
 * refuses for good (HTTP 4xx) is set aside. What is still held or refused at {@link #finish} goes
 * to a {@link TrackingSpool} file beside the run's outputs, which {@code pipeline replay-tracking}
 * sends later. Training never waits on the tracking store except for a bounded drain at the end.
 */
public final class ResilientTracker implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(ResilientTracker.class);
  /** The longest wait between two resends while the store is unreachable. */
  static final long MAX_RETRY_MILLIS = 30_000;

  @FunctionalInterface
  interface Action {
    void run(Tracker t) throws Exception;
  }

  /** One queued call: its name and payload (as the spool stores it) and what it does. */
  private record Call(String name, Map<String, Object> payload, byte[] content, boolean needsRun, Action action) {}

  private final Tracker tracker;
  private final int attempts;
  private final long firstBackoffMillis;
  private final ScheduledExecutorService sender = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "mlflow-sender");
    t.setDaemon(true);
    return t;
  });
  /** Calls not sent yet, in order; touched by the sender thread, read by finish. */
  private final Deque<Call> backlog = new ArrayDeque<>();
  /** Calls the store refused for good, with why. */
  private final List<TrackingSpool.Entry> refused = new ArrayList<>();
  private volatile boolean runStarted;
  private volatile boolean attached;
  /** Set by resumeOrStartRun on the sender thread: params go in as new ones only. */
  private volatile boolean resumed;
  private volatile String runId;
  private boolean outage;
  private long retryMillis;
  private final long maxRetryMillis;
  private long nextRetryNanos;
  private int resent;
  private volatile boolean closed;

  /** The tracker {@code tracking} names, with its retry settings. */
  public static ResilientTracker open(org.genpipe.jobs.config.TrackingSettings tracking) {
    return new ResilientTracker(Tracker.open(tracking.uri()), tracking.attempts(), tracking.backoffMillis());
  }

  /**
   * @param attempts tries per call while the store answers, before the calls are held for resending
   * @param firstBackoffMillis wait after the first failure; doubles after each further failure
   */
  public ResilientTracker(Tracker tracker, int attempts, long firstBackoffMillis) {
    this(tracker, attempts, firstBackoffMillis, MAX_RETRY_MILLIS);
  }

  /** @param maxRetryMillis the longest wait between two resends while the store is away */
  ResilientTracker(Tracker tracker, int attempts, long firstBackoffMillis, long maxRetryMillis) {
    this.tracker = tracker;
    this.attempts = attempts;
    this.firstBackoffMillis = firstBackoffMillis;
    this.maxRetryMillis = maxRetryMillis;
  }

  public String location() {
    return tracker.location();
  }

  public void startRun(String experiment, String runName, Map<String, String> tags) {
    submit(new Call("start run", Map.of("experiment", experiment, "runName", runName, "tags", tags), null, false, t -> {
      runId = t.startRun(experiment, runName, tags);
      runStarted = true;
    }));
  }

  /**
   * Logs into the existing run {@code runId} when the store has it (evaluation into its training
   * run); otherwise, or when {@code runId} is null, starts a new run as {@link #startRun} does.
   */
  public void attachOrStartRun(String runId, String experiment, String runName, Map<String, String> tags) {
    continueOrStart(runId, false, experiment, runName, tags);
  }

  /**
   * Continues the run {@code runId} of a resumed training: the same run, RUNNING again, its metrics
   * going on at their steps. When the store does not have it (another tracking URI, or none was
   * recorded), starts a new run tagged {@code genpipe.continues_run} with the old id.
   */
  public void resumeOrStartRun(String runId, String experiment, String runName, Map<String, String> tags) {
    continueOrStart(runId, true, experiment, runName, tags);
  }

  /** Attaches to (or, for a resumed training, reopens) {@code runId}; a new run when that fails. */
  private void continueOrStart(String runId, boolean reopen, String experiment, String runName,
      Map<String, String> tags) {
    Map<String, Object> payload = new LinkedHashMap<>();
    payload.put("runId", runId);
    payload.put("experiment", experiment);
    payload.put("runName", runName);
    payload.put("tags", tags);
    submit(new Call(reopen ? "resume run" : "attach run", payload, null, false, t -> {
      TrackingSpool.Continued c = TrackingSpool.continueOrStart(t, runId, reopen, experiment, runName, tags);
      this.runId = c.runId();
      attached = c.continued();
      resumed = reopen && c.continued();
      runStarted = true;
    }));
  }

  /** Whether {@link #attachOrStartRun} found the run (valid once the queued calls are done). */
  public boolean attached() {
    return attached;
  }

  /** The run id once the run is started or attached (null before, or when it could not be). */
  public String runId() {
    return runId;
  }

  /**
   * Logs params; into a resumed run only the new ones, since MLflow params cannot change: a value that
   * differs from the run's (train.steps raised to continue it) becomes a tag
   * {@code genpipe.resume.param.<key>} = "old -> new".
   */
  public void logParams(Map<String, String> params) {
    submit(new Call("params", Map.of("params", params), null, true, t -> {
      if (resumed) {
        TrackingSpool.logNewParams(t, params);
      } else {
        t.logParams(params);
      }
    }));
  }

  public void setTags(Map<String, String> tags) {
    submit(new Call("tags", Map.of("tags", tags), null, true, t -> t.setTags(tags)));
  }

  public void logMetrics(List<Tracker.Metric> metrics) {
    List<Tracker.Metric> copy = List.copyOf(metrics);
    submit(new Call("metrics", Map.of("metrics", copy), null, true, t -> t.logMetrics(copy)));
  }

  public void logArtifact(String path, byte[] content) {
    submit(new Call("artifact", Map.of("artifact", path, "bytes", content.length), content, true,
        t -> t.logArtifact(path, content)));
  }

  public void endRun(Tracker.Status status) {
    submit(new Call("end run", Map.of("status", status.name()), null, true, t -> t.endRun(status)));
  }

  private void submit(Call call) {
    if (closed) {
      return;
    }
    sender.execute(() -> {
      synchronized (this) {
        backlog.add(call);
      }
      drain(false);
    });
  }

  /**
   * Sends the backlog in order until it is empty or the store fails; on the sender thread only. While
   * the store is down ({@code outage}) nothing is tried before the next retry time, then the store is
   * probed and, once it answers, the held calls go out in order.
   */
  private void drain(boolean retryNow) {
    while (true) {
      Call call;
      synchronized (this) {
        call = backlog.peek();
      }
      if (call == null) {
        return;
      }
      if (call.needsRun() && !runStarted) {
        setAside(call, "the run could not be created");
        continue;
      }
      if (outage) {
        if (!retryNow && System.nanoTime() < nextRetryNanos) {
          return; // a scheduled retry comes
        }
        try {
          tracker.probe();
        } catch (Exception e) {
          holdAfterFailure(call, e);
          return;
        }
      }
      Exception failure = send(call, outage ? 1 : attempts);
      if (failure == null) {
        synchronized (this) {
          backlog.poll();
        }
        if (outage) {
          resent++;
        }
        continue;
      }
      if (refusedForGood(failure)) {
        setAside(call, String.valueOf(failure.getMessage()));
        continue;
      }
      holdAfterFailure(call, failure);
      return;
    }
  }

  private Exception send(Call call, int tries) {
    long backoff = firstBackoffMillis;
    for (int attempt = 1; ; attempt++) {
      try {
        call.action().run(tracker);
        if (outage) {
          outage = false;
          LOG.info("tracking at {} answers again; sending the held calls", tracker.location());
        }
        return null;
      } catch (Exception e) {
        if (attempt >= tries) {
          return e;
        }
        try {
          Thread.sleep(backoff);
        } catch (InterruptedException ie) {
          Thread.currentThread().interrupt();
          return ie;
        }
        backoff *= 2;
      }
    }
  }

  /** The store is down: keep the call at the head of the backlog and try again later. */
  private void holdAfterFailure(Call call, Exception failure) {
    if (!outage) {
      outage = true;
      retryMillis = Math.max(1, firstBackoffMillis);
      LOG.warn("tracking at {} failed ({}: {}); training goes on, the calls are held and resent when it answers",
          tracker.location(), call.name(), failure.getMessage());
    } else {
      retryMillis = Math.min(maxRetryMillis, retryMillis * 2);
    }
    nextRetryNanos = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(retryMillis);
    if (!closed && !sender.isShutdown()) {
      sender.schedule(() -> drain(false), retryMillis, TimeUnit.MILLISECONDS);
    }
  }

  /** HTTP 4xx (but 408 and 429): the store will never take this call as it is. */
  private static boolean refusedForGood(Exception e) {
    if (e instanceof MlflowHttpException h) {
      int code = h.getStatusCode();
      return code >= 400 && code < 500 && code != 408 && code != 429;
    }
    return false;
  }

  private synchronized void setAside(Call call, String reason) {
    backlog.remove(call);
    LOG.warn("tracking at {} refused {} ({}); it is kept for pipeline replay-tracking", tracker.location(),
        call.name(), reason);
    refused.add(entry(call, reason));
  }

  private static TrackingSpool.Entry entry(Call call, String reason) {
    return new TrackingSpool.Entry(call.name(), reason, call.payload(), call.content());
  }

  /**
   * Sends what is queued or held, trying the store until {@code waitSeconds} have passed, then writes
   * what was not sent to {@code spool} (when anything was not sent) and returns a one-line report, or
   * null if all was sent.
   */
  public String finish(long waitSeconds, Path spool) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(waitSeconds);
    CompletableFuture<Void> drained = new CompletableFuture<>();
    sender.execute(() -> {
      while (true) {
        drain(true);
        boolean empty;
        synchronized (this) {
          empty = backlog.isEmpty();
        }
        long left = deadline - System.nanoTime();
        if (empty || left <= 0) {
          break;
        }
        try {
          Thread.sleep(Math.min(TimeUnit.NANOSECONDS.toMillis(left) + 1, Math.max(retryMillis, 1)));
        } catch (InterruptedException e) {
          break;
        }
      }
      drained.complete(null);
    });
    try {
      drained.get(Math.max(1, waitSeconds) + 5, TimeUnit.SECONDS);
    } catch (Exception e) {
      // still sending at the deadline: what is left is spooled
    }
    closed = true;
    sender.shutdownNow();
    List<TrackingSpool.Entry> left = new ArrayList<>();
    synchronized (this) {
      left.addAll(refused);
      for (Call c : backlog) {
        left.add(entry(c, "not sent before the run ended: the tracking store did not answer"));
      }
      refused.clear();
      backlog.clear();
    }
    if (resent > 0) {
      LOG.info("{} held tracking calls were resent to {}", resent, tracker.location());
    }
    if (left.isEmpty()) {
      return null;
    }
    Map<String, Integer> counts = new LinkedHashMap<>();
    left.forEach(e -> counts.merge(e.call(), 1, Integer::sum));
    try {
      TrackingSpool.append(spool, runId, left);
    } catch (Exception e) {
      LOG.warn("cannot write {}: {}", spool, e.getMessage());
      return "not logged to " + tracker.location() + ": " + counts + "; could not be kept in " + spool + ": "
          + e.getMessage();
    }
    return "not logged to " + tracker.location() + ": " + counts + "; kept in " + spool
        + " (send it with: pipeline replay-tracking " + spool + ")";
  }

  @Override
  public void close() {
    closed = true;
    sender.shutdownNow();
    tracker.close();
  }
}
