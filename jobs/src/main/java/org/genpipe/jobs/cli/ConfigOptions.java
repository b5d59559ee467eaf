package org.genpipe.jobs.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.genpipe.jobs.config.PipelineConfig;
import picocli.CommandLine.Option;

/** The options every config-driven command shares: {@code --config FILE} and {@code --set key=value}. */
public final class ConfigOptions {
  @Option(
      names = {"-c", "--config"},
      paramLabel = "FILE",
      description = "YAML config (see conf/); omitted keys take the defaults.")
  Path config;

  @Option(
      names = {"--set"},
      paramLabel = "KEY=VALUE",
      description = "Override a config key by its dotted name, e.g. --set preprocess.shardSize=2048. Repeatable.")
  List<String> overrides = new ArrayList<>();

  /** The --config file given, or null. */
  public Path configFile() {
    return config;
  }

  public PipelineConfig load(List<String> extra) {
    List<String> all = new ArrayList<>(overrides);
    all.addAll(extra);
    return PipelineConfig.load(config, all);
  }
}
