package org.genpipe.jobs.tracking;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import org.genpipe.common.io.BadInputException;
import org.genpipe.jobs.cli.Validated;
import org.genpipe.jobs.config.PipelineConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "replay-tracking",
    mixinStandardHelpOptions = true,
    description = {
      "Send the MLflow calls a run could not send (its tracking-unsent.jsonl: metrics, params, tags, artifacts,",
      "the run's end) once the tracking server is back, in the order the run made them, into the same run.",
      "What is sent leaves the file; on a failure the rest stays, and running the command again goes on.",
      "The tracking URI is the run's (tracking.uri in the run folder's config.yaml) unless --tracking-uri is given.",
      "Example: pipeline replay-tracking runs/beta-vae/20261201-101500"
    })
public final class ReplayCommand implements Callable<Integer>, Validated {
  @Parameters(index = "0", paramLabel = "RUN", description = "A run folder, or its tracking-unsent.jsonl.")
  Path target;

  @Option(names = "--tracking-uri", paramLabel = "URI",
      description = "Where to send them (default: the run's tracking.uri).")
  String trackingUri;

  private Path spool() {
    Path spool = Files.isDirectory(target) ? target.resolve(TrackingSpool.FILE) : target;
    if (!Files.isRegularFile(spool)) {
      throw new BadInputException(spool + " does not exist: " + (Files.exists(target) ? "the run kept no unsent"
          + " tracking calls (all were logged)" : "no such run folder or file"));
    }
    return spool;
  }

  private String uri(Path spool) {
    if (trackingUri != null) {
      return trackingUri;
    }
    Path config = spool.toAbsolutePath().getParent().resolve("config.yaml");
    if (!Files.isRegularFile(config)) {
      throw new BadInputException("no config.yaml beside " + spool + " to take the run's tracking.uri from; pass"
          + " --tracking-uri");
    }
    return PipelineConfig.load(config, List.of()).tracking().uri();
  }

  @Override
  public List<String> validate() {
    Path spool = spool();
    return List.of("replay " + spool + " into " + uri(spool));
  }

  @Override
  public Integer call() throws Exception {
    Path spool = spool();
    String uri = uri(spool);
    try (Tracker tracker = Tracker.open(uri)) {
      TrackingSpool.Replayed r = TrackingSpool.replay(spool, tracker);
      if (r.failure() != null) {
        System.err.println("sent " + r.sent() + " calls to " + uri + "; stopped at " + r.failure() + "; " + r.left()
            + " calls are still kept in " + spool + " (run the command again when the server answers)");
        return 1;
      }
      System.out.println("sent " + r.sent() + " calls from " + spool + " to " + tracker.location() + "; the file is"
          + " removed");
      return 0;
    }
  }
}
