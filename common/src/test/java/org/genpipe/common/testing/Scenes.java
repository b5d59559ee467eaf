package org.genpipe.common.testing;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Synthetic street-scene pairs for the Pix2Pix tests, for the machinery, not realism: a label map of
 * flat Cityscapes-palette regions (sky, building, vegetation, road, and a few cars as rectangles at
 * random places) and its "photo": each class rendered in its own colour with a texture (stripes on
 * buildings, speckle on vegetation, a vertical gradient in the sky, noise on the road), so that the
 * photo is a function of the label map plus texture a generator can learn.
 */
public final class Scenes {
  /** Cityscapes palette colours of the classes drawn, and their photo colours. */
  public static final int[][] PALETTE = {
    {70, 130, 180}, // sky
    {70, 70, 70}, // building
    {107, 142, 35}, // vegetation
    {128, 64, 128}, // road
    {0, 0, 142}, // car
  };
  private static final int[][] PHOTO = {{150, 190, 230}, {120, 100, 90}, {40, 90, 30}, {90, 90, 95}, {200, 30, 30}};

  private Scenes() {}

  /** One pair: {photo, label map}, each HWC RGB bytes of side x side. */
  public record Pair(byte[] photo, byte[] labelMap) {}

  public static List<Pair> pairs(int n, int side, long seed) {
    Random r = new Random(seed);
    List<Pair> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      out.add(pair(side, r));
    }
    return out;
  }

  /** The class of every pixel of one random scene, then its two renderings. */
  private static Pair pair(int side, Random r) {
    int[] cls = new int[side * side];
    int horizon = side / 3 + r.nextInt(Math.max(1, side / 6));
    int road = side * 2 / 3 + r.nextInt(Math.max(1, side / 8));
    int split = side / 4 + r.nextInt(Math.max(1, side / 2));
    for (int y = 0; y < side; y++) {
      for (int x = 0; x < side; x++) {
        int c;
        if (y >= road) {
          c = 3;
        } else if (y < horizon) {
          c = 0;
        } else {
          c = x < split ? 1 : 2;
        }
        cls[y * side + x] = c;
      }
    }
    int cars = 1 + r.nextInt(2);
    for (int k = 0; k < cars; k++) {
      int w = side / 5 + r.nextInt(Math.max(1, side / 8));
      int h = side / 8 + r.nextInt(Math.max(1, side / 16));
      int x0 = r.nextInt(Math.max(1, side - w));
      int y0 = Math.min(side - h, road - h / 2 + r.nextInt(Math.max(1, side - road)));
      for (int y = y0; y < y0 + h; y++) {
        for (int x = x0; x < x0 + w; x++) {
          cls[y * side + x] = 4;
        }
      }
    }
    byte[] map = new byte[side * side * 3];
    byte[] photo = new byte[side * side * 3];
    for (int y = 0; y < side; y++) {
      for (int x = 0; x < side; x++) {
        int p = y * side + x;
        int c = cls[p];
        double t = switch (c) {
          case 0 -> -30.0 * y / side; // sky: lighter towards the top
          case 1 -> ((x / Math.max(1, side / 16)) % 2 == 0 ? 20 : -20); // building: stripes
          case 2 -> r.nextInt(41) - 20; // vegetation: speckle
          case 3 -> r.nextInt(21) - 10; // road: fine noise
          default -> (y % Math.max(2, side / 16) == 0 ? -60 : 0); // car: a dark line
        };
        for (int ch = 0; ch < 3; ch++) {
          map[p * 3 + ch] = (byte) PALETTE[c][ch];
          photo[p * 3 + ch] = (byte) Math.max(0, Math.min(255, (int) Math.round(PHOTO[c][ch] + t)));
        }
      }
    }
    return new Pair(photo, map);
  }
}
