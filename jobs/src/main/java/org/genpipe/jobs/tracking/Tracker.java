package org.genpipe.jobs.tracking;

import java.util.List;
import java.util.Map;

/**
 * Where a run's parameters, metrics, tags and artifacts go: an MLflow file store ({@code ./mlruns})
 * or an MLflow tracking server. Implementations may throw on I/O failure; {@link ResilientTracker}
 * makes those failures harmless to training.
 */
public interface Tracker extends AutoCloseable {
  /** The tracker for a {@code tracking.uri}: a file store folder or {@code file:} URI, or an http(s) server. */
  static Tracker open(String uri) {
    if (org.genpipe.jobs.config.TrackingSettings.isServer(uri)) {
      return new RestTracker(uri);
    }
    return new FileStoreTracker(uri.startsWith("file:") ? java.nio.file.Path.of(java.net.URI.create(uri))
        : java.nio.file.Path.of(uri));
  }


  /** One metric value at a step. */
  record Metric(String key, double value, long step, long timestamp) {}

  /** MLflow run statuses. */
  enum Status {
    RUNNING(1),
    FINISHED(3),
    FAILED(4),
    KILLED(5);

    public final int code;

    Status(int code) {
      this.code = code;
    }
  }

  /** Creates (or finds) the experiment and starts a run in it; returns the run id. */
  String startRun(String experiment, String runName, Map<String, String> tags) throws Exception;

  /**
   * Continues logging into an existing run (e.g. evaluation results into the training run); does not
   * change its status. Throws when the run does not exist in this store.
   */
  void attachRun(String runId) throws Exception;

  /**
   * Continues an existing run as RUNNING again (a resumed training): as {@link #attachRun}, and the
   * run's status goes back to RUNNING until {@link #endRun}. Throws when the run does not exist here.
   */
  void reopenRun(String runId) throws Exception;

  /** The params the started or attached run already has. */
  Map<String, String> runParams() throws Exception;

  void logParams(Map<String, String> params) throws Exception;

  void logMetrics(List<Metric> metrics) throws Exception;

  void setTags(Map<String, String> tags) throws Exception;

  /** Stores {@code content} as the run's artifact at {@code path} (relative, '/'-separated). */
  void logArtifact(String path, byte[] content) throws Exception;

  void endRun(Status status) throws Exception;

  /** Throws when the store cannot be reached now (cheap; asked before resending held calls). */
  default void probe() throws Exception {}

  /** Where a user finds the run (a folder or a URL). */
  String location();

  @Override
  default void close() {}
}
