package org.genpipe.common.data;

import static org.genpipe.common.config.ConfigException.check;

import java.io.Serializable;

/**
 * The {@code preprocess} config section: which raw data set to read, where from, where the records
 * go, and how they are cut into shards.
 *
 * @param dataset registry name: see {@link Datasets#NAMES}
 * @param input folder with the raw data set in its official format (unused by captcha-render)
 * @param output records folder (local path, hdfs:// or s3a://)
 * @param shardSize records per shard file
 * @param onBadRecord fail (default) or skip unusable items and count them in the manifest
 * @param cityscapes pair image size for the cityscapes data set
 * @param captcha CAPTCHA alphabet, lengths, image size and renderer settings
 */
public record PreprocessSettings(
    String dataset,
    String input,
    String output,
    int shardSize,
    OnBadRecord onBadRecord,
    PairSettings cityscapes,
    CaptchaSettings captcha)
    implements Serializable {

  public PreprocessSettings {
    check(dataset != null && Datasets.NAMES.contains(dataset), "dataset",
        "'" + dataset + "' is not a known data set; valid: " + String.join(", ", Datasets.NAMES));
    check(output != null && !output.isBlank(), "output", "a records folder is required");
    check(shardSize > 0, "shardSize", "must be > 0, got " + shardSize);
    check(onBadRecord != null, "onBadRecord", "must be fail or skip");
    check(Datasets.needsInput(dataset) ? input != null && !input.isBlank() : true, "input",
        "data set " + dataset + " reads from an input folder; none given");
  }
}
