package org.genpipe.jobs.registry;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import org.apache.hadoop.conf.Configuration;
import org.genpipe.common.config.ConfigException;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.io.Storage;
import org.genpipe.jobs.checkpoint.Checkpoint;
import org.genpipe.jobs.cli.ConfigOptions;
import org.genpipe.jobs.cli.Validated;
import org.genpipe.jobs.config.PipelineConfig;
import org.genpipe.jobs.config.TrackingSettings;
import org.genpipe.jobs.tracking.ModelRegistry;
import org.genpipe.jobs.tracking.RunStore;
import org.genpipe.jobs.tracking.TrackedRun;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
    name = "promote",
    mixinStandardHelpOptions = true,
    description = {
      "Register a finished run's model (its model/ artifact) as a new version of a registered model in MLflow and",
      "point an alias (default champion) at it, when the run beats the version holding the alias: every --metric",
      "better by at least --margin (relative to the champion's value; lower is better, max:NAME for higher). Without",
      "--metric the run is promoted as asked. A run that does not win is left unregistered and tagged with why.",
      "The version is tagged with the data digest, the metrics and the git commit. Needs an MLflow server",
      "(tracking.uri http(s)://...). Exit 0 whether promoted or not; --report writes the decision as JSON.",
      "Example: pipeline promote --checkpoint runs/quickstart --set tracking.uri=http://127.0.0.1:5000"
          + " --metric fid_domain_gen_600_test --margin 0.02"
    })
public final class PromoteCommand implements Callable<Integer>, Validated {
  private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  @Mixin ConfigOptions options;

  static final class Which {
    @Option(names = "--run", paramLabel = "ID", description = "The MLflow run id.")
    String run;

    @Option(names = "--checkpoint", paramLabel = "DIR",
        description = "A checkpoint or run folder: the run it logged to.")
    String checkpoint;
  }

  @ArgGroup(multiplicity = "1")
  Which which;

  @Option(names = "--model", paramLabel = "NAME",
      description = "Registered model name (default: the run's experiment name).")
  String model;

  @Option(names = "--alias", paramLabel = "ALIAS", defaultValue = "champion",
      description = "The alias to move (default: ${DEFAULT-VALUE}).")
  String alias;

  @Option(names = "--metric", paramLabel = "[max:]NAME",
      description = "An objective the run must beat the champion on (repeatable; all must). Lower is better; max:NAME"
          + " for metrics where higher is better (ocr_seq_acc_..., psnr_..., ssim_...).")
  List<String> metrics = new ArrayList<>();

  @Option(names = "--margin", paramLabel = "FRACTION", defaultValue = "0",
      description = "Relative improvement needed on every metric, e.g. 0.02 = 2% (default: ${DEFAULT-VALUE}, any"
          + " strict improvement).")
  double margin;

  @Option(names = "--tag", paramLabel = "KEY=VALUE", description = "An extra tag of the new version (repeatable).")
  List<String> tags = new ArrayList<>();

  @Option(names = "--report", paramLabel = "FILE", description = "Write the decision as JSON (local, hdfs://, s3a://).")
  String report;

  private PipelineConfig config() {
    return options.load(List.of());
  }

  private List<Promotion.Objective> objectives() {
    List<Promotion.Objective> out = new ArrayList<>();
    for (String m : metrics) {
      Promotion.Objective o = Promotion.Objective.parse(m);
      if (o.metric().isBlank()) {
        throw new BadInputException("--metric '" + m + "': a metric name is needed, e.g. fid_domain_gen_600_test");
      }
      out.add(o);
    }
    if (margin < 0 || !Double.isFinite(margin)) {
      throw new BadInputException("--margin must be a finite number >= 0, got " + margin);
    }
    return out;
  }

  private Map<String, String> extraTags() {
    Map<String, String> out = new LinkedHashMap<>();
    for (String t : tags) {
      int eq = t.indexOf('=');
      if (eq <= 0) {
        throw new BadInputException("--tag '" + t + "': expected KEY=VALUE");
      }
      out.put(t.substring(0, eq), t.substring(eq + 1));
    }
    return out;
  }

  @Override
  public List<String> validate() {
    TrackingSettings ts = config().tracking();
    ModelRegistry.open(ts);
    List<Promotion.Objective> objectives = objectives();
    extraTags();
    return List.of("promote " + (which.run != null ? "run " + which.run : "the run of " + which.checkpoint) + " to "
        + (model == null ? "<its experiment>" : model) + "@" + alias + " on " + ts.uri(),
        objectives.isEmpty() ? "unconditionally" : "if it beats the champion on " + objectives + " by " + margin);
  }

  @Override
  public Integer call() throws IOException {
    PipelineConfig config = config();
    ModelRegistry registry = ModelRegistry.open(config.tracking());
    RunStore runs = RunStore.open(config.tracking());
    List<Promotion.Objective> objectives = objectives();
    Map<String, String> extra = extraTags();
    String runId = which.run != null ? which.run : runOf(which.checkpoint);
    TrackedRun run = runs.run(runId);
    if (!"FINISHED".equals(run.status())) {
      throw new BadInputException("run " + runId + " (" + run.name() + ") is " + run.status()
          + ": only finished runs are promoted");
    }
    String name = model != null ? model : experimentName(run);
    Optional<ModelRegistry.Version> champion = registry.byAlias(name, alias);
    Map<String, Double> championMetrics = null;
    if (champion.isPresent()) {
      if (champion.get().runId().equals(runId)) {
        throw new BadInputException("run " + runId + " already is " + name + "@" + alias + " (version "
            + champion.get().version() + ")");
      }
      championMetrics = runs.run(champion.get().runId()).metrics();
    }
    Promotion decision = Promotion.decide(run.metrics(), championMetrics, objectives, margin);

    Map<String, Object> out = new LinkedHashMap<>();
    out.put("model", name);
    out.put("alias", alias);
    out.put("run_id", runId);
    out.put("run_name", run.name());
    out.put("objectives", objectives.stream().map(Promotion.Objective::toString).toList());
    out.put("margin", margin);
    out.put("champion", champion.map(c -> Map.of("version", c.version(), "run_id", c.runId())).orElse(null));
    Map<String, Double> measured = new LinkedHashMap<>();
    for (Promotion.Objective o : objectives) {
      measured.put(o.metric(), run.metrics().get(o.metric()));
    }
    out.put("metrics", measured);
    if (championMetrics != null) {
      Map<String, Double> theirs = new LinkedHashMap<>();
      for (Promotion.Objective o : objectives) {
        theirs.put(o.metric(), championMetrics.get(o.metric()));
      }
      out.put("champion_metrics", theirs);
    }
    out.put("reasons", decision.reasons());
    String summary;
    if (decision.promote()) {
      registry.ensureModel(name, "genpipe " + run.tags().getOrDefault("genpipe.model", "model") + " trained by"
          + " parameter averaging; versions are runs' model/ artifacts (checkpoint state + info)");
      Map<String, String> versionTags = new LinkedHashMap<>();
      copy(run.tags(), "genpipe.data.digest", versionTags, "data_digest");
      copy(run.tags(), "genpipe.data.records", versionTags, "data_records");
      copy(run.tags(), "mlflow.source.git.commit", versionTags, "git_commit");
      copy(run.tags(), "genpipe.model", versionTags, "genpipe_model");
      for (Promotion.Objective o : objectives) {
        versionTags.put("metric." + o.metric(), Promotion.fmt(run.metrics().get(o.metric())));
      }
      versionTags.putAll(extra);
      ModelRegistry.Version v = registry.createVersion(name, run.artifactUri() + "/model", runId, versionTags,
          "run " + run.name() + ": " + String.join("; ", decision.reasons()));
      registry.setAlias(name, alias, v.version());
      summary = "promoted: " + name + " version " + v.version() + " is now @" + alias
          + champion.map(c -> " (was version " + c.version() + ")").orElse("");
      out.put("decision", "promoted");
      out.put("version", v.version());
      out.put("source", v.source());
      registry.setRunTag(runId, "genpipe.registered_version", name + "/" + v.version());
    } else {
      summary = "kept: " + name + "@" + alias + " stays version " + champion.map(ModelRegistry.Version::version)
          .orElse("(none)") + "; run " + run.name() + " is not registered";
      out.put("decision", "kept");
      out.put("version", null);
    }
    registry.setRunTag(runId, "genpipe.promotion", summary + " -- " + String.join("; ", decision.reasons()));
    out.put("summary", summary);
    out.put("tracking_uri", registry.uri());
    System.out.println(summary);
    for (String r : decision.reasons()) {
      System.out.println("  " + r);
    }
    if (report != null) {
      org.apache.hadoop.fs.Path p = Storage.path(report);
      Storage.writeAtomically(p, JSON.writeValueAsBytes(out), new Configuration());
      System.out.println("report:      " + p);
    }
    return 0;
  }

  private static String runOf(String checkpoint) {
    Checkpoint.Loaded ck = Checkpoint.resolve(checkpoint, new Configuration());
    String id = ck.info().trackingRunId();
    if (id == null || id.isBlank()) {
      throw new BadInputException(ck.dir() + " records no MLflow run (its training did not start one); give --run ID");
    }
    return id;
  }

  private static String experimentName(TrackedRun run) {
    String name = run.tags().get("genpipe.experiment");
    if (name != null) {
      return name;
    }
    throw new ConfigException("--model: the run carries no genpipe.experiment tag (trained before this version);"
        + " name the registered model with --model NAME");
  }

  private static void copy(Map<String, String> from, String key, Map<String, String> to, String as) {
    String v = from.get(key);
    if (v != null && !v.isBlank()) {
      to.put(as, v);
    }
  }
}
