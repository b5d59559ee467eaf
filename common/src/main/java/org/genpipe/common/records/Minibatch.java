package org.genpipe.common.records;

import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A batch of records as ND4J arrays.
 *
 * @param images [N, C, H, W] float, in the batch's {@link PixelRange}
 * @param labelMaps [N, C, H, W] float paired inputs (Pix2Pix), or null
 * @param labels [N] int32 class indices, or null where the data set has no classes
 * @param texts the CAPTCHA texts, or null
 * @param ids record ids, in batch order
 */
public record Minibatch(
    INDArray images, INDArray labelMaps, INDArray labels, List<String> texts, List<String> ids) {

  public int size() {
    return ids.size();
  }
}
