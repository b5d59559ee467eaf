package org.genpipe.jobs.judge;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.io.Storage;
import org.genpipe.common.records.MinibatchIterator;
import org.genpipe.common.records.PixelRange;
import org.genpipe.common.records.ShardReader;

/**
 * A network the evaluation trains for itself (the domain classifier, the CAPTCHA reader), kept under
 * the evaluation cache as {@code <dir>/<name>.gpms} (its state) beside {@code <name>.json} (what it
 * was trained on and how well it does), each written atomically, the info last; and the loop that
 * trains one.
 */
public final class ModelCache {
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

  /** One training step of such a network on a batch at a step number; returns the message its progress bar shows. */
  @FunctionalInterface
  interface Step {
    String run(org.genpipe.common.records.Minibatch batch, long step);
  }

  /**
   * Trains a network for {@code steps} steps on shuffled batches of {@code shards} (epoch e shuffled
   * with seed + e), with a progress bar named {@code what} when {@code showProgress}.
   */
  static void train(String what, List<Path> shards, int batchSize, long steps, long seed, Configuration conf,
      boolean showProgress, Step step) {
    me.tongfei.progressbar.ProgressBar bar = showProgress ? new me.tongfei.progressbar.ProgressBarBuilder()
        .setTaskName(what).setInitialMax(steps).setUnit(" steps", 1)
        .setStyle(me.tongfei.progressbar.ProgressBarStyle.ASCII).showSpeed().setUpdateIntervalMillis(500)
        .continuousUpdate().build() : null;
    try {
      long done = 0;
      for (int epoch = 0; done < steps; epoch++) {
        MinibatchIterator batches = new MinibatchIterator(ShardReader.read(shards, conf), batchSize,
            PixelRange.ZERO_ONE, true, 8192, seed + epoch);
        if (!batches.hasNext()) {
          throw new BadInputException("the " + what + "'s training split has fewer than " + batchSize + " records"
              + " (its batch size)");
        }
        while (batches.hasNext() && done < steps) {
          String message = step.run(batches.next(), done);
          done++;
          if (bar != null) {
            bar.stepTo(done);
            bar.setExtraMessage(message);
          }
        }
      }
    } finally {
      if (bar != null) {
        bar.close();
      }
    }
  }

  static void write(Path dir, String name, byte[] state, Object info, Configuration conf) throws IOException {
    Storage.writeAtomically(new Path(dir, name + ".gpms"), state, conf);
    Storage.writeAtomically(new Path(dir, name + ".json"), JSON.writeValueAsString(info), conf);
  }
}
