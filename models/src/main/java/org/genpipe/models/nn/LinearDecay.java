package org.genpipe.models.nn;

import org.nd4j.linalg.schedule.ISchedule;

/**
 * A learning rate that stays at {@code initial} for the first {@code constantSteps} updates and
 * then falls linearly to 0 over the next {@code decaySteps} (pix2pix's {@code linear} policy, per
 * update instead of per epoch): lr(t) = initial * (1 - max(0, t + 1 - constantSteps) / (decaySteps + 1)),
 * and 0 after that. {@code decaySteps} 0 keeps the rate constant.
 */
public record LinearDecay(double initial, long constantSteps, long decaySteps) implements ISchedule {

  @Override
  public double valueAt(int iteration, int epoch) {
    if (decaySteps <= 0) {
      return initial;
    }
    double past = Math.max(0, iteration + 1 - constantSteps);
    return initial * Math.max(0.0, 1.0 - past / (decaySteps + 1));
  }

  @Override
  public ISchedule clone() {
    return new LinearDecay(initial, constantSteps, decaySteps);
  }
}
