package org.genpipe.common.image;

import java.util.List;

/**
 * The colours of Cityscapes' colour label maps (the {@code gtFine_color} images the pix2pix
 * {@code cityscapes} pairs carry) and the 19 evaluation classes ("train ids") they stand for. A
 * label-map pixel gets the class of the nearest palette colour; colours of classes outside the 19
 * (ground, parking, rail track, guard rail, bridge, tunnel, caravan, trailer, dynamic, unlabelled,
 * black) are {@link #VOID}, which scores ignore. JPEG noise in the pairs is why it is the nearest
 * colour and not an exact match.
 */
public final class CityscapesPalette {
  /** The class of pixels no evaluation class covers. */
  public static final int VOID = -1;

  /** The 19 evaluation classes, in train-id order. */
  public static final List<String> CLASSES = List.of("road", "sidewalk", "building", "wall", "fence", "pole",
      "traffic light", "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus",
      "train", "motorcycle", "bicycle");

  /** {r, g, b, train id or VOID}. */
  private static final int[][] COLOURS = {
    {128, 64, 128, 0}, {244, 35, 232, 1}, {70, 70, 70, 2}, {102, 102, 156, 3}, {190, 153, 153, 4},
    {153, 153, 153, 5}, {250, 170, 30, 6}, {220, 220, 0, 7}, {107, 142, 35, 8}, {152, 251, 152, 9},
    {70, 130, 180, 10}, {220, 20, 60, 11}, {255, 0, 0, 12}, {0, 0, 142, 13}, {0, 0, 70, 14}, {0, 60, 100, 15},
    {0, 80, 100, 16}, {0, 0, 230, 17}, {119, 11, 32, 18},
    {0, 0, 0, VOID}, {111, 74, 0, VOID}, {81, 0, 81, VOID}, {250, 170, 160, VOID}, {230, 150, 140, VOID},
    {180, 165, 180, VOID}, {150, 100, 100, VOID}, {150, 120, 90, VOID}, {0, 0, 90, VOID}, {0, 0, 110, VOID},
  };

  private CityscapesPalette() {}

  public static int classCount() {
    return CLASSES.size();
  }

  /** The class of an RGB colour (0..255 each): the train id of the nearest palette colour, or VOID. */
  public static int classOf(int r, int g, int b) {
    int best = VOID;
    int bestD = Integer.MAX_VALUE;
    for (int[] c : COLOURS) {
      int d = (r - c[0]) * (r - c[0]) + (g - c[1]) * (g - c[1]) + (b - c[2]) * (b - c[2]);
      if (d < bestD) {
        bestD = d;
        best = c[3];
      }
    }
    return best;
  }

  /**
   * The class of every pixel of image {@code i} of a batch of RGB images, CHW planes as floats in
   * [0, 1] ({@code data} = the batch's values in C order), row-major over H x W.
   */
  public static int[] classes(float[] data, int i, int height, int width) {
    int plane = height * width;
    int base = i * 3 * plane;
    int[] out = new int[plane];
    for (int p = 0; p < plane; p++) {
      out[p] = classOf(unit(data[base + p]), unit(data[base + plane + p]), unit(data[base + 2 * plane + p]));
    }
    return out;
  }

  private static int unit(float v) {
    return Math.max(0, Math.min(255, Math.round(v * 255f)));
  }
}
