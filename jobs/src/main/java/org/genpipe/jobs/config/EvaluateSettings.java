package org.genpipe.jobs.config;

import static org.genpipe.common.config.ConfigException.check;

import java.io.Serializable;
import java.util.List;
import org.genpipe.models.classify.DomainClassifierSettings;

/**
 * Config section {@code evaluate}: which checkpoint, against which records, with which features.
 *
 * @param checkpoint a checkpoint folder, or a run folder (its latest checkpoint); required by the
 *     evaluate command (which may also take it as --checkpoint)
 * @param model the model the checkpoint must be of; empty: any
 * @param records reference records; empty: the records the checkpoint was trained on
 * @param split the reference split (its images are the real set)
 * @param extractor {@code domain} (a classifier trained on the records; metrics {@code *_domain_*}),
 *     {@code inception} (the TF Inception-v3 graph; metrics {@code *_inception_*}) or {@code reader}
 *     (the CAPTCHA reader's features, see {@code reader}; metrics {@code *_reader_*})
 * @param inceptionGraph path of {@code classify_image_graph_def.pb} (inception-2015-12-05), for
 *     the inception extractor; never downloaded
 * @param samples generated samples; 0: as many as the reference split has images
 * @param workers Spark partitions the samples and records are spread over
 * @param batchSize images per generation / extraction batch
 * @param kidSubsets KID subsets
 * @param kidSubsetSize images per KID subset (capped at the smaller set's size)
 * @param kidMaxSamples features kept per set for KID (the first ones by sample index)
 * @param cache folder of cached reference statistics and domain classifiers
 * @param referenceStats a pytorch-fid {@code .npz} (mu, sigma) to use as the reference instead of
 *     computing it (no KID then: it needs the features)
 * @param exportStats write the reference statistics as a pytorch-fid {@code .npz} here
 * @param domain the domain classifier
 * @param reader text-conditioned models: a captcha-reader checkpoint or run that judges whether each
 *     sample shows its text; empty: one is trained on the records' train split and cached
 * @param readerSteps updates of the reader trained when {@code reader} is empty
 * @param repeats generation seeds (seed, seed + 1, ...): each metric is the mean over them and
 *     {@code <metric>_std} their sample standard deviation, the spread a difference between two runs
 *     must beat to be real; 1: one seed (KID's {@code _std} is then over its subsets)
 */
public record EvaluateSettings(
    String checkpoint,
    String model,
    String records,
    String split,
    String extractor,
    String inceptionGraph,
    long samples,
    int workers,
    int batchSize,
    int kidSubsets,
    int kidSubsetSize,
    int kidMaxSamples,
    String cache,
    String referenceStats,
    String exportStats,
    DomainClassifierSettings domain,
    String reader,
    int readerSteps,
    int repeats)
    implements Serializable {
  public static final List<String> EXTRACTORS = List.of("domain", "inception", "reader");

  public EvaluateSettings {
    check(split != null && !split.isBlank(), "split", "missing");
    check(extractor != null && EXTRACTORS.contains(extractor), "extractor",
        "'" + extractor + "' is not an extractor; allowed: " + String.join(", ", EXTRACTORS));
    check(!"inception".equals(extractor) || (inceptionGraph != null && !inceptionGraph.isBlank()), "inceptionGraph",
        "missing: the path of classify_image_graph_def.pb (inception-2015-12-05) for extractor inception");
    check(samples >= 0, "samples", "must be >= 0, got " + samples);
    check(workers >= 1, "workers", "must be >= 1, got " + workers);
    check(batchSize >= 1, "batchSize", "must be >= 1, got " + batchSize);
    check(kidSubsets >= 1, "kidSubsets", "must be >= 1, got " + kidSubsets);
    check(kidSubsetSize >= 2, "kidSubsetSize", "must be >= 2, got " + kidSubsetSize);
    check(kidMaxSamples >= 2, "kidMaxSamples", "must be >= 2, got " + kidMaxSamples);
    check(cache != null && !cache.isBlank(), "cache", "missing");
    check(domain != null, "domain", "section missing");
    check(readerSteps >= 1, "readerSteps", "must be >= 1, got " + readerSteps);
    check(repeats >= 1, "repeats", "must be >= 1, got " + repeats);
  }

  public static boolean given(String s) {
    return s != null && !s.isBlank();
  }
}
