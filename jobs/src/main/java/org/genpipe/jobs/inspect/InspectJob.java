package org.genpipe.jobs.inspect;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Random;
import java.util.TreeSet;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.genpipe.common.image.ImageGrid;
import org.genpipe.common.image.Images;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.io.Storage;
import org.genpipe.common.records.ImageRecord;
import org.genpipe.common.records.Manifest;
import org.genpipe.common.records.ShardReader;

/**
 * Reads a records folder's manifest and draws a seeded random sample of one split as a PNG grid,
 * each image captioned with its class name or text (pairs: label map beside photo).
 */
public final class InspectJob {
  private InspectJob() {}

  public record Result(Manifest manifest, String summary, Path grid, List<ImageRecord> sample) {}

  public static Result run(String records, String split, int count, long seed, String grid, Configuration conf)
      throws IOException {
    if (count <= 0) {
      throw new BadInputException("--count must be > 0, got " + count);
    }
    Path dir = Storage.path(records);
    Manifest m = Manifest.read(dir, conf);
    String s = split != null ? split : m.counts().keySet().iterator().next();
    if (!m.counts().containsKey(s)) {
      throw new BadInputException("split '" + s + "' not in " + dir + "; it has " + m.counts().keySet());
    }
    long total = m.counts().get(s);
    List<ImageRecord> sample = sample(m, dir, s, Math.min(count, total), seed, conf);
    ImageGrid g = new ImageGrid((int) Math.ceil(Math.sqrt(Math.max(1, sample.size()))), 64);
    for (ImageRecord r : sample) {
      g.add(tile(r), caption(m, r));
    }
    Path out = Storage.path(grid);
    if (!sample.isEmpty()) {
      Storage.writeAtomically(out, Images.encodePng(g.render()), conf);
    }
    return new Result(m, ManifestSummary.describe(m), sample.isEmpty() ? null : out, sample);
  }

  /** {@code n} distinct rows of a split, chosen by a seeded generator, in storage order. */
  static List<ImageRecord> sample(Manifest m, Path dir, String split, long n, long seed, Configuration conf) {
    long total = m.counts().get(split);
    Random rnd = new Random(seed);
    TreeSet<Long> rows = new TreeSet<>();
    while (rows.size() < n) {
      rows.add((long) (rnd.nextDouble() * total));
    }
    List<ImageRecord> out = new ArrayList<>();
    Iterator<ImageRecord> it = ShardReader.read(m.shardPaths(dir, split), conf);
    long index = 0;
    for (long want : rows) {
      while (index < want) {
        it.next();
        index++;
      }
      out.add(it.next());
      index++;
    }
    return out;
  }

  private static BufferedImage tile(ImageRecord r) {
    BufferedImage image = Images.fromHwc(r.image(), r.shape());
    if (r.labelMap() == null) {
      return image;
    }
    BufferedImage map = Images.fromHwc(r.labelMap(), r.shape());
    BufferedImage both = new BufferedImage(r.width() * 2, r.height(), BufferedImage.TYPE_INT_RGB);
    both.getGraphics().drawImage(map, 0, 0, null);
    both.getGraphics().drawImage(image, r.width(), 0, null);
    return both;
  }

  private static String caption(Manifest m, ImageRecord r) {
    if (r.text() != null) {
      return r.text();
    }
    if (r.label() != null) {
      return r.label() < m.classes().size() ? m.classes().get(r.label()) : String.valueOf(r.label());
    }
    return r.id();
  }
}
