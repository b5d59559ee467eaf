package org.genpipe.common.image;

import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.awt.image.DataBufferByte;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import javax.imageio.ImageIO;
import org.genpipe.common.records.ImageShape;

/** Image conversions between Java2D and the records' HWC uint8 layout, resizing, PNG encoding. */
public final class Images {
  static {
    System.setProperty("java.awt.headless", "true");
    ImageIO.setUseCache(false);
  }

  private Images() {}

  /**
   * The most pixels a raw image may have (a 64-megapixel photo; 20000x20000 took 12 s and ~400 MB to
   * decode before it could be refused): bigger ones are refused from their header, never decoded.
   */
  public static final long MAX_PIXELS = 64L << 20;

  /** Decodes PNG/JPEG/GIF/BMP bytes; null if no reader understands them. */
  public static BufferedImage decode(byte[] bytes) throws IOException {
    return ImageIO.read(new ByteArrayInputStream(bytes));
  }

  /**
   * Width and height as the image's header states them, read without decoding its pixels; null if no
   * reader understands the bytes.
   */
  public static int[] size(byte[] bytes) throws IOException {
    try (javax.imageio.stream.ImageInputStream in = ImageIO.createImageInputStream(new ByteArrayInputStream(bytes))) {
      java.util.Iterator<javax.imageio.ImageReader> readers = ImageIO.getImageReaders(in);
      if (!readers.hasNext()) {
        return null;
      }
      javax.imageio.ImageReader r = readers.next();
      try {
        r.setInput(in, true, true);
        return new int[] {r.getWidth(0), r.getHeight(0)};
      } finally {
        r.dispose();
      }
    }
  }

  /**
   * {@link #decode} after checking the header's size: more than {@link #MAX_PIXELS} pixels is an
   * IOException saying so (the pixels are not decoded); null if no reader understands the bytes.
   */
  public static BufferedImage decodeChecked(byte[] bytes) throws IOException {
    int[] wh = size(bytes);
    if (wh == null) {
      return null;
    }
    if ((long) wh[0] * wh[1] > MAX_PIXELS) {
      throw new IOException("its header says " + wh[0] + "x" + wh[1] + " pixels, over the limit of " + MAX_PIXELS
          + " (not decoded)");
    }
    return decode(bytes);
  }

  public static byte[] encodePng(BufferedImage image) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try {
      ImageIO.write(image, "png", out);
    } catch (IOException e) {
      throw new IllegalStateException("PNG encoding failed", e);
    }
    return out.toByteArray();
  }

  /** Bilinear resize; large reductions go in halving steps so that no pixel is skipped. */
  public static BufferedImage resize(BufferedImage src, int height, int width) {
    if (src.getHeight() == height && src.getWidth() == width) {
      return src;
    }
    BufferedImage current = src;
    while (current.getWidth() / 2 >= width && current.getHeight() / 2 >= height) {
      current = draw(current, current.getHeight() / 2, current.getWidth() / 2);
    }
    return draw(current, height, width);
  }

  private static BufferedImage draw(BufferedImage src, int height, int width) {
    BufferedImage out = new BufferedImage(width, height, BufferedImage.TYPE_3BYTE_BGR);
    Graphics2D g = out.createGraphics();
    g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BILINEAR);
    g.setRenderingHint(RenderingHints.KEY_RENDERING, RenderingHints.VALUE_RENDER_QUALITY);
    g.drawImage(src, 0, 0, width, height, null);
    g.dispose();
    return out;
  }

  /**
   * Pixels of an image as HWC bytes: 3 channels RGB, or 1 channel grey (ITU-R 601 luma, as PIL's
   * "L" mode: (299 R + 587 G + 114 B) / 1000, rounded).
   */
  public static byte[] toHwc(BufferedImage image, int channels) {
    int h = image.getHeight();
    int w = image.getWidth();
    byte[] out = new byte[h * w * channels];
    if (image.getType() == BufferedImage.TYPE_BYTE_GRAY && channels == 1) {
      byte[] data = ((DataBufferByte) image.getRaster().getDataBuffer()).getData();
      if (data.length == out.length) {
        System.arraycopy(data, 0, out, 0, out.length);
        return out;
      }
    }
    int[] argb = image.getRGB(0, 0, w, h, null, 0, w);
    for (int p = 0; p < argb.length; p++) {
      int r = (argb[p] >> 16) & 0xFF;
      int g = (argb[p] >> 8) & 0xFF;
      int b = argb[p] & 0xFF;
      if (channels == 1) {
        out[p] = (byte) ((r * 299 + g * 587 + b * 114 + 500) / 1000);
      } else {
        out[p * 3] = (byte) r;
        out[p * 3 + 1] = (byte) g;
        out[p * 3 + 2] = (byte) b;
      }
    }
    return out;
  }

  /** HWC bytes back to an image (grey or RGB). */
  public static BufferedImage fromHwc(byte[] hwc, ImageShape shape) {
    int h = shape.height();
    int w = shape.width();
    if (shape.channels() == 1) {
      BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_BYTE_GRAY);
      img.getRaster().setDataElements(0, 0, w, h, hwc);
      return img;
    }
    BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
    int[] rgb = new int[h * w];
    for (int p = 0; p < rgb.length; p++) {
      rgb[p] = ((hwc[p * 3] & 0xFF) << 16) | ((hwc[p * 3 + 1] & 0xFF) << 8) | (hwc[p * 3 + 2] & 0xFF);
    }
    img.setRGB(0, 0, w, h, rgb, 0, w);
    return img;
  }

  /** Image {@code index} of an [N, C, H, W] float batch with values in [0, 1] (clamped). */
  public static BufferedImage fromUnitFloats(org.nd4j.linalg.api.ndarray.INDArray nchw, int index) {
    long[] shape = nchw.shape();
    int c = (int) shape[1];
    int h = (int) shape[2];
    int w = (int) shape[3];
    float[] chw = nchw.get(org.nd4j.linalg.indexing.NDArrayIndex.point(index)).dup('c').data().asFloat();
    byte[] hwc = new byte[h * w * c];
    int hw = h * w;
    for (int p = 0; p < hw; p++) {
      for (int ch = 0; ch < c; ch++) {
        float v = chw[ch * hw + p];
        hwc[p * c + ch] = (byte) Math.max(0, Math.min(255, Math.round(v * 255f)));
      }
    }
    return fromHwc(hwc, new ImageShape(h, w, c));
  }
}
