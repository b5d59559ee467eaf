package org.genpipe.common.data;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.Path;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.io.Storage;
import org.genpipe.common.records.ImageRecord;
import org.genpipe.common.records.ImageShape;

/**
 * CIFAR-10, binary version: {@code data_batch_1.bin} .. {@code data_batch_5.bin} (train) and
 * {@code test_batch.bin} (test), each a sequence of 3073-byte records (1 label byte, then the 1024
 * red, 1024 green and 1024 blue bytes of a 32x32 image, rows first), and {@code batches.meta.txt}
 * with the class names one per line. The input may be the {@code cifar-10-batches-bin} folder or
 * the folder that holds it.
 */
public final class Cifar10 implements RawDataset {
  private static final long serialVersionUID = 1L;
  public static final String NAME = "cifar10";
  public static final int SIDE = 32;
  public static final int RECORD_BYTES = 1 + 3 * SIDE * SIDE;
  static final String SUBDIR = "cifar-10-batches-bin";
  static final String META = "batches.meta.txt";

  private final String input;

  public Cifar10(String input) {
    this.input = input;
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public Inventory inventory(Configuration conf, BadRecords bad) throws IOException {
    Path dir = RawFiles.requireDir(input, conf);
    Path nested = new Path(dir, SUBDIR);
    if (!RawFiles.isFile(new Path(dir, META), conf) && RawFiles.isDir(nested, conf)) {
      dir = nested;
    }
    Path meta = new Path(dir, META);
    if (!RawFiles.isFile(meta, conf)) {
      throw new BadInputException("CIFAR-10 class names file " + META + " not found in " + dir);
    }
    List<String> classes =
        Arrays.stream(new String(RawFiles.readAll(meta, conf), StandardCharsets.UTF_8).split("\\R"))
            .map(String::trim)
            .filter(s -> !s.isEmpty())
            .toList();
    if (classes.isEmpty()) {
      throw new BadInputException(meta + " lists no class names; expected one per line");
    }
    List<String> train = new ArrayList<>();
    for (int i = 1; i <= 5; i++) {
      train.add("data_batch_" + i + ".bin");
    }
    List<Inventory.Split> splits =
        List.of(split("train", dir, train, conf), split("test", dir, List.of("test_batch.bin"), conf));
    List<String> sources = new ArrayList<>();
    splits.forEach(s -> sources.addAll(s.files()));
    sources.add(meta.toString());
    return new Inventory(splits, sources, classes, new ImageShape(SIDE, SIDE, 3), false);
  }

  private static Inventory.Split split(String name, Path dir, List<String> files, Configuration conf)
      throws IOException {
    long total = 0;
    List<String> paths = new ArrayList<>();
    for (String f : files) {
      Path p = new Path(dir, f);
      if (!RawFiles.isFile(p, conf)) {
        throw new BadInputException("CIFAR-10 batch file " + f + " not found in " + dir);
      }
      long len = RawFiles.length(p, conf);
      if (len == 0 || len % RECORD_BYTES != 0) {
        throw new BadInputException(
            p + " is " + len + " bytes, not a positive multiple of " + RECORD_BYTES
                + " (1 label byte + 3072 pixel bytes per image): truncated or not a CIFAR-10 binary batch");
      }
      total += len / RECORD_BYTES;
      paths.add(p.toString());
    }
    return new Inventory.Split(name, Math.toIntExact(total), paths);
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
    int fileStart = 0;
    int plane = SIDE * SIDE;
    byte[] rec = new byte[RECORD_BYTES];
    for (String f : split.files()) {
      Path p = new Path(f);
      int n = Math.toIntExact(RawFiles.length(p, conf) / RECORD_BYTES);
      int lo = Math.max(from, fileStart);
      int hi = Math.min(to, fileStart + n);
      if (lo < hi) {
        try (FSDataInputStream raw = Storage.fs(p, conf).open(p)) {
          raw.seek((long) (lo - fileStart) * RECORD_BYTES);
          InputStream in = new java.io.BufferedInputStream(raw, 1 << 20);
          for (int index = lo; index < hi; index++) {
            if (in.readNBytes(rec, 0, RECORD_BYTES) < RECORD_BYTES) {
              throw new BadInputException(p + ": file ended early at record " + (index - fileStart));
            }
            int label = rec[0] & 0xFF;
            if (label >= inv.classes().size()) {
              bad.report(
                  p + " record " + (index - fileStart),
                  "label " + label + " is outside 0.." + (inv.classes().size() - 1));
              continue;
            }
            byte[] hwc = new byte[3 * plane];
            for (int px = 0; px < plane; px++) {
              hwc[px * 3] = rec[1 + px];
              hwc[px * 3 + 1] = rec[1 + plane + px];
              hwc[px * 3 + 2] = rec[1 + 2 * plane + px];
            }
            out.accept(index,
                new ImageRecord(
                    split.name() + "/" + String.format("%05d", index),
                    split.name(), label, null, SIDE, SIDE, 3, hwc, null));
          }
        }
      }
      fileStart += n;
    }
  }
}
