package org.genpipe.common.image;

import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.List;

/**
 * A grid of images with an optional caption under each, e.g. records with their labels or texts,
 * or model samples. Small images are scaled up (nearest neighbour) so that a 28x28 digit is visible.
 */
public final class ImageGrid {
  private final List<BufferedImage> tiles = new ArrayList<>();
  private final List<String> captions = new ArrayList<>();
  private final int columns;
  private final int minTileSize;

  /**
   * @param columns tiles per row
   * @param minTileSize tiles whose longer side is smaller are scaled up by a whole factor to reach it
   */
  public ImageGrid(int columns, int minTileSize) {
    if (columns <= 0) {
      throw new IllegalArgumentException("columns must be > 0");
    }
    this.columns = columns;
    this.minTileSize = minTileSize;
  }

  public ImageGrid add(BufferedImage image, String caption) {
    tiles.add(image);
    captions.add(caption);
    return this;
  }

  public BufferedImage render() {
    if (tiles.isEmpty()) {
      throw new IllegalStateException("an image grid needs at least one image");
    }
    int tileW = tiles.stream().mapToInt(BufferedImage::getWidth).max().orElseThrow();
    int tileH = tiles.stream().mapToInt(BufferedImage::getHeight).max().orElseThrow();
    int scale = Math.max(1, (int) Math.ceil(minTileSize / (double) Math.max(tileW, tileH)));
    tileW *= scale;
    tileH *= scale;
    boolean anyCaption = captions.stream().anyMatch(c -> c != null && !c.isEmpty());
    Font font = new Font(Font.SANS_SERIF, Font.PLAIN, 12);
    int captionH = anyCaption ? 16 : 0;
    int pad = 4;
    int rows = (tiles.size() + columns - 1) / columns;
    int cols = Math.min(columns, tiles.size());
    int cellW = tileW + pad;
    int cellH = tileH + captionH + pad;
    BufferedImage out =
        new BufferedImage(cols * cellW + pad, rows * cellH + pad, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = out.createGraphics();
    g.setColor(Color.WHITE);
    g.fillRect(0, 0, out.getWidth(), out.getHeight());
    g.setRenderingHint(
        RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_NEAREST_NEIGHBOR);
    g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
    g.setFont(font);
    FontMetrics fm = g.getFontMetrics();
    for (int i = 0; i < tiles.size(); i++) {
      BufferedImage t = tiles.get(i);
      int x = pad + (i % columns) * cellW;
      int y = pad + (i / columns) * cellH;
      g.drawImage(t, x, y, t.getWidth() * scale, t.getHeight() * scale, null);
      String caption = captions.get(i);
      if (caption != null && !caption.isEmpty()) {
        String text = caption;
        while (fm.stringWidth(text) > tileW && text.length() > 1) {
          text = text.substring(0, text.length() - 1);
        }
        g.setColor(Color.BLACK);
        g.drawString(text, x + (tileW - fm.stringWidth(text)) / 2, y + tileH + fm.getAscent());
      }
    }
    g.dispose();
    return out;
  }
}
