package org.genpipe.common.testing;

import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.zip.GZIPOutputStream;
import javax.imageio.ImageIO;

/**
 * Writes tiny data sets in the official formats (IDX, CIFAR-10 binary, pix2pix pairs, CAPTCHA
 * folders) and returns what they hold, so tests can check records against the source exactly.
 */
public final class RawFixtures {
  private RawFixtures() {}

  /** One source item: its label (or -1), its text (or null) and its pixels in HWC order. */
  public record Item(int label, String text, byte[] hwc, byte[] labelMapHwc) {}

  // ---------------------------------------------------------------- Fashion-MNIST (IDX)

  /** Writes train and t10k IDX files (28x28) and returns {train items, test items}. */
  public static List<List<Item>> fashionMnist(Path dir, int nTrain, int nTest, boolean gzip, long seed)
      throws IOException {
    Files.createDirectories(dir);
    Random rnd = new Random(seed);
    List<Item> train = items(rnd, nTrain, 28 * 28, 10);
    List<Item> test = items(rnd, nTest, 28 * 28, 10);
    writeIdx(dir, "train", train, 28, 28, gzip);
    writeIdx(dir, "t10k", test, 28, 28, gzip);
    return List.of(train, test);
  }

  public static void writeIdx(Path dir, String prefix, List<Item> items, int rows, int cols, boolean gzip)
      throws IOException {
    ByteArrayOutputStream images = new ByteArrayOutputStream();
    DataOutputStream im = new DataOutputStream(images);
    im.writeInt(0x00000803);
    im.writeInt(items.size());
    im.writeInt(rows);
    im.writeInt(cols);
    ByteArrayOutputStream labels = new ByteArrayOutputStream();
    DataOutputStream lb = new DataOutputStream(labels);
    lb.writeInt(0x00000801);
    lb.writeInt(items.size());
    for (Item it : items) {
      im.write(it.hwc());
      lb.write(it.label());
    }
    String ext = gzip ? ".gz" : "";
    write(dir.resolve(prefix + "-images-idx3-ubyte" + ext), images.toByteArray(), gzip);
    write(dir.resolve(prefix + "-labels-idx1-ubyte" + ext), labels.toByteArray(), gzip);
  }

  public static byte[] gzip(byte[] data) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (GZIPOutputStream gz = new GZIPOutputStream(out)) {
      gz.write(data);
    }
    return out.toByteArray();
  }

  private static void write(Path file, byte[] data, boolean gzip) throws IOException {
    Files.write(file, gzip ? gzip(data) : data);
  }

  // ---------------------------------------------------------------- CIFAR-10 (binary)

  public static final List<String> CIFAR_CLASSES =
      List.of("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck");

  /** Writes data_batch_1..5.bin (perBatch records each), test_batch.bin and batches.meta.txt. */
  public static List<List<Item>> cifar10(Path dir, int perBatch, int nTest, long seed) throws IOException {
    Files.createDirectories(dir);
    Random rnd = new Random(seed);
    List<Item> train = new ArrayList<>();
    for (int b = 1; b <= 5; b++) {
      List<Item> batch = items(rnd, perBatch, 32 * 32 * 3, 10);
      writeCifarBatch(dir.resolve("data_batch_" + b + ".bin"), batch);
      train.addAll(batch);
    }
    List<Item> test = items(rnd, nTest, 32 * 32 * 3, 10);
    writeCifarBatch(dir.resolve("test_batch.bin"), test);
    Files.writeString(dir.resolve("batches.meta.txt"), String.join("\n", CIFAR_CLASSES) + "\n\n");
    return List.of(train, test);
  }

  /** A batch file: per record 1 label byte then the R, G and B planes (HWC items are converted). */
  public static void writeCifarBatch(Path file, List<Item> items) throws IOException {
    try (OutputStream out = Files.newOutputStream(file)) {
      for (Item it : items) {
        out.write(it.label());
        byte[] chw = new byte[3072];
        for (int p = 0; p < 1024; p++) {
          for (int c = 0; c < 3; c++) {
            chw[c * 1024 + p] = it.hwc()[p * 3 + c];
          }
        }
        out.write(chw);
      }
    }
  }

  // ---------------------------------------------------------------- pix2pix pairs

  /**
   * Writes {@code split/<i>.<format>} pair images, each 2*side wide and side high: photo left,
   * label map right. PNG keeps pixels exact; JPEG is what the official set uses.
   */
  public static List<Item> pairs(Path dir, String split, int n, int side, String format, long seed)
      throws IOException {
    Path sub = dir.resolve(split);
    Files.createDirectories(sub);
    Random rnd = new Random(seed);
    List<Item> out = new ArrayList<>();
    for (int i = 1; i <= n; i++) {
      byte[] photo = new byte[side * side * 3];
      byte[] map = new byte[side * side * 3];
      rnd.nextBytes(photo);
      rnd.nextBytes(map);
      BufferedImage img = new BufferedImage(2 * side, side, BufferedImage.TYPE_INT_RGB);
      for (int y = 0; y < side; y++) {
        for (int x = 0; x < side; x++) {
          int p = (y * side + x) * 3;
          img.setRGB(x, y, rgb(photo, p));
          img.setRGB(side + x, y, rgb(map, p));
        }
      }
      ImageIO.write(img, format, sub.resolve(i + "." + format).toFile());
      out.add(new Item(-1, null, photo, map));
    }
    return out;
  }

  /**
   * Writes {@code split/<i>.jpg} pairs in the official pix2pix layout (photo left, label map right)
   * of synthetic street scenes ({@link Scenes}).
   */
  public static List<Item> scenePairs(Path dir, String split, int n, int side, long seed) throws IOException {
    Path sub = dir.resolve(split);
    Files.createDirectories(sub);
    List<Item> out = new ArrayList<>();
    int i = 1;
    for (Scenes.Pair pair : Scenes.pairs(n, side, seed)) {
      BufferedImage img = new BufferedImage(2 * side, side, BufferedImage.TYPE_INT_RGB);
      for (int y = 0; y < side; y++) {
        for (int x = 0; x < side; x++) {
          int p = (y * side + x) * 3;
          img.setRGB(x, y, rgb(pair.photo(), p));
          img.setRGB(side + x, y, rgb(pair.labelMap(), p));
        }
      }
      ImageIO.write(img, "jpg", sub.resolve(i++ + ".jpg").toFile());
      out.add(new Item(-1, null, pair.photo(), pair.labelMap()));
    }
    return out;
  }

  // ---------------------------------------------------------------- CAPTCHA folder

  /** Writes one PNG per text, named {@code <text>.png}, with random grey pixels (w x h). */
  public static List<Item> captchaFolder(Path dir, List<String> texts, int width, int height, long seed)
      throws IOException {
    Files.createDirectories(dir);
    Random rnd = new Random(seed);
    List<Item> out = new ArrayList<>();
    for (String t : texts) {
      byte[] grey = new byte[width * height];
      rnd.nextBytes(grey);
      BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_BYTE_GRAY);
      img.getRaster().setDataElements(0, 0, width, height, grey);
      ImageIO.write(img, "png", dir.resolve(t + ".png").toFile());
      out.add(new Item(-1, t, grey, null));
    }
    return out;
  }

  // ---------------------------------------------------------------- helpers

  private static List<Item> items(Random rnd, int n, int pixels, int classes) {
    List<Item> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      byte[] px = new byte[pixels];
      rnd.nextBytes(px);
      out.add(new Item(rnd.nextInt(classes), null, px, null));
    }
    return out;
  }

  private static int rgb(byte[] hwc, int p) {
    return ((hwc[p] & 0xFF) << 16) | ((hwc[p + 1] & 0xFF) << 8) | (hwc[p + 2] & 0xFF);
  }

  public static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  /**
   * A PNG whose header says {@code width x height} and that holds no pixel data: readers see its size
   * from the header, decoding it fails. Stands in for huge images without writing their pixels.
   */
  public static byte[] pngHeaderOnly(int width, int height) {
    java.nio.ByteBuffer ihdr = java.nio.ByteBuffer.allocate(17);
    ihdr.put("IHDR".getBytes(java.nio.charset.StandardCharsets.US_ASCII)).putInt(width).putInt(height)
        .put((byte) 8).put((byte) 2).put((byte) 0).put((byte) 0).put((byte) 0);
    java.nio.ByteBuffer out = java.nio.ByteBuffer.allocate(8 + 4 + 17 + 4 + 12);
    out.put(new byte[] {(byte) 0x89, 'P', 'N', 'G', 13, 10, 26, 10});
    out.putInt(13).put(ihdr.array()).putInt(crc(ihdr.array()));
    byte[] iend = "IEND".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    out.putInt(0).put(iend).putInt(crc(iend));
    return out.array();
  }

  private static int crc(byte[] b) {
    java.util.zip.CRC32 c = new java.util.zip.CRC32();
    c.update(b);
    return (int) c.getValue();
  }
}
