package org.genpipe.jobs.spark;

import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;
import org.genpipe.jobs.config.SparkSettings;

/** The one place that makes Spark sessions: spark-submit settings win over the config file's. */
public final class SparkSessions {
  private static final String MAIN_CLASS = "org.genpipe.jobs.Cli";

  private SparkSessions() {}

  /**
   * A session for a job; {@code appName} (the command and what it works on) names the application in
   * the Spark UI and the cluster manager unless spark-submit's --name gave one.
   */

  public static SparkSession getOrCreate(SparkSettings settings, String appName) {
    SparkConf conf = new SparkConf(); // picks up spark.* system properties set by spark-submit
    conf.setIfMissing("spark.master", settings.master());
    // spark-submit names an application after its main class unless --name is given: that says nothing
    if (!conf.contains("spark.app.name") || MAIN_CLASS.equals(conf.get("spark.app.name"))) {
      conf.set("spark.app.name", appName);
    }
    settings.conf().forEach(conf::setIfMissing);
    if (conf.get("spark.master").startsWith("local")) {
      // single-machine runs stay on loopback
      conf.setIfMissing("spark.driver.host", "127.0.0.1");
      conf.setIfMissing("spark.driver.bindAddress", "127.0.0.1");
    }
    // ND4J's OpenMP threads spin against Spark's task threads unless limited (PLATFORM.md)
    conf.setIfMissing("spark.executorEnv.OMP_NUM_THREADS", "1");
    // a training round returns each worker's model state (megabytes): in the task's status message
    // rather than through the block manager (Spark's default above 1 MB, ~15 ms more per round)
    conf.setIfMissing("spark.task.maxDirectResultSize", "64m");
    return SparkSession.builder().config(conf).getOrCreate();
  }
}
