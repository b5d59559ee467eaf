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
 * A folder of CAPTCHA images whose file name is the text (e.g. {@code 2b827.png}), as in the common
 * public CAPTCHA sets. Items are split into train and test by a stable hash of the file name.
 */
public final class CaptchaFolder implements RawDataset {
  private static final long serialVersionUID = 1L;
  public static final String NAME = "captcha";
  private static final String[] EXTENSIONS = {".png", ".jpg", ".jpeg", ".gif", ".bmp"};

  private final String input;
  private final CaptchaSettings settings;

  public CaptchaFolder(String input, CaptchaSettings settings) {
    this.input = input;
    this.settings = settings;
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public Inventory inventory(Configuration conf, BadRecords bad) throws IOException {
    Path dir = RawFiles.requireDir(input, conf);
    List<Path> files = RawFiles.list(dir, conf, EXTENSIONS);
    if (files.isEmpty()) {
      throw new BadInputException(
          "input folder " + dir + " holds no CAPTCHA images (*.png, *.jpg) named by their text");
    }
    List<String> train = new ArrayList<>();
    List<String> test = new ArrayList<>();
    List<String> sources = new ArrayList<>();
    for (Path f : files) {
      String problem = settings.problemWith(RawFiles.stem(f));
      if (problem != null) {
        bad.report(f.toString(), "file name: " + problem);
        continue;
      }
      (isTest(f.getName()) ? test : train).add(f.toString());
      sources.add(f.toString());
    }
    if (sources.isEmpty()) {
      throw new BadInputException("input folder " + dir + ": every file was skipped as bad");
    }
    List<Inventory.Split> splits = new ArrayList<>();
    splits.add(new Inventory.Split("train", train.size(), train));
    if (!test.isEmpty()) {
      splits.add(new Inventory.Split("test", test.size(), test));
    }
    return new Inventory(splits, sources, List.of(), shape(settings), false);
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
      BufferedImage img;
      try {
        img = Images.decodeChecked(RawFiles.readAll(p, conf));
      } catch (IOException | RuntimeException e) {
        bad.report(p.toString(), "unreadable image (" + e.getMessage() + ")", e);
        continue;
      }
      if (img == null) {
        bad.report(p.toString(), "unreadable image: not a PNG/JPEG file");
        continue;
      }
      out.accept(i, toRecord(split.name() + "/" + p.getName(), split.name(), RawFiles.stem(p), img, settings));
    }
  }

  /** Deterministic split by file name: about {@code testFraction} of names go to test. */
  boolean isTest(String fileName) {
    long h = CaptchaRenderer.mix(0, fileName.hashCode());
    return Math.floorMod(h, 1_000_000L) < Math.round(settings.testFraction() * 1_000_000L);
  }

  static ImageShape shape(CaptchaSettings s) {
    return new ImageShape(s.height(), s.width(), s.channels());
  }

  /** Resizes and converts a CAPTCHA image to the record shape (shared with the renderer). */
  static ImageRecord toRecord(String id, String split, String text, BufferedImage img, CaptchaSettings s) {
    BufferedImage sized = Images.resize(img, s.height(), s.width());
    return new ImageRecord(id, split, null, text, s.height(), s.width(), s.channels(),
        Images.toHwc(sized, s.channels()), null);
  }
}
