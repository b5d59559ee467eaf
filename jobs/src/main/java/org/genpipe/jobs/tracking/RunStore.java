package org.genpipe.jobs.tracking;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.genpipe.jobs.config.TrackingSettings;

/**
 * Reads back runs from where the pipeline logs them: an MLflow server (REST) or the offline file store
 * ({@code ./mlruns}); {@code compare} and {@code promote} read runs through it.
 */
public interface RunStore {

  /** The runs of an experiment, newest first; a missing experiment is a BadInputException naming it. */
  List<TrackedRun> runs(String experiment) throws IOException;

  /** One run; a missing run is a BadInputException naming it. */
  TrackedRun run(String runId) throws IOException;

  /** The store of a tracking URI (a folder, {@code file:} URI or {@code http(s)://} server). */
  static RunStore open(TrackingSettings settings) {
    if (settings.isServer()) {
      return new ServerRunStore(new MlflowRest(settings.uri()));
    }
    String uri = settings.uri();
    return new FileRunStore(uri.startsWith("file:") ? Path.of(java.net.URI.create(uri)) : Path.of(uri));
  }
}
