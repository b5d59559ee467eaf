package org.genpipe.models;

import org.genpipe.common.records.Minibatch;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A model that generates an image for a condition image (image-to-image translation, e.g. a label
 * map to a photo). Records of such a model hold pairs (the record's {@code image} and
 * {@code label_map}); the model says which of the two is its input and which its target. The
 * engine uses this to show (condition | generated | target) rows and the evaluation to compare each
 * generated image with its target.
 *
 * <p>{@link GenerativeModel#generate} of such a model needs {@link Condition#images()}.
 */
public interface ImageConditioned {

  /** The condition images of a batch of pairs, [N, C, H, W], in the batch's pixel range. */
  INDArray conditions(Minibatch pairs);

  /** The images the model should produce for those conditions, [N, C, H, W], in the batch's pixel range. */
  INDArray targets(Minibatch pairs);

  /** What the condition images are, for captions and errors (e.g. "label map"). */
  String conditionName();
}
