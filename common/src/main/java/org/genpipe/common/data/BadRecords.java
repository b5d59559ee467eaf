package org.genpipe.common.data;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import org.genpipe.common.io.BadInputException;

/**
 * Applies the {@link OnBadRecord} policy in one place: a bad item either stops the job with a
 * message naming it, or is skipped and listed (the list goes into the manifest).
 */
public final class BadRecords implements Serializable {
  private static final long serialVersionUID = 1L;

  /** One skipped item: the file (and position) and why. */
  public record Skipped(String item, String reason) implements Serializable {}

  private final OnBadRecord mode;
  private final List<Skipped> skipped = new ArrayList<>();

  public BadRecords(OnBadRecord mode) {
    this.mode = mode;
  }

  /** Reports a bad item: throws under {@code fail}, records it under {@code skip}. */
  public void report(String item, String reason, Throwable cause) {
    if (mode == OnBadRecord.FAIL) {
      throw new BadInputException(
          item + ": " + reason + " (use --on-bad-record=skip to skip such records)", cause);
    }
    skipped.add(new Skipped(item, reason));
  }

  public void report(String item, String reason) {
    report(item, reason, null);
  }

  public List<Skipped> skipped() {
    return skipped;
  }
}
