package org.genpipe.jobs.evaluate;

import java.io.Serializable;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.apache.hadoop.fs.Path;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.io.HadoopConf;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.MinibatchIterator;
import org.genpipe.common.records.PixelRange;
import org.genpipe.common.records.ShardReader;
import org.genpipe.jobs.judge.DomainExtractor;
import org.genpipe.jobs.judge.FeatureExtractor;
import org.genpipe.jobs.judge.OcrJudge;
import org.genpipe.models.Condition;
import org.genpipe.models.GenerativeModel;
import org.genpipe.models.ImageConditioned;
import org.genpipe.models.ModelFactory;
import org.genpipe.models.ModelState;
import org.genpipe.models.Reconstructing;
import org.genpipe.models.classify.DomainClassifier;
import org.genpipe.models.classify.Targets;
import org.genpipe.models.nn.Noise;
import org.genpipe.models.reader.CaptchaReader;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * What every evaluation task needs (one broadcast per evaluation), and the work of one {@link Item}:
 * features of a reference shard (and of the model's output for each of its records: the
 * reconstruction of an autoencoder, the translation of an image-to-image model, with the paired
 * metrics and segmentation scores of the translations), or of one chunk of generated samples.
 * Sample {@code i}'s noise depends only on the seed and {@code i}'s chunk (a translation's on the
 * seed and its record's index), so the samples are the same whatever the number of executors or
 * partitions.
 *
 * @param segmenter the classifier whose per-pixel predictions score translated photos, or null
 * @param judge the reader that reads text-conditioned samples, or null
 */
record EvaluationTask(String jobId, ModelFactory factory, ModelState state, FeatureExtractor.Spec extractor,
    DomainExtractor segmenter, OcrJudge judge, HadoopConf conf, long seed, int batchSize, int kidMax)
    implements Serializable {

  /** Generated samples per chunk (a chunk's noise comes from its own seed). */
  static final int CHUNK = 500;
  private static final long GENERATE_SALT = 0x4556414c47454eL;
  private static final long TRANSLATE_SALT = 0x5452414e534cL;
  private static final long TEXT_SALT = 0x54455854L;
  private static final long SAME_TEXT_SALT = 0x53414d45L;
  /** Records (the first, by index) whose text is drawn {@value #SAME_TEXT_SAMPLES} more times for the diversity measure. */
  static final int SAME_TEXT_RECORDS = 50;
  static final int SAME_TEXT_SAMPLES = 4;

  /**
   * One unit of work: {@code count} records of a reference shard after its first {@code skip} ({@code
   * shard} set; their images are samples {@code start..} of the reference set; {@code modelOutputs}:
   * also the model's output for each record) or a chunk of generated samples ({@code chunk} >= 0).
   */
  record Item(String shard, boolean reference, boolean modelOutputs, long chunk, long start, long count, long skip)
      implements Serializable {
    /**
     * A shard of {@code rows} records as parts of at most CHUNK (500) records (the model's work per record,
     * a translation or a drawn text, spreads over the executors even when the split is one shard).
     */
    static List<Item> shard(Path shard, long start, long rows, boolean reference, boolean modelOutputs) {
      List<Item> parts = new java.util.ArrayList<>();
      for (long skip = 0; skip < rows; skip += CHUNK) {
        parts.add(new Item(shard.toString(), reference, modelOutputs, -1, start + skip, Math.min(CHUNK, rows - skip),
            skip));
      }
      return parts;
    }

    static Item chunk(long chunk, long total) {
      long start = chunk * CHUNK;
      return new Item(null, false, false, chunk, start, Math.min(CHUNK, total - start), 0);
    }
  }

  /** A model, an extractor, the segmenter and the reader built on an executor, reused by its later tasks of the same job. */
  private record Tools(GenerativeModel model, FeatureExtractor extractor, DomainClassifier segmenter,
      CaptchaReader reader) {}

  private static final Map<String, ConcurrentLinkedQueue<Tools>> POOL = new ConcurrentHashMap<>();

  /** Drops this job's models and extractors from this JVM (the driver's, in local mode). */
  static void release(String jobId) {
    POOL.remove(jobId);
  }

  void run(Item item, FeatureSets into) {
    Tools tools = borrow();
    try {
      if (item.shard() == null) {
        generate(item, tools, into);
      } else {
        readShard(item, tools, into);
      }
    } finally {
      POOL.get(jobId).add(tools);
    }
  }

  private Tools borrow() {
    POOL.keySet().removeIf(k -> !k.equals(jobId)); // an earlier evaluation's tools are not reused
    Tools t = POOL.computeIfAbsent(jobId, k -> new ConcurrentLinkedQueue<>()).poll();
    if (t == null) {
      GenerativeModel model = (GenerativeModel) factory.create(); // EvaluateJob checked it generates
      model.loadState(state);
      t = new Tools(model, extractor.open(conf.get()), segmenter == null ? null : segmenter.classifier(),
          judge == null ? null : judge.reader());
    }
    return t;
  }

  private void generate(Item item, Tools tools, FeatureSets into) {
    long chunkSeed = Noise.mix(seed, GENERATE_SALT, item.chunk());
    for (long done = 0, b = 0; done < item.count(); b++) {
      int n = (int) Math.min(batchSize, item.count() - done);
      INDArray images = tools.model().generate(n, Noise.mix(chunkSeed, b, 0), balancedLabels(tools.model(),
          item.start() + done, n));
      into.add(FeatureSets.Kind.GENERATED, item.start() + done, tools.extractor().features(images), kidMax);
      done += n;
    }
  }

  /** Conditional models: sample j of the evaluation generates class j mod K (classes equally often). */
  private static Condition balancedLabels(GenerativeModel model, long first,
      int n) {
    int k = model.classCount();
    if (k == 0) {
      return null;
    }
    int[] labels = new int[n];
    for (int i = 0; i < n; i++) {
      labels[i] = (int) ((first + i) % k);
    }
    return Condition.ofLabels(labels);
  }

  private void readShard(Item item, Tools tools, FeatureSets into) {
    java.util.Iterator<org.genpipe.common.records.ImageRecord> records =
        ShardReader.read(List.of(new Path(item.shard())), conf.get());
    for (long i = 0; i < item.skip() && records.hasNext(); i++) {
      records.next();
    }
    MinibatchIterator batches = new MinibatchIterator(limit(records, item.count()), batchSize, PixelRange.ZERO_ONE);
    long offset = item.start();
    while (batches.hasNext()) {
      Minibatch b = batches.next();
      if (tools.model() instanceof ImageConditioned ic) {
        translate(b, offset, item, ic, tools, into);
      } else if (tools.model().textAlphabet() != null) {
        drawTexts(b, offset, item, tools, into);
      } else {
        INDArray images = b.images();
        if (item.reference()) {
          into.add(FeatureSets.Kind.REFERENCE, offset, tools.extractor().features(images), kidMax);
        }
        if (item.modelOutputs()) {
          INDArray rec = ((Reconstructing) tools.model()).reconstruct(toModelRange(tools.model(), images));
          into.add(FeatureSets.Kind.RECONSTRUCTED, offset, tools.extractor().features(rec), kidMax);
        }
      }
      offset += b.size();
    }
  }

  /**
   * One generated image per pair, conditioned on its condition image: features against the targets'
   * (the reference set), the paired metrics, and the segmentation scores of the generated images and
   * (the ceiling) of the real ones, against the label maps' classes.
   */
  private void translate(Minibatch b, long offset, Item item, ImageConditioned ic, Tools tools, FeatureSets into) {
    GenerativeModel model = tools.model();
    INDArray target = ic.targets(b);
    INDArray generated = model.generate(b.size(), Noise.mix(seed, TRANSLATE_SALT, offset),
        Condition.ofImages(toModelRange(model, ic.conditions(b))));
    if (item.reference()) {
      into.add(FeatureSets.Kind.REFERENCE, offset, tools.extractor().features(target), kidMax);
    }
    into.add(FeatureSets.Kind.GENERATED, offset, tools.extractor().features(generated), kidMax);
    into.addPairs(generated, target);
    Targets pixels = Targets.ofLabelMaps((int) target.size(2), (int) target.size(3));
    int[][] truth = pixels.indices(b);
    if (ic.makesLabelMaps()) {
      into.addSegmentation(FeatureSets.Kind.GENERATED, pixels.classes(), truth, pixels.pixelClasses(generated));
    } else if (tools.segmenter() != null) {
      into.addSegmentation(FeatureSets.Kind.GENERATED, pixels.classes(), truth, tools.segmenter().predict(generated));
      into.addSegmentation(FeatureSets.Kind.REAL, pixels.classes(), truth, tools.segmenter().predict(target));
    }
  }

  /**
   * One image drawn per record for the record's text: features against the real images' (the
   * reference set), and what the reader reads in the drawn and (its ceiling) in the real images.
   */
  private void drawTexts(Minibatch b, long offset, Item item, Tools tools, FeatureSets into) {
    if (b.texts() == null || b.texts().contains(null)) {
      throw new BadInputException("record " + b.ids().get(0) + " (" + item.shard() + ") has no text; a text-conditioned"
          + " model is evaluated on records with texts");
    }
    INDArray generated = tools.model().generate(b.size(), Noise.mix(seed, TEXT_SALT, offset),
        new Condition(null, b.texts(), null));
    if (item.reference()) {
      into.add(FeatureSets.Kind.REFERENCE, offset, tools.extractor().features(b.images()), kidMax);
    }
    INDArray features = tools.extractor().features(generated);
    into.add(FeatureSets.Kind.GENERATED, offset, features, kidMax);
    // diversity: the first records' texts drawn again, the spread of each text's samples
    for (int i = 0; i < b.size() && offset + i < SAME_TEXT_RECORDS; i++) {
      String text = b.texts().get(i);
      INDArray more = tools.model().generate(SAME_TEXT_SAMPLES - 1, Noise.mix(seed, SAME_TEXT_SALT, offset + i),
          new Condition(null, java.util.Collections.nCopies(SAME_TEXT_SAMPLES - 1, text), null));
      into.addSameText(org.nd4j.linalg.factory.Nd4j.concat(0, features.getRow(i, true),
          tools.extractor().features(more)));
    }
    if (tools.reader() != null) {
      into.addReadings(FeatureSets.Kind.GENERATED, tools.reader().read(generated), b.texts());
      into.addReadings(FeatureSets.Kind.REAL, tools.reader().read(b.images()), b.texts());
    }
  }

  /** The first {@code n} of {@code it}. */
  private static <T> java.util.Iterator<T> limit(java.util.Iterator<T> it, long n) {
    return new java.util.Iterator<>() {
      private long left = n;

      @Override
      public boolean hasNext() {
        return left > 0 && it.hasNext();
      }

      @Override
      public T next() {
        if (!hasNext()) {
          throw new java.util.NoSuchElementException();
        }
        left--;
        return it.next();
      }
    };
  }

  /** [0, 1] images in the model's pixel range. */
  private static INDArray toModelRange(GenerativeModel model, INDArray images) {
    return model.pixelRange() == PixelRange.ZERO_ONE ? images : images.mul(2).subi(1);
  }
}
