package org.genpipe.common.image;

import static org.assertj.core.api.Assertions.assertThat;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The x-axis labels of a loss plot stand apart, whatever the number of steps (read from the pixels). */
class LinePlotTest {
  @ParameterizedTest
  @ValueSource(ints = {37, 600, 1500, 3000, 150_000})
  void xAxisLabelsDoNotRunIntoEachOther(int steps) {
    List<double[]> loss = new ArrayList<>();
    for (int i = 0; i < steps; i++) {
      loss.add(new double[] {i, Math.exp(-i / (double) steps)});
    }
    BufferedImage img = LinePlot.render("losses", "step", Map.of("loss", loss));
    List<int[]> labels = labelRuns(img);
    assertThat(labels.size()).as("labels on the x axis").isBetween(3, 15);
    for (int i = 1; i < labels.size(); i++) {
      assertThat(labels.get(i)[0] - labels.get(i - 1)[1]).as("gap before label " + i).isGreaterThanOrEqualTo(15);
    }
  }

  /** Column runs of dark (text) pixels in the band under the plot's bottom border: one per label. */
  private static List<int[]> labelRuns(BufferedImage img) {
    int border = -1;
    for (int y = img.getHeight() - 1; y > img.getHeight() / 2 && border < 0; y--) {
      int nonWhite = 0;
      for (int x = 0; x < img.getWidth(); x++) {
        nonWhite += (img.getRGB(x, y) & 0xffffff) != 0xffffff ? 1 : 0;
      }
      if (nonWhite > img.getWidth() / 2) {
        border = y;
      }
    }
    assertThat(border).as("the plot's bottom border").isPositive();
    List<int[]> runs = new ArrayList<>();
    int start = -1;
    int last = -100;
    for (int x = 0; x < img.getWidth(); x++) {
      boolean dark = false;
      for (int y = border + 6; y < Math.min(img.getHeight(), border + 22) && !dark; y++) {
        int rgb = img.getRGB(x, y);
        dark = ((rgb >> 16) & 0xff) < 100 && ((rgb >> 8) & 0xff) < 100 && (rgb & 0xff) < 100;
      }
      if (dark) {
        if (x - last > 4) { // characters of one label are closer than this
          if (start >= 0) {
            runs.add(new int[] {start, last});
          }
          start = x;
        }
        last = x;
      }
    }
    if (start >= 0) {
      runs.add(new int[] {start, last});
    }
    return runs;
  }
}
