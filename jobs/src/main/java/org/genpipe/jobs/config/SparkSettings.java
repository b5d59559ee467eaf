package org.genpipe.jobs.config;

import static org.genpipe.common.config.ConfigException.check;

import java.util.Map;

/**
 * The {@code spark} config section, used when the job is not launched by spark-submit (whose
 * {@code --master} and {@code --conf} take precedence).
 *
 * @param master Spark master for local runs, e.g. local[*], local[2] or local-cluster[2,1,1024]
 * @param conf extra Spark properties, e.g. spark.hadoop.fs.s3a.endpoint; credential values are
 *     never printed or written
 */
public record SparkSettings(String master, Map<String, String> conf) {
  public SparkSettings {
    check(master != null && !master.isBlank(), "master", "a Spark master is required, e.g. local[*]");
    conf = conf == null ? Map.of() : Map.copyOf(conf);
  }
}
