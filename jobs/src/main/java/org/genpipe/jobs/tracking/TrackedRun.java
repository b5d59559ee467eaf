package org.genpipe.jobs.tracking;

import java.util.Map;

/**
 * A run as a tracking store holds it: its latest metric values (MLflow's "latest": the value at the
 * highest step), params and tags.
 *
 * @param status RUNNING, FINISHED, FAILED, KILLED or SCHEDULED
 * @param artifactUri where the run's artifacts are ({@code mlflow-artifacts:/...} on a server started
 *     with --serve-artifacts, {@code file:...} in a file store)
 */
public record TrackedRun(
    String id, String name, String experimentId, String status, long startTime, long endTime, String artifactUri,
    Map<String, Double> metrics, Map<String, String> params, Map<String, String> tags) {

  public TrackedRun {
    metrics = Map.copyOf(metrics);
    params = Map.copyOf(params);
    tags = Map.copyOf(tags);
  }

  /** The first 8 characters of the id, as the MLflow UI shows it. */
  public String shortId() {
    return id.length() > 8 ? id.substring(0, 8) : id;
  }
}
