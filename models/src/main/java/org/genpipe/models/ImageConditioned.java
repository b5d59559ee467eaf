package org.genpipe.models;

import java.awt.image.BufferedImage;
import org.genpipe.common.image.ImageGrid;
import org.genpipe.common.image.Images;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.PixelRange;
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

  /**
   * Whether the model makes the pairs' label maps (from photos), which the evaluation then reads as
   * classes by their colours; otherwise it makes the photos, which a segmenter reads.
   */
  boolean makesLabelMaps();

  /**
   * A grid of (condition | generated | target) rows, the first row captioned; condition and target
   * in {@code range} (the batch's), generated in [0, 1].
   */
  static BufferedImage triplets(INDArray cond, INDArray generated, INDArray target, PixelRange range,
      String conditionName) {
    ImageGrid grid = new ImageGrid(3, 96);
    INDArray c = range == PixelRange.MINUS_ONE_ONE ? cond.add(1.0).muli(0.5) : cond;
    INDArray t = range == PixelRange.MINUS_ONE_ONE ? target.add(1.0).muli(0.5) : target;
    for (int i = 0; i < c.size(0); i++) {
      grid.add(Images.fromUnitFloats(c, i), i == 0 ? conditionName : null);
      grid.add(Images.fromUnitFloats(generated, i), i == 0 ? "generated" : null);
      grid.add(Images.fromUnitFloats(t, i), i == 0 ? "target" : null);
    }
    return grid.render();
  }
}
