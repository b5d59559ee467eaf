package org.genpipe.jobs.config;

import static org.genpipe.common.config.ConfigException.check;

import java.nio.file.Path;
import java.util.List;
import org.genpipe.common.config.ConfigException;
import org.genpipe.common.config.ConfigLoader;
import org.genpipe.common.data.PreprocessSettings;

/**
 * The root of every config file in {@code conf/}: a seed, Spark settings, and one section per job.
 * Defaults live in {@code pipeline-defaults.yaml} beside this class; a file only states what differs.
 *
 * @param seed seed of everything random in the run
 * @param spark Spark master and properties for local runs
 * @param preprocess the preprocess job's section
 */
public record PipelineConfig(long seed, SparkSettings spark, PreprocessSettings preprocess) {
  public static final String DEFAULTS = "pipeline-defaults.yaml";

  public PipelineConfig {
    check(spark != null, "spark", "section missing");
  }

  /** Loads a config file with overrides ("preprocess.shardSize=2048"). */
  public static PipelineConfig load(Path file, List<String> overrides) {
    return ConfigLoader.load(file, PipelineConfig.class, DEFAULTS, overrides);
  }

  public PreprocessSettings requirePreprocess() {
    if (preprocess == null) {
      throw new ConfigException("the config has no 'preprocess' section");
    }
    return preprocess;
  }

  public String toYaml() {
    return ConfigLoader.toYaml(this);
  }
}
