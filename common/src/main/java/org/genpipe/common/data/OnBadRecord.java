package org.genpipe.common.data;

import com.fasterxml.jackson.annotation.JsonProperty;

/** What to do with one unusable item (an unreadable image, a bad file name): stop, or skip and count. */
public enum OnBadRecord {
  @JsonProperty("fail")
  FAIL,
  @JsonProperty("skip")
  SKIP;

  @Override
  public String toString() {
    return name().toLowerCase();
  }
}
