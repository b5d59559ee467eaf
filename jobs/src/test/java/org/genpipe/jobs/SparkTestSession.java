package org.genpipe.jobs;

import java.util.Map;
import org.apache.spark.sql.SparkSession;
import org.genpipe.jobs.config.SparkSettings;
import org.genpipe.jobs.spark.SparkSessions;

/** The Spark session of a test class: local[2] on loopback, UI off. One per test class. */
public final class SparkTestSession {
  private SparkTestSession() {}

  public static SparkSession start(Map<String, String> extra) {
    java.util.Map<String, String> conf = new java.util.HashMap<>(extra);
    conf.put("spark.ui.enabled", "false");
    conf.put("spark.sql.shuffle.partitions", "2");
    return SparkSessions.getOrCreate(new SparkSettings("local[2]", conf), "genpipe-test");
  }
}
