package org.genpipe.jobs.evaluate;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.genpipe.common.io.Storage;

/**
 * A network the evaluation trains for itself (the domain classifier, the CAPTCHA reader), kept under
 * the evaluation cache as {@code <dir>/<name>.gpms} (its state) beside {@code <name>.json} (what it
 * was trained on and how well it does), each written atomically, the info last.
 */
final class ModelCache {
  private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  /** A cached network: its state and its info. */
  record Entry<I>(byte[] state, I info) {}

  private ModelCache() {}

  /** The entry in {@code dir}, or null when none was written (or only half of one). */
  static <I> Entry<I> read(Path dir, String name, Class<I> infoType, Configuration conf) throws IOException {
    Path weights = new Path(dir, name + ".gpms");
    Path infoFile = new Path(dir, name + ".json");
    if (!Storage.exists(infoFile, conf) || !Storage.exists(weights, conf)) {
      return null;
    }
    I info = JSON.readValue(Storage.readString(infoFile, conf), infoType);
    try (var in = Storage.fs(weights, conf).open(weights)) {
      return new Entry<>(in.readAllBytes(), info);
    }
  }

  static void write(Path dir, String name, byte[] state, Object info, Configuration conf) throws IOException {
    Storage.writeAtomically(new Path(dir, name + ".gpms"), state, conf);
    Storage.writeAtomically(new Path(dir, name + ".json"), JSON.writeValueAsString(info), conf);
  }
}
