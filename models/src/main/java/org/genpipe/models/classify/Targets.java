package org.genpipe.models.classify;

import java.io.Serializable;
import java.util.List;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.records.Minibatch;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * What the domain classifier predicts: the class label (one position, one of {@code classes}), or,
 * for records with texts and no classes, every character position of the text (each one of the
 * alphabet's characters or "none" past the text's end).
 *
 * @param classes number of classes, or 0 for texts
 * @param alphabet the characters of the texts (texts only)
 * @param positions the longest text (texts only)
 */
public record Targets(int classes, String alphabet, int positions) implements Serializable {

  public static Targets ofClasses(int classes) {
    if (classes < 2) {
      throw new IllegalArgumentException("a classifier needs at least 2 classes, got " + classes);
    }
    return new Targets(classes, "", 1);
  }

  /** Targets for these texts: their sorted characters and longest length. */
  public static Targets ofTexts(List<String> texts) {
    String alphabet = texts.stream().flatMapToInt(String::chars).distinct().sorted()
        .collect(StringBuilder::new, StringBuilder::appendCodePoint, StringBuilder::append).toString();
    int positions = texts.stream().mapToInt(String::length).max().orElse(0);
    if (alphabet.isEmpty() || positions == 0) {
      throw new IllegalArgumentException("the texts are all empty: nothing to classify");
    }
    return new Targets(0, alphabet, positions);
  }

  /** Choices per position (the classes, or the alphabet plus "none"). */
  public int choices() {
    return classes > 0 ? classes : alphabet.length() + 1;
  }

  /** Target index per position, [N][positions]. */
  public int[][] indices(Minibatch batch) {
    int n = batch.size();
    int[][] t = new int[n][positions];
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

  /** One-hot [N, positions, choices] float. */
  public INDArray oneHot(int[][] indices) {
    int k = choices();
    float[] v = new float[indices.length * positions * k];
    for (int i = 0; i < indices.length; i++) {
      for (int p = 0; p < positions; p++) {
        v[(i * positions + p) * k + indices[i][p]] = 1f;
      }
    }
    return Nd4j.create(v, new long[] {indices.length, positions, k}, 'c').castTo(DataType.FLOAT);
  }

  @Override
  public String toString() {
    return classes > 0 ? classes + " classes" : positions + " character positions over '" + alphabet + "'";
  }
}
