package org.genpipe.common.records;

import java.util.ArrayList;
import java.util.List;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A batch of records as ND4J arrays.
 *
 * @param images [N, C, H, W] float, in the batch's {@link PixelRange}
 * @param labelMaps [N, C, H, W] float paired inputs (Pix2Pix), or null
 * @param labels [N] int32 class indices, or null where the data set has no classes
 * @param texts the CAPTCHA texts, or null
 * @param ids record ids, in batch order
 */
public record Minibatch(
    INDArray images, INDArray labelMaps, INDArray labels, List<String> texts, List<String> ids) {

  public int size() {
    return ids.size();
  }

  /** Assembles records of one shape into a batch, pixels scaled to {@code range}. */
  public static Minibatch of(List<ImageRecord> batch, PixelRange range) {
    if (batch.isEmpty()) {
      throw new IllegalArgumentException("a minibatch needs at least one record");
    }
    int n = batch.size();
    ImageRecord first = batch.get(0);
    ImageShape shape = first.shape();
    boolean hasLabels = first.label() != null;
    boolean hasTexts = first.text() != null;
    boolean hasMaps = first.labelMap() != null;
    int per = shape.pixels();
    long[] nchw = {n, shape.channels(), shape.height(), shape.width()};
    // written record by record into the arrays' native memory: a batch-sized float[] (200 KB for 64
    // Fashion-MNIST images) as garbage every step was most of a training worker's garbage, and its collections
    INDArray images = Nd4j.createUninitialized(DataType.FLOAT, nchw, 'c');
    INDArray maps = hasMaps ? Nd4j.createUninitialized(DataType.FLOAT, nchw, 'c') : null;
    java.nio.FloatBuffer imageValues = images.data().asNioFloat();
    java.nio.FloatBuffer mapValues = hasMaps ? maps.data().asNioFloat() : null;
    float[] one = new float[per];
    int[] labels = hasLabels ? new int[n] : null;
    List<String> texts = hasTexts ? new ArrayList<>(n) : null;
    List<String> ids = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      ImageRecord r = batch.get(i);
      if (!r.shape().equals(shape)) {
        throw new IllegalArgumentException(
            "record " + r.id() + " has shape " + r.shape() + " but the batch has " + shape);
      }
      toChw(r.image(), one, shape, range);
      imageValues.put(i * per, one);
      if (hasMaps) {
        toChw(r.labelMap(), one, shape, range);
        mapValues.put(i * per, one);
      }
      if (hasLabels) {
        labels[i] = r.label();
      }
      if (hasTexts) {
        texts.add(r.text());
      }
      ids.add(r.id());
    }
    return new Minibatch(
        images,
        maps,
        hasLabels ? Nd4j.createFromArray(labels).castTo(DataType.INT32) : null,
        texts,
        ids);
  }

  /** HWC uint8 to CHW float in {@code out}. */
  private static void toChw(byte[] hwc, float[] out, ImageShape shape, PixelRange range) {
    int c = shape.channels();
    int hw = shape.height() * shape.width();
    if (c == 1) {
      for (int p = 0; p < hw; p++) {
        out[p] = range.toFloat(hwc[p] & 0xFF);
      }
      return;
    }
    for (int p = 0; p < hw; p++) {
      int src = p * c;
      for (int ch = 0; ch < c; ch++) {
        out[ch * hw + p] = range.toFloat(hwc[src + ch] & 0xFF);
      }
    }
  }
}
