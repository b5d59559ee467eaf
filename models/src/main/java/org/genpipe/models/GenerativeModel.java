package org.genpipe.models;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A model that generates images: the engine asks it for sample grids, the evaluation job for
 * samples to compare with real images, {@code generate} for pictures.
 */
public interface GenerativeModel extends TrainableModel {

  /**
   * Number of classes a conditional model generates for (images are asked for with
   * {@link Condition#labels()}); 0 for unconditional models.
   */
  default int classCount() {
    return 0;
  }

  /**
   * Generates {@code n} images from noise drawn from {@code seed}.
   *
   * @param condition class labels or texts for conditional models, or null
   * @return [n, C, H, W] floats in [0, 1]
   */
  INDArray generate(int n, long seed, Condition condition);
}
