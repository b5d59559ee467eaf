package org.genpipe.jobs;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;

/** Reading what a test run left: MLflow metric files, records, GIF frames. */
public final class RunFiles {
  private RunFiles() {}

  public static double meanValue(List<String> metricLines) {
    return metricLines.stream().mapToDouble(l -> Double.parseDouble(l.split(" ")[1])).average().orElseThrow();
  }

  public static List<org.genpipe.common.records.ImageRecord> readAll(Path recordsDir, String split) throws IOException {
    var conf = new org.apache.hadoop.conf.Configuration();
    var dir = new org.apache.hadoop.fs.Path(recordsDir.toUri());
    var manifest = org.genpipe.common.records.Manifest.read(dir, conf);
    List<org.genpipe.common.records.ImageRecord> out = new ArrayList<>();
    org.genpipe.common.records.ShardReader.read(manifest.shardPaths(dir, split), conf).forEachRemaining(out::add);
    return out;
  }

  public static int frames(Path gif) throws IOException {
    ImageReader reader = ImageIO.getImageReadersByFormatName("gif").next();
    try (ImageInputStream in = ImageIO.createImageInputStream(gif.toFile())) {
      reader.setInput(in);
      return reader.getNumImages(true);
    } finally {
      reader.dispose();
    }
  }
}
