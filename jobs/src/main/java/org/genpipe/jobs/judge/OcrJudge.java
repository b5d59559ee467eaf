package org.genpipe.jobs.judge;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.io.Storage;
import org.genpipe.common.records.ImageShape;
import org.genpipe.common.records.Manifest;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.MinibatchIterator;
import org.genpipe.common.records.PixelRange;
import org.genpipe.common.records.ShardReader;
import org.genpipe.jobs.checkpoint.Checkpoint;
import org.genpipe.models.ModelState;
import org.genpipe.models.nn.OptimizerSettings;
import org.genpipe.models.reader.CaptchaReader;
import org.genpipe.models.reader.CaptchaReaderSettings;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The judge of text-conditioned samples: a {@link CaptchaReader} that reads each generated image,
 * whose reading is compared with the text it was drawn for. Either a reader checkpoint the user
 * names ({@code evaluate.reader}) or one trained on the records' train split, once per (records
 * manifest, settings, seed), and cached under the evaluation cache like the domain classifier.
 * Travels to the executors as its settings and weights.
 *
 * @param source where the reader comes from (a checkpoint, or the cache folder it was trained into)
 * @param heldOutSequenceAccuracy share of held-out real records it reads exactly: the ceiling of the
 *     generated samples' score
 */
public record OcrJudge(ImageShape shape, CaptchaReaderSettings settings, byte[] state, String source,
    double heldOutSequenceAccuracy, long heldOutRecords) implements FeatureExtractor.Spec {
  public static final String NAME = "reader";
  private static final Logger LOG = LoggerFactory.getLogger(OcrJudge.class);
  private static final int ACCURACY_SAMPLE = 2000;
  private static final int BATCH = 64;

  /** What the cache keeps beside the weights. */
  record Info(String key, String manifestSha256, ImageShape shape, CaptchaReaderSettings settings, long seed,
      long steps, String trainSplit, String heldOutSplit, double heldOutSequenceAccuracy, long heldOutRecords) {}

  // as the evaluation's feature extractor for CAPTCHAs (evaluate.extractor: reader): the reader's
  // frame features averaged over the frames, the metrics named *_reader_*

  @Override
  public String name() {
    return NAME;
  }

  /** Names the weights (the reference statistics' cache key): a digest of the reader's state. */
  @Override
  public String id() {
    try {
      return NAME + "-" + java.util.HexFormat.of().formatHex(
          java.security.MessageDigest.getInstance("SHA-256").digest(state)).substring(0, 16);
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public String resize() {
    return "none (native " + shape.height() + "x" + shape.width() + "x" + shape.channels() + ")";
  }

  @Override
  public int dim() {
    return 4 * settings.width();
  }

  @Override
  public FeatureExtractor open(Configuration conf) {
    CaptchaReader r = reader();
    return new FeatureExtractor() {
      @Override
      public int dim() {
        return r.featureSize();
      }

      @Override
      public INDArray features(INDArray images) {
        return r.features(images);
      }
    };
  }

  @Override
  public java.util.Map<String, String> protocol() {
    java.util.Map<String, String> m = FeatureExtractor.Spec.super.protocol();
    m.put("reader", source);
    m.put("held_out_sequence_accuracy", String.format("%.4f", heldOutSequenceAccuracy));
    return m;
  }

  /** A reader built afresh from the weights (the caller closes it). */
  public CaptchaReader reader() {
    CaptchaReader r = new CaptchaReader(settings, shape, 0);
    r.loadState(ModelState.fromBytes(state, source));
    return r;
  }

  /** The reader's settings when the evaluation trains one for texts over {@code alphabet} of up to {@code maxLength}. */
  static CaptchaReaderSettings trainedSettings(String alphabet, int maxLength, long steps) {
    return new CaptchaReaderSettings(alphabet, maxLength, 32, 4, steps / 2, steps - steps / 2,
        OptimizerSettings.adam(0.002, 0.9, 0.999));
  }

  /**
   * The judge for a model drawing texts over {@code alphabet} of up to {@code maxLength} characters on
   * these records, read on {@code split}: the captcha-reader checkpoint or run {@code reader} when
   * given (blank: none), else read from the cache or trained for {@code readerSteps} and cached.
   */
  public static OcrJudge obtain(String reader, int readerSteps, String split, String alphabet, int maxLength,
      Path recordsDir, Manifest manifest, String manifestSha, long seed, Path cacheDir, Configuration conf,
      boolean showProgress) {
    ImageShape shape = manifest.imageShape();
    List<Path> heldOut = manifest.shardPaths(recordsDir, split);
    if (reader != null && !reader.isBlank()) {
      Checkpoint.Loaded c = Checkpoint.resolve(reader, conf);
      try (CaptchaReader r = c.captchaReader("evaluate.reader")) {
        if (!r.imageShape().equals(shape)) {
          throw new BadInputException("evaluate.reader " + c.dir() + " reads " + r.imageShape() + " images; the"
              + " records hold " + shape);
        }
        CaptchaReaderSettings s = c.config().requireModel().captchaReader();
        for (char ch : alphabet == null ? new char[0] : alphabet.toCharArray()) {
          if (s.alphabet().indexOf(ch) < 0) {
            throw new BadInputException("evaluate.reader " + c.dir() + " reads '" + s.alphabet() + "', without '" + ch
                + "', which the model draws (its alphabet '" + alphabet + "')");
          }
        }
        double[] acc = accuracy(r, heldOut, conf);
        return new OcrJudge(shape, s, c.state().toBytes(), c.dir().toString(), acc[0], (long) acc[1]);
      }
    }
    CaptchaReaderSettings settings = trainedSettings(alphabet, maxLength, readerSteps);
    CaptchaReader.checkShape(settings, shape, recordsDir.toString());
    String key = Digests.shortSha(manifestSha + "|" + settings + "|" + readerSteps + "|" + seed + "|" + shape);
    Path dir = new Path(cacheDir, "reader-" + key);
    try {
      ModelCache.Entry<Info> cached = ModelCache.read(dir, "reader", Info.class, conf);
      if (cached != null) {
        LOG.info("captcha reader from cache {}", dir);
        return new OcrJudge(shape, settings, cached.state(), dir.toString(), cached.info().heldOutSequenceAccuracy(),
            cached.info().heldOutRecords());
      }
      String trainSplit = manifest.counts().containsKey("train") ? "train" : manifest.counts().keySet().iterator().next();
      try (CaptchaReader r = new CaptchaReader(settings, shape, seed)) {
        ModelCache.train("captcha reader", manifest.shardPaths(recordsDir, trainSplit), BATCH, readerSteps, seed,
            conf, showProgress, (batch, step) -> {
              Map<String, Double> m = r.trainStep(batch, step, seed + step);
              return String.format("loss %.4f seq_acc %.3f", m.get("loss"), m.get("seq_acc"));
            });
        double[] acc = accuracy(r, heldOut, conf);
        byte[] bytes = r.state().toBytes();
        Info info = new Info(key, manifestSha, shape, settings, seed, readerSteps, trainSplit, split, acc[0],
            (long) acc[1]);
        ModelCache.write(dir, "reader", bytes, info, conf);
        LOG.info("captcha reader trained ({} steps): sequence accuracy {} on {} {} records; cached in {}",
            readerSteps, String.format("%.4f", acc[0]), (long) acc[1], split, dir);
        return new OcrJudge(shape, settings, bytes, dir.toString(), acc[0], (long) acc[1]);
      }
    } catch (IOException e) {
      throw Storage.unreachable(dir, e);
    }
  }

  /** {sequence accuracy, records read} on up to {@value #ACCURACY_SAMPLE} held-out records. */
  private static double[] accuracy(CaptchaReader r, List<Path> shards, Configuration conf) {
    MinibatchIterator it = new MinibatchIterator(ShardReader.read(shards, conf), 250, PixelRange.ZERO_ONE);
    List<String> read = new ArrayList<>();
    List<String> truth = new ArrayList<>();
    while (it.hasNext() && read.size() < ACCURACY_SAMPLE) {
      Minibatch b = it.next();
      if (b.texts() == null) {
        throw new BadInputException("record " + b.ids().get(0) + " has no text: the reader is judged on records with"
            + " texts (CAPTCHA records)");
      }
      read.addAll(r.read(b.images()));
      truth.addAll(b.texts());
    }
    return new double[] {read.isEmpty() ? Double.NaN : CaptchaReader.sequenceAccuracy(read, truth), read.size()};
  }
}
