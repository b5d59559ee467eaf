package org.genpipe.jobs.config;

import static org.genpipe.common.config.ConfigException.check;

import java.nio.file.Path;
import java.util.List;
import org.genpipe.common.config.ConfigException;
import org.genpipe.common.config.ConfigLoader;
import org.genpipe.common.data.PreprocessSettings;
import org.genpipe.jobs.config.EvaluateSettings;
import org.genpipe.jobs.config.TrackingSettings;
import org.genpipe.jobs.config.TrainSettings;
import org.genpipe.models.ModelSettings;

/**
 * The root of every config file in {@code conf/}: a seed, Spark settings, and one section per job.
 * Defaults live in {@code pipeline-defaults.yaml} beside this class; a file only states what differs.
 *
 * @param seed seed of everything random in the run
 * @param spark Spark master and properties for local runs
 * @param preprocess the preprocess job's section
 * @param model the model to train and its settings
 * @param train the training job's section (data, parameter averaging, checkpoints)
 * @param tracking where runs are logged (MLflow)
 * @param evaluate the evaluation job's section (FID/KID of a checkpoint)
 */
public record PipelineConfig(
    long seed,
    SparkSettings spark,
    PreprocessSettings preprocess,
    ModelSettings model,
    TrainSettings train,
    TrackingSettings tracking,
    EvaluateSettings evaluate) {
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

  /**
   * Binds a resolved config written by a job (config.yaml, a checkpoint's config); sections added to
   * the pipeline since it was written take their defaults.
   */
  public static PipelineConfig fromYaml(String yaml, String source) {
    try {
      return ConfigLoader.bindOverDefaults(new com.fasterxml.jackson.databind.ObjectMapper(
          new com.fasterxml.jackson.dataformat.yaml.YAMLFactory()).readTree(yaml), PipelineConfig.class, DEFAULTS,
          source);
    } catch (java.io.IOException e) {
      throw new ConfigException(source + " is not valid YAML: " + e.getMessage(), e);
    }
  }

  public ModelSettings requireModel() {
    if (model == null) {
      throw new ConfigException("the config has no 'model' section");
    }
    return model;
  }

  public TrainSettings requireTrain() {
    if (train == null) {
      throw new ConfigException("the config has no 'train' section");
    }
    return train;
  }

  public EvaluateSettings requireEvaluate() {
    if (evaluate == null) {
      throw new ConfigException("the config has no 'evaluate' section");
    }
    return evaluate;
  }

  public String toYaml() {
    return ConfigLoader.toYaml(this);
  }
}
