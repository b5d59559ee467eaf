package org.genpipe.models;

import org.nd4j.linalg.api.ndarray.INDArray;

/** A model that can reconstruct its inputs (an autoencoder): what evaluation compares with the inputs. */
public interface Reconstructing {

  /**
   * @param images [N, C, H, W] in the model's {@link GenerativeModel#pixelRange()}
   * @return reconstructions [N, C, H, W] in [0, 1]
   */
  INDArray reconstruct(INDArray images);
}
