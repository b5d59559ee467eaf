package org.genpipe.models.ddpm;

import org.nd4j.linalg.api.ndarray.INDArray;

/** What a sampler asks of a DDPM: its estimate of the noise in x_t. */
@FunctionalInterface
public interface NoisePredictor {
  /**
   * @param x noised images x_t [N, C, H, W]
   * @param t the step every image is at, 0..T-1
   * @return predicted eps, the shape of {@code x}: a new array, which the sampler frees
   */
  INDArray predict(INDArray x, int t);
}
