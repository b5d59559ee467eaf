package org.genpipe.common.data;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.records.ImageRecord;
import org.genpipe.common.records.ImageShape;

/**
 * Fashion-MNIST in its official IDX format: {@code train-images-idx3-ubyte.gz},
 * {@code train-labels-idx1-ubyte.gz}, {@code t10k-images-idx3-ubyte.gz}, {@code t10k-labels-idx1-ubyte.gz}
 * (gzipped or not). IDX: big-endian int32 magic (0x00000803 images, 0x00000801 labels), int32
 * dimensions, then unsigned bytes. Splits: train (60,000) and test (10,000).
 */
public final class FashionMnist implements RawDataset {
  /** Fashion-MNIST's images are 28x28 grey (Xiao et al. 2017). */
  static final int SIZE = 28;

  private static final long serialVersionUID = 1L;
  public static final String NAME = "fashion-mnist";
  static final int IMAGES_MAGIC = 0x00000803;
  static final int LABELS_MAGIC = 0x00000801;

  /** Class names by label, from the data set's documentation. */
  public static final List<String> CLASSES =
      List.of(
          "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot");

  private final String input;

  public FashionMnist(String input) {
    this.input = input;
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public Inventory inventory(Configuration conf, BadRecords bad) throws IOException {
    Path dir = RawFiles.requireDir(input, conf);
    List<Inventory.Split> splits = new ArrayList<>();
    List<String> sources = new ArrayList<>();
    ImageShape shape = null;
    for (String[] s : new String[][] {{"train", "train"}, {"test", "t10k"}}) {
      Path images = find(dir, s[1] + "-images-idx3-ubyte", conf);
      Path labels = find(dir, s[1] + "-labels-idx1-ubyte", conf);
      int[] ih = header(images, IMAGES_MAGIC, 3, conf);
      int[] lh = header(labels, LABELS_MAGIC, 1, conf);
      if (ih[0] != lh[0]) {
        throw new BadInputException(
            images + " holds " + ih[0] + " images but " + labels + " holds " + lh[0]
                + " labels; the counts must match");
      }
      if (ih[1] != SIZE || ih[2] != SIZE) {
        throw new BadInputException(images + ": its IDX header says " + ih[1] + "x" + ih[2] + " images; Fashion-MNIST's"
            + " are " + SIZE + "x" + SIZE + " (is this another data set's file?)");
      }
      ImageShape sh = new ImageShape(ih[1], ih[2], 1);
      if (shape != null && !shape.equals(sh)) {
        throw new BadInputException(images + ": images are " + sh + " but the train split's are " + shape);
      }
      shape = sh;
      checkRawLength(images, 16 + (long) ih[0] * ih[1] * ih[2], conf);
      checkRawLength(labels, 8 + (long) lh[0], conf);
      splits.add(new Inventory.Split(s[0], ih[0], List.of(images.toString(), labels.toString())));
      sources.add(images.toString());
      sources.add(labels.toString());
    }
    return new Inventory(splits, sources, CLASSES, shape, false);
  }

  @Override
  public void read(
      Inventory inv,
      Inventory.Split split,
      int from,
      int to,
      Configuration conf,
      RecordSink out,
      BadRecords bad)
      throws IOException {
    Path images = new Path(split.files().get(0));
    Path labels = new Path(split.files().get(1));
    ImageShape shape = inv.shape();
    int size = shape.pixels();
    try (InputStream im = RawFiles.open(images, conf);
        InputStream lb = RawFiles.open(labels, conf)) {
      skip(im, images, 16 + (long) from * size, split.count());
      skip(lb, labels, 8 + (long) from, split.count());
      for (int index = from; index < to; index++) {
        byte[] pixels = readItem(im, images, size, index, split.count());
        int label = readItem(lb, labels, 1, index, split.count())[0] & 0xFF;
        if (label >= CLASSES.size()) {
          bad.report(
              labels + " item " + index, "label " + label + " is outside 0.." + (CLASSES.size() - 1));
          continue;
        }
        String id = split.name() + "/" + String.format("%05d", index);
        out.accept(index,
            new ImageRecord(id, split.name(), label, null, shape.height(), shape.width(), 1, pixels, null));
      }
      if (to == split.count()) {
        requireEnd(im, images, split.count());
        requireEnd(lb, labels, split.count());
      }
    }
  }

  private static void skip(InputStream in, Path file, long bytes, int count) throws IOException {
    try {
      in.skipNBytes(bytes);
    } catch (EOFException e) {
      throw truncated(file, count, e);
    } catch (IOException e) {
      throw RawFiles.corrupt(file, "corrupt gzip data", e);
    }
  }

  private static byte[] readItem(InputStream in, Path file, int size, int index, int count) {
    try {
      byte[] b = in.readNBytes(size);
      if (b.length < size) {
        throw truncated(file, count, null);
      }
      return b;
    } catch (EOFException e) {
      throw truncated(file, count, e);
    } catch (IOException e) {
      throw RawFiles.corrupt(file, "corrupt gzip data at item " + index, e);
    }
  }

  private static BadInputException truncated(Path file, int count, Throwable cause) {
    return new BadInputException(
        file + ": data ends before the " + count + " items its header declares (truncated file)",
        cause);
  }

  /** Reading past the last item must hit the end of the stream (this also checks a gzip CRC). */
  private static void requireEnd(InputStream in, Path file, int count) {
    long extra = 0;
    try {
      while (in.read() >= 0) {
        extra++;
      }
    } catch (EOFException e) {
      throw truncated(file, count, e);
    } catch (IOException e) {
      throw RawFiles.corrupt(file, "corrupt gzip data after the last item", e);
    }
    if (extra > 0) {
      throw new BadInputException(
          file + ": " + extra + " bytes follow the " + count + " items its header declares");
    }
  }

  private static Path find(Path dir, String base, Configuration conf) throws IOException {
    for (String name : new String[] {base + ".gz", base}) {
      Path p = new Path(dir, name);
      if (RawFiles.isFile(p, conf)) {
        return p;
      }
    }
    throw new BadInputException(
        "Fashion-MNIST file " + base + ".gz (or " + base + ") not found in " + dir);
  }

  /** Reads and checks an IDX header: returns count and, for images, rows and columns. */
  static int[] header(Path p, int magic, int dims, Configuration conf) throws IOException {
    try (DataInputStream in = new DataInputStream(RawFiles.open(p, conf))) {
      int m = in.readInt();
      if (m != magic) {
        throw new BadInputException(
            String.format(
                "%s: wrong IDX magic number 0x%08X; expected 0x%08X (%s)",
                p, m, magic, dims == 3 ? "unsigned byte images, 3 dimensions" : "unsigned byte labels, 1 dimension"));
      }
      int[] h = new int[dims];
      for (int i = 0; i < dims; i++) {
        h[i] = in.readInt();
        if (h[i] <= 0) {
          throw new BadInputException(p + ": IDX dimension " + i + " is " + h[i] + "; expected > 0");
        }
      }
      return h;
    } catch (EOFException e) {
      throw new BadInputException(p + ": file ends inside its IDX header", e);
    } catch (BadInputException e) {
      throw e;
    } catch (IOException e) {
      throw RawFiles.corrupt(p, "cannot read IDX header", e);
    }
  }

  /** An uncompressed IDX file's length is known from its header; check it up front. */
  private static void checkRawLength(Path p, long expected, Configuration conf) throws IOException {
    if (p.getName().endsWith(".gz")) {
      return;
    }
    long len = RawFiles.length(p, conf);
    if (len != expected) {
      throw new BadInputException(
          p + " is " + len + " bytes but its IDX header declares " + expected
              + (len < expected ? " (truncated file)" : " (extra bytes at the end)"));
    }
  }
}
