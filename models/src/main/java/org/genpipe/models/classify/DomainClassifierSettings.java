package org.genpipe.models.classify;

import static org.genpipe.common.config.ConfigException.check;

import java.io.Serializable;
import org.genpipe.models.nn.OptimizerSettings;

/**
 * Config section {@code evaluate.domain}: the small classifier trained on the records whose
 * penultimate layer gives the offline feature extractor.
 *
 * @param steps training steps (batches)
 * @param batchSize examples per step
 * @param featureSize width of the penultimate layer (the feature dimension)
 * @param optimizer its optimizer
 */
public record DomainClassifierSettings(int steps, int batchSize, int featureSize, OptimizerSettings optimizer)
    implements Serializable {

  public DomainClassifierSettings {
    check(steps >= 1, "steps", "must be >= 1, got " + steps);
    check(batchSize >= 1, "batchSize", "must be >= 1, got " + batchSize);
    check(featureSize >= 2, "featureSize", "must be >= 2, got " + featureSize);
    check(optimizer != null, "optimizer", "missing");
  }
}
