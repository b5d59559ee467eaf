package org.genpipe.common.data;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.genpipe.common.image.Images;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.records.ImageRecord;
import org.genpipe.common.records.ImageShape;

/**
 * The pix2pix {@code cityscapes} set: {@code train/} and {@code val/} folders of JPEGs, each two
 * square images side by side (512x256): the photo on the left, the colour label map on the right.
 * Records hold the photo as {@code image} and the label map as {@code label_map}, both resized to
 * the configured size.
 */
public final class CityscapesPairs implements RawDataset {
  private static final long serialVersionUID = 1L;
  public static final String NAME = "cityscapes";
  private static final String[] SPLITS = {"train", "val"};
  private static final String[] EXTENSIONS = {".jpg", ".jpeg", ".png"};

  private final String input;
  private final ImageShape shape;

  public CityscapesPairs(String input, int height, int width) {
    this.input = input;
    this.shape = new ImageShape(height, width, 3);
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
    for (String s : SPLITS) {
      Path sub = new Path(dir, s);
      if (!RawFiles.isDir(sub, conf)) {
        continue;
      }
      List<String> files = RawFiles.list(sub, conf, EXTENSIONS).stream().map(Path::toString).toList();
      if (files.isEmpty()) {
        throw new BadInputException("input folder " + sub + " holds no pair images (*.jpg)");
      }
      splits.add(new Inventory.Split(s, files.size(), files));
      sources.addAll(files);
    }
    if (splits.isEmpty()) {
      throw new BadInputException(
          "input folder " + dir + " has neither train/ nor val/ with pair images; expected the pix2pix"
              + " cityscapes layout");
    }
    return new Inventory(splits, sources, List.of(), shape, true);
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
    for (int i = from; i < to; i++) {
      Path p = new Path(split.files().get(i));
      BufferedImage pair;
      try {
        byte[] bytes = RawFiles.readAll(p, conf);
        // the pair's shape from the header first: a wrong or huge image is refused without decoding it
        int[] wh = Images.size(bytes);
        if (wh != null && wh[0] != 2 * wh[1]) {
          bad.report(p.toString(),
              "image is " + wh[0] + "x" + wh[1] + "; expected a side-by-side pair twice as wide as high (512x256)");
          continue;
        }
        pair = wh == null ? null : Images.decodeChecked(bytes);
      } catch (IOException | RuntimeException e) {
        bad.report(p.toString(), "unreadable image (" + e.getMessage() + ")", e);
        continue;
      }
      if (pair == null) {
        bad.report(p.toString(), "unreadable image: not a JPEG/PNG file");
        continue;
      }
      int h = pair.getHeight();
      BufferedImage photo = Images.resize(pair.getSubimage(0, 0, h, h), shape.height(), shape.width());
      BufferedImage labels = Images.resize(pair.getSubimage(h, 0, h, h), shape.height(), shape.width());
      out.accept(i,
          new ImageRecord(
              split.name() + "/" + RawFiles.stem(p),
              split.name(), null, null, shape.height(), shape.width(), 3,
              Images.toHwc(photo, 3), Images.toHwc(labels, 3)));
    }
  }
}
