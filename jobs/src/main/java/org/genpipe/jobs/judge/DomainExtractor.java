package org.genpipe.jobs.judge;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.io.Storage;
import org.genpipe.common.records.ImageRecord;
import org.genpipe.common.records.ImageShape;
import org.genpipe.common.records.Manifest;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.MinibatchIterator;
import org.genpipe.common.records.PixelRange;
import org.genpipe.common.records.ShardReader;
import org.genpipe.models.ModelState;
import org.genpipe.models.classify.DomainClassifier;
import org.genpipe.models.classify.DomainClassifierSettings;
import org.genpipe.models.classify.Targets;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The offline feature extractor: the penultimate layer of a {@link DomainClassifier} trained on the
 * records' training split (class labels, the characters of CAPTCHA texts, or the palette classes of
 * the label-map pixels: a segmenter of the photos). Trained once per
 * (records manifest, classifier settings, seed) on the driver and cached under the evaluation cache.
 */
public final class DomainExtractor implements FeatureExtractor.Spec {
  private static final long serialVersionUID = 1L;
  private static final Logger LOG = LoggerFactory.getLogger(DomainExtractor.class);
  public static final String NAME = "domain";
  private static final int ACCURACY_SAMPLE = 2000;

  private final ImageShape shape;
  private final Targets targets;
  private final DomainClassifierSettings settings;
  private final byte[] state;
  private final String key;
  private final double heldOutAccuracy;

  private DomainExtractor(ImageShape shape, Targets targets, DomainClassifierSettings settings, byte[] state,
      String key, double heldOutAccuracy) {
    this.shape = shape;
    this.targets = targets;
    this.settings = settings;
    this.state = state;
    this.key = key;
    this.heldOutAccuracy = heldOutAccuracy;
  }

  /** What the cache keeps beside the weights. */
  record Info(String key, String manifestSha256, ImageShape shape, Targets targets, DomainClassifierSettings settings,
      long seed, String trainSplit, String heldOutSplit, double heldOutAccuracy) {}

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public String id() {
    return NAME + "-" + key;
  }

  @Override
  public String resize() {
    return "none (native " + shape.height() + "x" + shape.width() + "x" + shape.channels() + ")";
  }

  @Override
  public int dim() {
    return settings.featureSize();
  }

  /** Share of held-out positions (labels or characters) the classifier gets right. */
  public double heldOutAccuracy() {
    return heldOutAccuracy;
  }

  public Targets targets() {
    return targets;
  }

  /** The trained classifier (features and predictions), built afresh from the cached weights. */
  public DomainClassifier classifier() {
    DomainClassifier c = new DomainClassifier(shape, targets, settings, 0);
    c.loadState(ModelState.fromBytes(state, id()));
    return c;
  }

  @Override
  public FeatureExtractor open(Configuration conf) {
    DomainClassifier c = classifier();
    return new FeatureExtractor() {
      @Override
      public int dim() {
        return settings.featureSize();
      }

      @Override
      public INDArray features(INDArray images) {
        long[] s = images.shape();
        if (s.length != 4 || s[1] != shape.channels() || s[2] != shape.height() || s[3] != shape.width()) {
          throw new BadInputException("the domain classifier reads [N, " + shape.channels() + ", " + shape.height()
              + ", " + shape.width() + "] images, got " + java.util.Arrays.toString(s));
        }
        return c.features(images);
      }
    };
  }

  /**
   * The classifier for these records: read from {@code cacheDir} when trained before with the same
   * settings and seed, else trained on the {@code train} split (or the first split) and cached.
   */
  public static DomainExtractor obtain(Path recordsDir, Manifest manifest, String manifestSha,
      DomainClassifierSettings settings, long seed, String heldOutSplit, Path cacheDir, Configuration conf,
      boolean showProgress) {
    String key = Digests.shortSha(manifestSha + "|" + settings + "|" + seed + "|" + manifest.imageShape());
    Path dir = new Path(cacheDir, "domain-" + key);
    try {
      ModelCache.Entry<Info> cached = ModelCache.read(dir, "classifier", Info.class, conf);
      if (cached != null) {
        LOG.info("domain classifier from cache {}", dir);
        Info info = cached.info();
        return new DomainExtractor(info.shape(), info.targets(), settings, cached.state(), key, info.heldOutAccuracy());
      }
      String trainSplit = manifest.counts().containsKey("train") ? "train" : manifest.counts().keySet().iterator().next();
      Targets targets = targetsOf(recordsDir, manifest, trainSplit, conf);
      DomainClassifier c = new DomainClassifier(manifest.imageShape(), targets, settings, seed);
      ModelCache.train("domain classifier", manifest.shardPaths(recordsDir, trainSplit), settings.batchSize(),
          settings.steps(), seed, conf, showProgress, (batch, step) -> {
            Map<String, Double> m = c.trainStep(batch, step);
            return String.format("loss %.4f acc %.3f", m.get("loss"), m.get("accuracy"));
          });
      double accuracy = accuracy(c, manifest.shardPaths(recordsDir, heldOutSplit), conf);
      byte[] bytes = c.state().toBytes();
      Info info = new Info(key, manifestSha, manifest.imageShape(), targets, settings, seed, trainSplit, heldOutSplit,
          accuracy);
      ModelCache.write(dir, "classifier", bytes, info, conf);
      LOG.info("domain classifier trained ({} steps, {}): {} accuracy {} on {}", settings.steps(), targets,
          String.format("%.4f", accuracy), heldOutSplit, dir);
      return new DomainExtractor(manifest.imageShape(), targets, settings, bytes, key, accuracy);
    } catch (IOException e) {
      throw Storage.unreachable(dir, e);
    }
  }

  private static Targets targetsOf(Path recordsDir, Manifest manifest, String split, Configuration conf) {
    if (manifest.classes() != null && manifest.classes().size() >= 2) {
      return Targets.ofClasses(manifest.classes().size());
    }
    List<String> texts = new ArrayList<>();
    Iterator<ImageRecord> it = ShardReader.read(manifest.shardPaths(recordsDir, split), conf);
    while (it.hasNext()) {
      ImageRecord r = it.next();
      if (r.labelMap() != null) {
        return Targets.ofLabelMaps(r.shape().height(), r.shape().width());
      }
      if (r.text() == null) {
        break;
      }
      texts.add(r.text());
    }
    if (texts.isEmpty()) {
      throw new BadInputException(recordsDir + ": the records have neither class labels, texts nor label maps, which the domain"
          + " extractor learns; use evaluate.extractor: inception");
    }
    return Targets.ofTexts(texts);
  }

  private static double accuracy(DomainClassifier c, List<Path> shards, Configuration conf) {
    MinibatchIterator it = new MinibatchIterator(ShardReader.read(shards, conf), 250, PixelRange.ZERO_ONE);
    double right = 0;
    long n = 0;
    while (it.hasNext() && n < ACCURACY_SAMPLE) {
      Minibatch b = it.next();
      right += c.accuracy(b) * b.size();
      n += b.size();
    }
    return n == 0 ? Double.NaN : right / n;
  }

  @Override
  public Map<String, String> protocol() {
    Map<String, String> m = FeatureExtractor.Spec.super.protocol();
    m.put("targets", targets.toString());
    m.put("held_out_accuracy", String.format("%.4f", heldOutAccuracy));
    return m;
  }
}
