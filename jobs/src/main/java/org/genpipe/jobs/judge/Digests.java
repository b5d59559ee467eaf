package org.genpipe.jobs.judge;

import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import org.genpipe.common.io.Storage;

/** Short content keys for cache entries. */
public final class Digests {
  private Digests() {}

  /** The first 16 hex digits of the SHA-256 of {@code s}. */
  public static String shortSha(String s) {
    return HexFormat.of().formatHex(Storage.sha256().digest(s.getBytes(StandardCharsets.UTF_8))).substring(0, 16);
  }
}
