package org.genpipe.jobs.read;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.Callable;
import org.apache.hadoop.conf.Configuration;
import org.genpipe.common.image.Images;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.io.Storage;
import org.genpipe.common.records.ImageRecord;
import org.genpipe.common.records.ImageShape;
import org.genpipe.common.records.Manifest;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.PixelRange;
import org.genpipe.common.records.ShardReader;
import org.genpipe.jobs.checkpoint.Checkpoint;
import org.genpipe.models.TrainableModel;
import org.genpipe.models.reader.CaptchaReader;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "read",
    mixinStandardHelpOptions = true,
    description = {
      "Read CAPTCHA images with a trained captcha-reader checkpoint (a checkpoints/step-N folder or a run folder):",
      "image files (resized to the reader's size, as preprocess does; the file name without extension is taken",
      "as the true text, as in CAPTCHA folders) or a split of records (--records DIR --split test). Prints what",
      "it reads and the sequence accuracy and character error rate against the true texts."
    })
public final class ReadCommand implements Callable<Integer> {
  private static final int BATCH = 256;

  @Option(names = "--checkpoint", required = true, paramLabel = "DIR", description = "captcha-reader checkpoint or run folder.")
  String checkpoint;

  @Parameters(paramLabel = "IMAGE", arity = "0..*", description = "Image files to read.")
  List<Path> images = new ArrayList<>();

  @Option(names = "--records", paramLabel = "DIR", description = "Read the records of this folder instead.")
  String records;

  @Option(names = "--split", defaultValue = "test", description = "Split of --records (default ${DEFAULT-VALUE}).")
  String split;

  @Option(names = "--beam", paramLabel = "N", description = "Beam width (1: greedy; default: the model's beamWidth).")
  Integer beam;

  @Option(names = "--show", defaultValue = "20", description = "Lines of readings to print (default ${DEFAULT-VALUE}).")
  int show;

  @Override
  public Integer call() throws Exception {
    if (images.isEmpty() == (records == null)) {
      throw new BadInputException("give image files to read, or --records DIR [--split S], not both");
    }
    Configuration conf = new Configuration();
    Checkpoint.Loaded c = Checkpoint.resolve(checkpoint, conf);
    try (CaptchaReader reader = c.captchaReader("--checkpoint")) {
      int width = beam != null ? beam : c.config().requireModel().captchaReader().beamWidth();
      List<String> ids = new ArrayList<>();
      List<String> truth = new ArrayList<>();
      List<String> read = new ArrayList<>();
      Iterator<ImageRecord> it = records != null ? recordsOf(records, split, reader.imageShape(), conf)
          : files(images, reader.imageShape());
      List<ImageRecord> batch = new ArrayList<>();
      while (it.hasNext() || !batch.isEmpty()) {
        if (it.hasNext()) {
          batch.add(it.next());
        }
        if (batch.size() == BATCH || !it.hasNext()) {
          Minibatch b = Minibatch.of(batch, PixelRange.ZERO_ONE);
          read.addAll(reader.read(b.images(), width));
          ids.addAll(b.ids());
          batch.forEach(r -> truth.add(r.text()));
          batch.clear();
        }
      }
      for (int i = 0; i < Math.min(show, read.size()); i++) {
        System.out.printf("%-40s %-12s%s%n", ids.get(i), read.get(i), truth.get(i) == null ? ""
            : truth.get(i).equals(read.get(i)) ? "  ok" : "  (true: " + truth.get(i) + ")");
      }
      if (read.size() > show) {
        System.out.println("... " + (read.size() - show) + " more");
      }
      System.out.printf("read %d image(s) with %s (step %d), beam %d: sequence accuracy %.4f, character error rate %.4f%n",
          read.size(), c.dir(), c.info().step(), width, CaptchaReader.sequenceAccuracy(read, truth),
          CaptchaReader.characterErrorRate(read, truth));
    }
    return 0;
  }

  /** The captcha-reader of checkpoint {@code c} (the caller closes it); {@code option} names it in the error otherwise. */
  /** Image files as records of the reader's shape; the file name (without extension) is the true text. */
  private static Iterator<ImageRecord> files(List<Path> files, ImageShape shape) throws java.io.IOException {
    List<ImageRecord> out = new ArrayList<>();
    for (Path f : files) {
      if (!Files.isRegularFile(f)) {
        throw new BadInputException(f + ": no such file");
      }
      BufferedImage img = Images.decode(Files.readAllBytes(f));
      if (img == null) {
        throw new BadInputException(f + ": not an image ImageIO can read (PNG, JPEG, BMP, GIF)");
      }
      byte[] hwc = Images.toHwc(Images.resize(img, shape.height(), shape.width()), shape.channels());
      String text = f.getFileName().toString().replaceFirst("\\.[^.]*$", "");
      out.add(new ImageRecord(f.toString(), "input", null, text, shape.height(), shape.width(), shape.channels(), hwc,
          null));
    }
    return out.iterator();
  }

  private static Iterator<ImageRecord> recordsOf(String dir, String split, ImageShape shape, Configuration conf) {
    org.apache.hadoop.fs.Path recordsDir = Storage.path(dir);
    Manifest manifest = Manifest.readChecked(recordsDir, conf).manifest();
    if (!manifest.counts().containsKey(split)) {
      throw new BadInputException("--split " + split + ": " + recordsDir + " has splits " + manifest.counts().keySet());
    }
    if (!manifest.imageShape().equals(shape)) {
      throw new BadInputException(recordsDir + " holds " + manifest.imageShape() + " images; the reader reads " + shape);
    }
    return ShardReader.read(manifest.shardPaths(recordsDir, split), conf);
  }
}
