package org.genpipe.common.records;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Random;

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
    return Minibatch.of(batch, range);
  }

  private void fill() {
    while (buffer.size() < bufferSize && records.hasNext()) {
      buffer.add(records.next());
    }
  }

}
