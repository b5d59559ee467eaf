package org.genpipe.models.classify;

import java.io.Serializable;
import java.util.List;
import org.genpipe.common.image.CityscapesPalette;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.records.Minibatch;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * What the domain classifier predicts: the class label (one position, one of {@code classes}); for
 * records with texts and no classes, every character position of the text (each one of the
 * alphabet's characters or "none" past the text's end); for records of (photo, colour label map)
 * pairs, the {@link CityscapesPalette} class of every pixel (a segmentation; void pixels count for
 * nothing).
 *
 * @param classes number of classes (the palette's for pixels), or 0 for texts
 * @param alphabet the characters of the texts (texts only)
 * @param positions the longest text (texts), the pixels (H x W) of a label map, else 1
 * @param pixels whether the positions are the pixels of the records' label maps
 */
public record Targets(int classes, String alphabet, int positions, boolean pixels) implements Serializable {

  public static Targets ofClasses(int classes) {
    if (classes < 2) {
      throw new IllegalArgumentException("a classifier needs at least 2 classes, got " + classes);
    }
    return new Targets(classes, "", 1, false);
  }

  /** The palette class of every pixel of the records' label maps (height x width). */
  public static Targets ofLabelMaps(int height, int width) {
    return new Targets(CityscapesPalette.classCount(), "", height * width, true);
  }

  /** Targets for these texts: their sorted characters and longest length. */
  public static Targets ofTexts(List<String> texts) {
    String alphabet = texts.stream().flatMapToInt(String::chars).distinct().sorted()
        .collect(StringBuilder::new, StringBuilder::appendCodePoint, StringBuilder::append).toString();
    int positions = texts.stream().mapToInt(String::length).max().orElse(0);
    if (alphabet.isEmpty() || positions == 0) {
      throw new IllegalArgumentException("the texts are all empty: nothing to classify");
    }
    return new Targets(0, alphabet, positions, false);
  }

  /** Choices per position (the classes, or the alphabet plus "none"). */
  public int choices() {
    return classes > 0 ? classes : alphabet.length() + 1;
  }

  /**
   * Target index per position, [N][positions]; {@link CityscapesPalette#VOID} (-1) for a pixel of
   * no class. Label maps are read as [0, 1] images.
   */
  public int[][] indices(Minibatch batch) {
    int n = batch.size();
    int[][] t = new int[n][positions];
    if (pixels) {
      if (batch.labelMaps() == null) {
        throw new BadInputException("record " + batch.ids().get(0) + " has no label map; the classifier reads the"
            + " pixel classes of label maps");
      }
      return pixelClasses(batch.labelMaps());
    }
    for (int i = 0; i < n; i++) {
      if (classes > 0) {
        if (batch.labels() == null) {
          throw new BadInputException("record " + batch.ids().get(i) + " has no class label; the classifier was"
              + " set up for " + classes + " classes");
        }
        int label = batch.labels().getInt(i);
        if (label < 0 || label >= classes) {
          throw new BadInputException("record " + batch.ids().get(i) + " has label " + label + ", expected 0.."
              + (classes - 1));
        }
        t[i][0] = label;
      } else {
        String text = batch.texts() == null ? null : batch.texts().get(i);
        if (text == null) {
          throw new BadInputException("record " + batch.ids().get(i) + " has no text; the classifier reads texts");
        }
        for (int p = 0; p < positions; p++) {
          int c = p < text.length() ? alphabet.indexOf(text.charAt(p)) : alphabet.length();
          t[i][p] = c < 0 ? alphabet.length() : c; // a character never seen in training counts as none
        }
      }
    }
    return t;
  }

  /**
   * The palette class of every pixel of colour label maps [N, 3, H, W] in [0, 1] ({@code H x W =
   * positions}), [N][pixels]; {@link CityscapesPalette#VOID} where no class's colour is nearest.
   */
  public int[][] pixelClasses(INDArray maps) {
    if (maps.rank() != 4 || maps.size(1) != 3 || maps.size(2) * maps.size(3) != positions) {
      throw new BadInputException("the classifier reads RGB label maps of " + positions + " pixels, got shape "
          + java.util.Arrays.toString(maps.shape()));
    }
    float[] data = maps.castTo(DataType.FLOAT).dup('c').data().asFloat();
    int[][] t = new int[(int) maps.size(0)][];
    for (int i = 0; i < t.length; i++) {
      t[i] = CityscapesPalette.classes(data, i, (int) maps.size(2), (int) maps.size(3));
    }
    return t;
  }

  /** One-hot [N, positions, choices] float (all zero at a void pixel). */
  public INDArray oneHot(int[][] indices) {
    int k = choices();
    float[] v = new float[indices.length * positions * k];
    for (int i = 0; i < indices.length; i++) {
      for (int p = 0; p < positions; p++) {
        if (indices[i][p] >= 0) {
          v[(i * positions + p) * k + indices[i][p]] = 1f;
        }
      }
    }
    return Nd4j.create(v, new long[] {indices.length, positions, k}, 'c').castTo(DataType.FLOAT);
  }

  @Override
  public String toString() {
    if (pixels) {
      return classes + " Cityscapes classes per pixel";
    }
    return classes > 0 ? classes + " classes" : positions + " character positions over '" + alphabet + "'";
  }
}
