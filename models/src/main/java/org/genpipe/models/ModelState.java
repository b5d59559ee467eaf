package org.genpipe.models;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A model's whole state as named flat float arrays, in a stable order: e.g. {@code vae/params},
 * {@code vae/updater}, {@code vae/bn}; a GAN has {@code G/...} and {@code D/...}. This is the unit
 * the engine averages, broadcasts and checkpoints.
 */
public final class ModelState implements Serializable {
  private static final long serialVersionUID = 1L;
  private static final int MAGIC = 0x47504d53; // "GPMS"
  private static final int VERSION = 1;

  private final LinkedHashMap<String, float[]> arrays = new LinkedHashMap<>();

  public ModelState put(String name, float[] values) {
    arrays.put(name, values);
    return this;
  }

  public float[] get(String name) {
    float[] a = arrays.get(name);
    if (a == null) {
      throw new IllegalArgumentException(
          "model state has no array '" + name + "'; it has " + arrays.keySet());
    }
    return a;
  }

  /** Reads {@code name}, checking its length. */
  public float[] get(String name, long expectedLength) {
    float[] a = get(name);
    if (a.length != expectedLength) {
      throw new IllegalArgumentException(
          "model state array '" + name + "' has " + a.length + " values, expected " + expectedLength
              + " (a checkpoint of another architecture or settings?)");
    }
    return a;
  }

  public Map<String, float[]> arrays() {
    return Collections.unmodifiableMap(arrays);
  }

  public long totalValues() {
    return arrays.values().stream().mapToLong(a -> a.length).sum();
  }

  /** Largest absolute difference to {@code other} over all arrays (names and lengths must match). */
  public double maxAbsDiff(ModelState other) {
    double max = 0;
    for (Map.Entry<String, float[]> e : arrays.entrySet()) {
      float[] b = other.get(e.getKey(), e.getValue().length);
      float[] a = e.getValue();
      for (int i = 0; i < a.length; i++) {
        max = Math.max(max, Math.abs((double) a[i] - b[i]));
      }
    }
    return max;
  }

  /** Whether every value is finite; the name of the first array that is not, else null. */
  public String firstNonFinite() {
    for (Map.Entry<String, float[]> e : arrays.entrySet()) {
      for (float v : e.getValue()) {
        if (!Float.isFinite(v)) {
          return e.getKey();
        }
      }
    }
    return null;
  }

  public byte[] toBytes() {
    try {
      ByteArrayOutputStream bytes = new ByteArrayOutputStream((int) Math.min(Integer.MAX_VALUE - 64, totalValues() * 4 + 1024));
      DataOutputStream out = new DataOutputStream(bytes);
      out.writeInt(MAGIC);
      out.writeInt(VERSION);
      out.writeInt(arrays.size());
      for (Map.Entry<String, float[]> e : arrays.entrySet()) {
        out.writeUTF(e.getKey());
        float[] a = e.getValue();
        out.writeInt(a.length);
        for (float v : a) {
          out.writeFloat(v);
        }
      }
      out.flush();
      return bytes.toByteArray();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Parses {@link #toBytes()}; {@code source} names the file in errors. */
  public static ModelState fromBytes(byte[] data, String source) {
    try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(data))) {
      if (data.length < 12 || in.readInt() != MAGIC) {
        throw new IllegalArgumentException(source + " is not a model state file (bad magic number)");
      }
      int version = in.readInt();
      if (version != VERSION) {
        throw new IllegalArgumentException(
            source + " has model state format version " + version + ", expected " + VERSION);
      }
      int n = in.readInt();
      ModelState s = new ModelState();
      for (int i = 0; i < n; i++) {
        String name = in.readUTF();
        int len = in.readInt();
        float[] a = new float[len];
        for (int j = 0; j < len; j++) {
          a[j] = in.readFloat();
        }
        s.put(name, a);
      }
      return s;
    } catch (IOException e) {
      throw new IllegalArgumentException(source + " is truncated or corrupt: " + e.getMessage(), e);
    }
  }

  @Override
  public String toString() {
    StringBuilder sb = new StringBuilder("ModelState{");
    arrays.forEach((k, v) -> sb.append(k).append('[').append(v.length).append("] "));
    return sb.append('}').toString();
  }
}
