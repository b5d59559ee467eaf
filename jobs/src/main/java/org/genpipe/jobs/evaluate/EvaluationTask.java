package org.genpipe.jobs.evaluate;

import java.io.Serializable;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.apache.hadoop.fs.Path;
import org.genpipe.common.io.HadoopConf;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.MinibatchIterator;
import org.genpipe.common.records.PixelRange;
import org.genpipe.common.records.ShardReader;
import org.genpipe.models.GenerativeModel;
import org.genpipe.models.ModelFactory;
import org.genpipe.models.ModelState;
import org.genpipe.models.Reconstructing;
import org.genpipe.models.nn.Noise;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * What every evaluation task needs (one broadcast per evaluation), and the work of one {@link Item}:
 * features of a reference shard (and of the model's reconstructions of it), or of one chunk of
 * generated samples. Sample {@code i}'s noise depends only on the seed and {@code i}'s chunk, so the
 * samples are the same whatever the number of executors or partitions.
 */
record EvaluationTask(String jobId, ModelFactory factory, ModelState state, FeatureExtractor.Spec extractor,
    HadoopConf conf, long seed, int batchSize, int kidMax) implements Serializable {

  /** Generated samples per chunk (a chunk's noise comes from its own seed). */
  static final int CHUNK = 500;
  private static final long GENERATE_SALT = 0x4556414c47454eL;

  /**
   * One unit of work: a reference shard ({@code shard} set; its images are samples {@code start..}
   * of the reference set) or a chunk of generated samples ({@code chunk} >= 0).
   */
  record Item(String shard, boolean reference, boolean reconstruct, long chunk, long start, long count)
      implements Serializable {
    static Item shard(Path shard, long start, long rows, boolean reference, boolean reconstruct) {
      return new Item(shard.toString(), reference, reconstruct, -1, start, rows);
    }

    static Item chunk(long chunk, long total) {
      long start = chunk * CHUNK;
      return new Item(null, false, false, chunk, start, Math.min(CHUNK, total - start));
    }
  }

  /** A model and an extractor built on an executor, reused by its later tasks of the same job. */
  private record Tools(GenerativeModel model, FeatureExtractor extractor) {}

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
      GenerativeModel model = factory.create();
      model.loadState(state);
      t = new Tools(model, extractor.open(conf.get()));
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
  private static org.genpipe.models.Condition balancedLabels(org.genpipe.models.GenerativeModel model, long first,
      int n) {
    int k = model.classCount();
    if (k == 0) {
      return null;
    }
    int[] labels = new int[n];
    for (int i = 0; i < n; i++) {
      labels[i] = (int) ((first + i) % k);
    }
    return org.genpipe.models.Condition.ofLabels(labels);
  }

  private void readShard(Item item, Tools tools, FeatureSets into) {
    MinibatchIterator batches = new MinibatchIterator(
        ShardReader.read(List.of(new Path(item.shard())), conf.get()), batchSize, PixelRange.ZERO_ONE);
    long offset = item.start();
    while (batches.hasNext()) {
      Minibatch b = batches.next();
      INDArray images = b.images();
      if (item.reference()) {
        into.add(FeatureSets.Kind.REFERENCE, offset, tools.extractor().features(images), kidMax);
      }
      if (item.reconstruct()) {
        INDArray input = tools.model().pixelRange() == PixelRange.ZERO_ONE ? images : images.mul(2).subi(1);
        INDArray rec = ((Reconstructing) tools.model()).reconstruct(input);
        into.add(FeatureSets.Kind.RECONSTRUCTED, offset, tools.extractor().features(rec), kidMax);
      }
      offset += b.size();
    }
  }
}
