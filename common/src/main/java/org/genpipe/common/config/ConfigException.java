package org.genpipe.common.config;

import org.genpipe.common.io.BadInputException;

/** A configuration file or override that cannot be bound: names the key and what is allowed. */
public class ConfigException extends BadInputException {
  private static final long serialVersionUID = 1L;

  public ConfigException(String message) {
    super(message);
  }

  public ConfigException(String message, Throwable cause) {
    super(message, cause);
  }

  /** Validation helper for compact constructors: fails with "key: message" unless ok. */
  public static void check(boolean ok, String key, String message) {
    if (!ok) {
      throw new ConfigException(key + ": " + message);
    }
  }
}
