package org.genpipe.common.io;

/**
 * Input that the pipeline cannot use: a missing path, a corrupt file, a value out of range. The
 * message always names the file, key or value and says what was expected, so it can be shown to the
 * user as it is.
 */
public class BadInputException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public BadInputException(String message) {
    super(message);
  }

  public BadInputException(String message, Throwable cause) {
    super(message, cause);
  }

  /** The first {@code BadInputException} in a cause chain (Spark wraps task failures), or null. */
  public static BadInputException findIn(Throwable t) {
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (c instanceof BadInputException b) {
        return b;
      }
      if (c.getCause() == c) {
        break;
      }
    }
    return null;
  }
}
