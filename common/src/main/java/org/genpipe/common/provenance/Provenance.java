package org.genpipe.common.provenance;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.InputStream;
import java.time.Instant;
import java.util.Properties;

/**
 * Where an output came from: pipeline version and git commit, JVM, Spark and OS, the seed and the
 * resolved (redacted) config, and when.
 */
public record Provenance(
    String pipelineVersion,
    String gitCommit,
    String java,
    String spark,
    String os,
    String arch,
    String createdAt,
    long seed,
    JsonNode config) {

  private static final Properties BUILD = load();

  public static Provenance capture(String sparkVersion, long seed, JsonNode redactedConfig) {
    return new Provenance(
        version(),
        buildCommit(),
        System.getProperty("java.vendor") + " " + System.getProperty("java.version"),
        sparkVersion,
        System.getProperty("os.name") + " " + System.getProperty("os.version"),
        System.getProperty("os.arch"),
        Instant.now().toString(),
        seed,
        redactedConfig);
  }

  public static String version() {
    return BUILD.getProperty("version", "unknown");
  }

  public static String buildCommit() {
    String c = BUILD.getProperty("git.commit", "");
    return c.isEmpty() || c.startsWith("${") ? "unknown" : c;
  }

  private static Properties load() {
    Properties p = new Properties();
    try (InputStream in = Provenance.class.getResourceAsStream("build.properties")) {
      if (in != null) {
        p.load(in);
      }
    } catch (IOException ignored) {
      // provenance is best effort: "unknown" is written instead
    }
    return p;
  }
}
