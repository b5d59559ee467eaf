package org.genpipe.models.nn;

import static org.genpipe.common.config.ConfigException.check;

import java.io.Serializable;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.IUpdater;
import org.nd4j.linalg.learning.config.Sgd;

/**
 * One network's optimizer (config section e.g. {@code model.betaVae.optimizer}).
 *
 * @param name adam or sgd
 * @param learningRate step size
 * @param beta1 Adam's first-moment decay
 * @param beta2 Adam's second-moment decay
 * @param epsilon Adam's denominator epsilon
 */
public record OptimizerSettings(String name, double learningRate, double beta1, double beta2, double epsilon)
    implements Serializable {

  public OptimizerSettings {
    check("adam".equals(name) || "sgd".equals(name), "name", "'" + name + "' is not an optimizer; allowed: adam, sgd");
    check(learningRate > 0 && Double.isFinite(learningRate), "learningRate", "must be > 0, got " + learningRate);
    check(beta1 >= 0 && beta1 < 1, "beta1", "must be in [0, 1), got " + beta1);
    check(beta2 >= 0 && beta2 < 1, "beta2", "must be in [0, 1), got " + beta2);
    check(epsilon > 0, "epsilon", "must be > 0, got " + epsilon);
  }

  public static OptimizerSettings adam(double lr, double beta1, double beta2) {
    return new OptimizerSettings("adam", lr, beta1, beta2, 1e-8);
  }

  public static OptimizerSettings sgd(double lr) {
    return new OptimizerSettings("sgd", lr, 0.9, 0.999, 1e-8);
  }

  public IUpdater updater() {
    return "sgd".equals(name) ? new Sgd(learningRate) : new Adam(learningRate, beta1, beta2, epsilon);
  }

  /** The optimizer with the learning rate falling linearly after {@code constantSteps} updates ({@link LinearDecay}). */
  public IUpdater updater(long constantSteps, long decaySteps) {
    if (decaySteps <= 0) {
      return updater();
    }
    LinearDecay lr = new LinearDecay(learningRate, constantSteps, decaySteps);
    return "sgd".equals(name) ? new Sgd(lr)
        : Adam.builder().learningRateSchedule(lr).beta1(beta1).beta2(beta2).epsilon(epsilon).build();
  }
}
