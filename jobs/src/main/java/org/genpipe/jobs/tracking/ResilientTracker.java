package org.genpipe.jobs.tracking;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Makes tracking harmless to training: every call is queued and sent from one background thread, in
 * order, retried with exponential backoff; what still cannot be sent is kept and written to a file
 * beside the run's outputs. The first failure is reported once; {@link #finish} says what was not
 * logged. Training never waits on the tracking server except for a bounded drain at the end.
 */
public final class ResilientTracker implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(ResilientTracker.class);
  private static final ObjectMapper JSON = new ObjectMapper();

  @FunctionalInterface
  private interface Call {
    void run(Tracker t) throws Exception;
  }

  private final Tracker tracker;
  private final int attempts;
  private final long firstBackoffMillis;
  private final ExecutorService sender =
      Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "mlflow-sender");
        t.setDaemon(true);
        return t;
      });
  private final List<Map<String, Object>> unsent = new ArrayList<>();
  private volatile boolean runStarted;
  private volatile boolean warned;
  private volatile boolean attached;
  /** Set by resumeOrStartRun on the sender thread: params go in as new ones only. */
  private volatile boolean resumed;
  private volatile String runId;

  /**
   * @param attempts tries per call before it is kept as unsent
   * @param firstBackoffMillis wait after the first failure; doubles after each further failure
   */
  public ResilientTracker(Tracker tracker, int attempts, long firstBackoffMillis) {
    this.tracker = tracker;
    this.attempts = attempts;
    this.firstBackoffMillis = firstBackoffMillis;
  }

  public String location() {
    return tracker.location();
  }

  public void startRun(String experiment, String runName, Map<String, String> tags) {
    submit("start run", Map.of("experiment", experiment, "runName", runName, "tags", tags), t -> {
      runId = t.startRun(experiment, runName, tags);
      runStarted = true;
    }, false);
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
    submit(reopen ? "resume run" : "attach run", Map.of("runId", String.valueOf(runId), "experiment", experiment), t -> {
      if (runId != null) {
        try {
          if (reopen) {
            t.reopenRun(runId);
            t.setTags(tags);
          } else {
            t.attachRun(runId);
          }
          this.runId = runId;
          attached = true;
          resumed = reopen;
          runStarted = true;
          return;
        } catch (Exception e) {
          LOG.info("run {} cannot be {} at {} ({}); logging into a new run", runId, reopen ? "reopened" : "found",
              t.location(), e.getMessage());
        }
      }
      Map<String, String> all = new java.util.LinkedHashMap<>(tags);
      if (reopen && runId != null) {
        all.put("genpipe.continues_run", runId);
      }
      this.runId = t.startRun(experiment, runName, all);
      runStarted = true;
    }, false);
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
    submit("params", Map.of("params", params), t -> {
      if (!resumed) {
        t.logParams(params);
        return;
      }
      Map<String, String> had = t.runParams();
      Map<String, String> fresh = new java.util.LinkedHashMap<>();
      Map<String, String> changed = new java.util.LinkedHashMap<>();
      params.forEach((k, v) -> {
        String old = had.get(k);
        if (old == null) {
          fresh.put(k, v);
        } else if (!old.equals(v)) {
          changed.put("genpipe.resume.param." + k, old + " -> " + v);
        }
      });
      if (!fresh.isEmpty()) {
        t.logParams(fresh);
      }
      if (!changed.isEmpty()) {
        t.setTags(changed);
      }
    }, true);
  }

  public void setTags(Map<String, String> tags) {
    submit("tags", Map.of("tags", tags), t -> t.setTags(tags), true);
  }

  public void logMetrics(List<Tracker.Metric> metrics) {
    List<Tracker.Metric> copy = List.copyOf(metrics);
    submit("metrics", Map.of("metrics", copy), t -> t.logMetrics(copy), true);
  }

  public void logArtifact(String path, byte[] content) {
    submit("artifact", Map.of("artifact", path, "bytes", content.length), t -> t.logArtifact(path, content), true);
  }

  public void endRun(Tracker.Status status) {
    submit("end run", Map.of("status", status.name()), t -> t.endRun(status), true);
  }

  private void submit(String what, Map<String, Object> payload, Call call, boolean needsRun) {
    sender.execute(() -> {
      if (needsRun && !runStarted) {
        keep(what, payload, "the run could not be created");
        return;
      }
      long backoff = firstBackoffMillis;
      for (int attempt = 1; ; attempt++) {
        try {
          call.run(tracker);
          return;
        } catch (Exception e) {
          if (attempt >= attempts) {
            keep(what, payload, String.valueOf(e.getMessage()));
            return;
          }
          try {
            Thread.sleep(backoff);
          } catch (InterruptedException ie) {
            Thread.currentThread().interrupt();
            keep(what, payload, "interrupted");
            return;
          }
          backoff *= 2;
        }
      }
    });
  }

  private synchronized void keep(String what, Map<String, Object> payload, String reason) {
    if (!warned) {
      warned = true;
      LOG.warn("tracking at {} failed ({}: {}); training goes on, what cannot be sent is kept and reported at the end",
          tracker.location(), what, reason);
    }
    Map<String, Object> entry = new LinkedHashMap<>();
    entry.put("call", what);
    entry.put("reason", reason);
    entry.putAll(payload);
    unsent.add(entry);
  }

  /**
   * Waits up to {@code waitSeconds} for queued calls, then writes what was not sent as JSON lines to
   * {@code spool} (when anything was not sent) and returns a one-line report, or null if all was sent.
   */
  public String finish(long waitSeconds, Path spool) {
    sender.shutdown();
    boolean drained;
    try {
      drained = sender.awaitTermination(waitSeconds, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      drained = false;
    }
    List<Runnable> pending = drained ? List.of() : sender.shutdownNow();
    synchronized (this) {
      return report(pending, spool);
    }
  }

  private String report(List<Runnable> pending, Path spool) {
    if (unsent.isEmpty() && pending.isEmpty()) {
      return null;
    }
    Map<String, Integer> counts = new LinkedHashMap<>();
    StringBuilder lines = new StringBuilder();
    for (Map<String, Object> u : unsent) {
      counts.merge((String) u.get("call"), 1, Integer::sum);
      try {
        lines.append(JSON.writeValueAsString(u)).append('\n');
      } catch (Exception e) {
        lines.append("{\"call\":\"").append(u.get("call")).append("\"}\n");
      }
    }
    try {
      Files.createDirectories(spool.getParent());
      Files.writeString(spool, lines, StandardCharsets.UTF_8);
    } catch (Exception e) {
      LOG.warn("cannot write {}: {}", spool, e.getMessage());
    }
    return "not logged to " + tracker.location() + ": " + counts
        + (pending.isEmpty() ? "" : " and " + pending.size() + " calls still queued")
        + "; kept in " + spool;
  }

  @Override
  public void close() {
    sender.shutdownNow();
    tracker.close();
  }
}
