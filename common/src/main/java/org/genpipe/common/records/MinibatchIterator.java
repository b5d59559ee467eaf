package org.genpipe.common.records;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Random;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Turns a stream of records (a Spark partition, or {@link ShardReader#read} over a file list) into
 * minibatches of ND4J arrays, without materialising the stream. An optional shuffle buffer (seeded)
 * mixes records across shard boundaries.
 */
public final class MinibatchIterator implements Iterator<Minibatch> {
  private final Iterator<ImageRecord> records;
  private final int batchSize;
  private final PixelRange range;
  private final boolean dropLast;
  private final List<ImageRecord> buffer;
  private final int bufferSize;
  private final boolean shuffle;
  private final Random random;
  private ImageShape shape;

  /**
   * @param batchSize records per batch
   * @param range pixel normalisation the model needs
   * @param dropLast drop a final batch smaller than batchSize
   * @param shuffleBuffer records held for shuffling; 0 or 1 keeps the stream's order
   * @param seed seed of the shuffle
   */
  public MinibatchIterator(
      Iterator<ImageRecord> records,
      int batchSize,
      PixelRange range,
      boolean dropLast,
      int shuffleBuffer,
      long seed) {
    if (batchSize <= 0) {
      throw new IllegalArgumentException("batchSize must be > 0, got " + batchSize);
    }
    this.records = records;
    this.batchSize = batchSize;
    this.range = range;
    this.dropLast = dropLast;
    this.shuffle = shuffleBuffer > 1;
    this.bufferSize = Math.max(batchSize, shuffleBuffer);
    this.buffer = new ArrayList<>(bufferSize);
    this.random = new Random(seed);
  }

  public MinibatchIterator(Iterator<ImageRecord> records, int batchSize, PixelRange range) {
    this(records, batchSize, range, false, 0, 0L);
  }

  @Override
  public boolean hasNext() {
    fill();
    return dropLast ? buffer.size() >= batchSize : !buffer.isEmpty();
  }

  @Override
  public Minibatch next() {
    if (!hasNext()) {
      throw new NoSuchElementException();
    }
    List<ImageRecord> batch = new ArrayList<>(batchSize);
    while (batch.size() < batchSize) {
      fill();
      if (buffer.isEmpty()) {
        break;
      }
      if (shuffle) {
        // O(1) removal: move the last element into the picked slot
        int pick = random.nextInt(buffer.size());
        ImageRecord r = buffer.get(pick);
        ImageRecord last = buffer.remove(buffer.size() - 1);
        if (pick < buffer.size()) {
          buffer.set(pick, last);
        }
        batch.add(r);
      } else {
        batch.add(buffer.remove(0));
      }
    }
    return toMinibatch(batch);
  }

  private void fill() {
    while (buffer.size() < bufferSize && records.hasNext()) {
      buffer.add(records.next());
    }
  }

  private Minibatch toMinibatch(List<ImageRecord> batch) {
    int n = batch.size();
    ImageRecord first = batch.get(0);
    if (shape == null) {
      shape = first.shape();
    }
    boolean hasLabels = first.label() != null;
    boolean hasTexts = first.text() != null;
    boolean hasMaps = first.labelMap() != null;
    int per = shape.pixels();
    float[] images = new float[n * per];
    float[] maps = hasMaps ? new float[n * per] : null;
    int[] labels = hasLabels ? new int[n] : null;
    List<String> texts = hasTexts ? new ArrayList<>(n) : null;
    List<String> ids = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      ImageRecord r = batch.get(i);
      if (!r.shape().equals(shape)) {
        throw new IllegalArgumentException(
            "record " + r.id() + " has shape " + r.shape() + " but the batch has " + shape);
      }
      toChw(r.image(), images, i * per);
      if (hasMaps) {
        toChw(r.labelMap(), maps, i * per);
      }
      if (hasLabels) {
        labels[i] = r.label();
      }
      if (hasTexts) {
        texts.add(r.text());
      }
      ids.add(r.id());
    }
    long[] nchw = {n, shape.channels(), shape.height(), shape.width()};
    return new Minibatch(
        Nd4j.create(images, nchw, 'c'),
        hasMaps ? Nd4j.create(maps, nchw, 'c') : null,
        hasLabels ? Nd4j.createFromArray(labels).castTo(DataType.INT32) : null,
        texts,
        ids);
  }

  /** HWC uint8 to CHW float at {@code out[offset..]}. */
  private void toChw(byte[] hwc, float[] out, int offset) {
    int c = shape.channels();
    int hw = shape.height() * shape.width();
    if (c == 1) {
      for (int p = 0; p < hw; p++) {
        out[offset + p] = range.toFloat(hwc[p] & 0xFF);
      }
      return;
    }
    for (int p = 0; p < hw; p++) {
      int src = p * c;
      for (int ch = 0; ch < c; ch++) {
        out[offset + ch * hw + p] = range.toFloat(hwc[src + ch] & 0xFF);
      }
    }
  }

}
