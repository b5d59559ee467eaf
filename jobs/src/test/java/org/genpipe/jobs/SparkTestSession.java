package org.genpipe.jobs;

import java.util.Map;
import org.apache.spark.sql.SparkSession;
import org.genpipe.jobs.config.SparkSettings;
import org.genpipe.jobs.spark.SparkSessions;

/** The Spark session of a test class: local[2] (unless told) on loopback, UI off. One per test class. */
public final class SparkTestSession {
  private SparkTestSession() {}

  public static SparkSession start(Map<String, String> extra) {
    return start("local[2]", extra);
  }

  /** With another local master, e.g. local[2,2]: two threads, a failed task tried twice. */
  public static SparkSession start(String master, Map<String, String> extra) {
    java.util.Map<String, String> conf = new java.util.HashMap<>(extra);
    conf.put("spark.ui.enabled", "false");
    conf.put("spark.sql.shuffle.partitions", "2");
    return SparkSessions.getOrCreate(new SparkSettings(master, conf), "genpipe-test");
  }
}
