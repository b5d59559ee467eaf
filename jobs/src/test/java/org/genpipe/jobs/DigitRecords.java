package org.genpipe.jobs;

import java.nio.file.Path;
import java.util.List;

/** Config overrides for the embedded digit set the training tests learn on (28x28 CAPTCHA digits). */
public final class DigitRecords {
  private DigitRecords() {}

  public static List<String> preprocess(Path output, int count, int shardSize) {
    return List.of(
        "preprocess.dataset=captcha-render", "preprocess.output=" + output, "preprocess.shardSize=" + shardSize,
        "preprocess.captcha.alphabet=0123456789", "preprocess.captcha.minLength=1", "preprocess.captcha.maxLength=1",
        "preprocess.captcha.height=28", "preprocess.captcha.width=28", "preprocess.captcha.count=" + count,
        "preprocess.captcha.renderWidth=32", "preprocess.captcha.renderHeight=32");
  }
}
