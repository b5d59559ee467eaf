package org.genpipe.models;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
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

  // not final: readObject sets it (serialised as the GPMS bytes, see writeObject)
  private transient LinkedHashMap<String, float[]> arrays = new LinkedHashMap<>();

  public ModelState put(String name, float[] values) {
    arrays.put(name, values);
    return this;
  }

  /**
   * The array named {@code name} to write {@code length} values into: the one this state holds when it
   * has that length (a buffer reused round after round), else a new one, put under that name.
   */
  public float[] reuse(String name, int length) {
    float[] a = arrays.get(name);
    if (a == null || a.length != length) {
      a = new float[length];
      arrays.put(name, a);
    }
    return a;
  }

  /** A copy with arrays of its own. */
  public ModelState copy() {
    ModelState c = new ModelState();
    arrays.forEach((k, v) -> c.put(k, v.clone()));
    return c;
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
    for (String name : arrays.keySet()) {
      max = Math.max(max, maxAbsDiff(other, name));
    }
    return max;
  }

  /** Largest absolute difference to {@code other} in array {@code name} (lengths must match). */
  public double maxAbsDiff(ModelState other, String name) {
    float[] a = get(name);
    float[] b = other.get(name, a.length);
    double max = 0;
    for (int i = 0; i < a.length; i++) {
      max = Math.max(max, Math.abs((double) a[i] - b[i]));
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

  /** The GPMS format: magic, version, count, then per array its name (UTF), length and big-endian floats. */
  public byte[] toBytes() {
    long size = byteSize();
    if (size > Integer.MAX_VALUE - 64) {
      throw new IllegalStateException("model state of " + size + " bytes is too large for one array");
    }
    Exact out = new Exact((int) size);
    try {
      writeTo(out);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.bytes();
  }

  /** The length of {@link #toBytes()}. */
  public long byteSize() {
    long size = 12;
    for (Map.Entry<String, float[]> e : arrays.entrySet()) {
      size += utfLength(e.getKey()) + 4L + 4L * e.getValue().length;
    }
    return size;
  }

  /** Values written per pass of {@link #writeTo}: its buffer stays small (no array of the state's size is made). */
  private static final int WRITE_CHUNK = 8192;

  /**
   * Writes {@link #toBytes()} to {@code out} without building it: a reused buffer of {@value
   * #WRITE_CHUNK} values at a time (a state's bytes in one array are a G1 humongous object for states
   * of a few hundred thousand values, and their allocation starts a collection).
   */
  public void writeTo(java.io.OutputStream out) throws IOException {
    DataOutputStream d = new DataOutputStream(out);
    d.writeInt(MAGIC);
    d.writeInt(VERSION);
    d.writeInt(arrays.size());
    ByteBuffer chunk = ByteBuffer.allocate(4 * WRITE_CHUNK); // big-endian, as DataOutputStream
    for (Map.Entry<String, float[]> e : arrays.entrySet()) {
      float[] a = e.getValue();
      d.writeUTF(e.getKey());
      d.writeInt(a.length);
      for (int from = 0; from < a.length; from += WRITE_CHUNK) {
        int n = Math.min(WRITE_CHUNK, a.length - from);
        chunk.clear();
        chunk.asFloatBuffer().put(a, from, n);
        d.write(chunk.array(), 0, 4 * n);
      }
    }
    d.flush();
  }

  private static int utfLength(String s) {
    int n = 2;
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      n += c >= 1 && c <= 0x7f ? 1 : c <= 0x7ff ? 2 : 3;
    }
    return n;
  }

  /** An output stream into one array of the exact size, handed out without a copy. */
  private static final class Exact extends ByteArrayOutputStream {
    Exact(int size) {
      super(size);
    }

    byte[] bytes() {
      if (count != buf.length) {
        throw new IllegalStateException("model state: wrote " + count + " bytes, expected " + buf.length);
      }
      return buf;
    }
  }

  /** Parses {@link #toBytes()}; {@code source} names the file in errors. */
  public static ModelState fromBytes(byte[] data, String source) {
    try {
      ByteBuffer buf = ByteBuffer.wrap(data);
      if (data.length < 12 || buf.getInt() != MAGIC) {
        throw new IllegalArgumentException(source + " is not a model state file (bad magic number)");
      }
      int version = buf.getInt();
      if (version != VERSION) {
        throw new IllegalArgumentException(
            source + " has model state format version " + version + ", expected " + VERSION);
      }
      int n = buf.getInt();
      ModelState s = new ModelState();
      for (int i = 0; i < n; i++) {
        int at = buf.position();
        int utf = (buf.get() & 0xff) << 8 | (buf.get() & 0xff);
        String key = new DataInputStream(new ByteArrayInputStream(data, at, 2 + utf)).readUTF();
        buf.position(at + 2 + utf);
        int len = buf.getInt();
        if (len < 0 || 4L * len > buf.remaining()) {
          throw new IllegalArgumentException(source + " is truncated or corrupt: array '" + key + "' of " + len
              + " values, " + buf.remaining() + " bytes left");
        }
        float[] a = new float[len];
        buf.asFloatBuffer().get(a);
        buf.position(buf.position() + 4 * len);
        s.put(key, a);
      }
      return s;
    } catch (IOException | BufferUnderflowException e) {
      throw new IllegalArgumentException(source + " is truncated or corrupt: " + e, e);
    }
  }

  private void writeObject(ObjectOutputStream out) throws IOException {
    byte[] b = toBytes();
    out.writeInt(b.length);
    out.write(b);
  }

  private void readObject(ObjectInputStream in) throws IOException {
    byte[] b = new byte[in.readInt()];
    in.readFully(b);
    arrays = fromBytes(b, "serialised model state").arrays;
  }

  @Override
  public String toString() {
    StringBuilder sb = new StringBuilder("ModelState{");
    arrays.forEach((k, v) -> sb.append(k).append('[').append(v.length).append("] "));
    return sb.append('}').toString();
  }
}
