package org.genpipe.jobs.config;

import static org.genpipe.common.config.ConfigException.check;

import com.fasterxml.jackson.annotation.JsonIgnore;
import java.io.Serializable;

/**
 * Config section {@code tracking}: where runs are logged.
 *
 * @param uri a folder or {@code file:} URI for an MLflow file store (default ./mlruns, readable by
 *     {@code mlflow ui --backend-store-uri ./mlruns}), or an {@code http(s)://} MLflow tracking server
 * @param experiment experiment name; empty: "&lt;model&gt;-&lt;dataset&gt;"
 * @param runName run name; empty: "&lt;model&gt;-&lt;time&gt;"
 * @param attempts tries per tracking call before it is kept as unsent
 * @param backoffMillis wait after the first failed try; doubles after each further one
 */
public record TrackingSettings(String uri, String experiment, String runName, int attempts, long backoffMillis)
    implements Serializable {

  public TrackingSettings {
    check(uri != null && !uri.isBlank(), "uri", "missing: a folder (./mlruns) or http(s)://host:port");
    check(attempts >= 1, "attempts", "must be >= 1, got " + attempts);
    check(backoffMillis >= 0, "backoffMillis", "must be >= 0, got " + backoffMillis);
  }

  @JsonIgnore // derived from uri: not a config key (the resolved config must bind back)
  public boolean isServer() {
    return isServer(uri);
  }

  /** Whether {@code uri} names an MLflow tracking server (http or https) rather than a file store. */
  public static boolean isServer(String uri) {
    return uri.startsWith("http://") || uri.startsWith("https://");
  }
}
