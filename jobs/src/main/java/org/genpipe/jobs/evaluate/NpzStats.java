package org.genpipe.jobs.evaluate;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;
import java.util.zip.ZipOutputStream;
import org.genpipe.common.io.BadInputException;

/**
 * Gaussian feature statistics as pytorch-fid keeps them: a NumPy {@code .npz} (a zip of {@code .npy}
 * arrays) with {@code mu} [d] and {@code sigma} [d, d] in float64. Reads little- and big-endian
 * float32/float64 C-order arrays (NumPy format versions 1-3); writes version 1.0, '<f8'.
 */
public final class NpzStats {
  private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
  private static final Pattern DESCR = Pattern.compile("'descr':\\s*'([<>|=]?)([fi])(\\d)'");
  private static final Pattern FORTRAN = Pattern.compile("'fortran_order':\\s*(True|False)");
  private static final Pattern SHAPE = Pattern.compile("'shape':\\s*\\(([^)]*)\\)");

  /** Mean [d] and covariance [d][d]. */
  public record Stats(double[] mu, double[][] sigma) {
    public int dim() {
      return mu.length;
    }
  }

  private NpzStats() {}

  public static void write(Stats s, OutputStream out) throws IOException {
    int d = s.dim();
    double[] flat = new double[d * d];
    for (int i = 0; i < d; i++) {
      if (s.sigma()[i].length != d) {
        throw new IllegalArgumentException("sigma row " + i + " has " + s.sigma()[i].length + " values, expected " + d);
      }
      System.arraycopy(s.sigma()[i], 0, flat, i * d, d);
    }
    try (ZipOutputStream zip = new ZipOutputStream(out)) {
      zip.putNextEntry(new ZipEntry("mu.npy"));
      zip.write(npy(s.mu(), "(" + d + ",)"));
      zip.closeEntry();
      zip.putNextEntry(new ZipEntry("sigma.npy"));
      zip.write(npy(flat, "(" + d + ", " + d + ")"));
      zip.closeEntry();
    }
  }

  /** Reads {@code mu} and {@code sigma}; {@code source} names the file in errors. */
  public static Stats read(InputStream in, String source) throws IOException {
    Map<String, Array> arrays = new HashMap<>();
    try (ZipInputStream zip = new ZipInputStream(in)) {
      for (ZipEntry e = zip.getNextEntry(); e != null; e = zip.getNextEntry()) {
        if (e.getName().endsWith(".npy")) {
          String key = e.getName().substring(0, e.getName().length() - 4);
          arrays.put(key, parse(zip.readAllBytes(), source + ":" + e.getName()));
        }
      }
    }
    Array mu = arrays.get("mu");
    Array sigma = arrays.get("sigma");
    if (mu == null || sigma == null) {
      throw new BadInputException(source + ": expected arrays 'mu' and 'sigma' (pytorch-fid statistics), found "
          + arrays.keySet());
    }
    if (mu.shape.length != 1) {
      throw new BadInputException(source + ": 'mu' must be 1-D, has shape " + java.util.Arrays.toString(mu.shape));
    }
    int d = mu.shape[0];
    if (sigma.shape.length != 2 || sigma.shape[0] != d || sigma.shape[1] != d) {
      throw new BadInputException(source + ": 'sigma' must be [" + d + ", " + d + "] to match 'mu', has shape "
          + java.util.Arrays.toString(sigma.shape));
    }
    double[][] s = new double[d][d];
    for (int i = 0; i < d; i++) {
      System.arraycopy(sigma.values, i * d, s[i], 0, d);
    }
    return new Stats(mu.values, s);
  }

  private record Array(int[] shape, double[] values) {}

  private static byte[] npy(double[] values, String shape) {
    String dict = "{'descr': '<f8', 'fortran_order': False, 'shape': " + shape + ", }";
    int unpadded = MAGIC.length + 2 + 2 + dict.length() + 1;
    int pad = (64 - unpadded % 64) % 64;
    String header = dict + " ".repeat(pad) + "\n";
    ByteBuffer buf = ByteBuffer.allocate(MAGIC.length + 4 + header.length() + 8 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    buf.put(MAGIC).put((byte) 1).put((byte) 0).putShort((short) header.length());
    buf.put(header.getBytes(StandardCharsets.US_ASCII));
    buf.asDoubleBuffer().put(values);
    return buf.array();
  }

  private static Array parse(byte[] b, String source) {
    ByteBuffer buf = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
    for (byte m : MAGIC) {
      if (!buf.hasRemaining() || buf.get() != m) {
        throw new BadInputException(source + " is not a NumPy .npy array (bad magic)");
      }
    }
    int major = buf.get();
    buf.get();
    int headerLen = major == 1 ? buf.getShort() & 0xffff : buf.getInt();
    if (major < 1 || major > 3 || headerLen > buf.remaining()) {
      throw new BadInputException(source + ": unsupported .npy version " + major + " or truncated header");
    }
    byte[] h = new byte[headerLen];
    buf.get(h);
    String header = new String(h, major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
    Matcher descr = DESCR.matcher(header);
    Matcher fortran = FORTRAN.matcher(header);
    Matcher shapeM = SHAPE.matcher(header);
    if (!descr.find() || !fortran.find() || !shapeM.find()) {
      throw new BadInputException(source + ": unreadable .npy header " + header.trim());
    }
    if (!descr.group(2).equals("f") || !(descr.group(3).equals("4") || descr.group(3).equals("8"))) {
      throw new BadInputException(source + ": dtype " + descr.group(2) + descr.group(3) + ", expected float32 or float64");
    }
    if (fortran.group(1).equals("True")) {
      throw new BadInputException(source + ": Fortran-order arrays are not supported; save with numpy.ascontiguousarray");
    }
    String[] dims = shapeM.group(1).split(",");
    int[] shape = java.util.Arrays.stream(dims).map(String::trim).filter(x -> !x.isEmpty()).mapToInt(Integer::parseInt).toArray();
    long n = 1;
    for (int s : shape) {
      n *= s;
    }
    int width = Integer.parseInt(descr.group(3));
    if (n * width != buf.remaining()) {
      throw new BadInputException(source + ": shape " + java.util.Arrays.toString(shape) + " needs " + n * width
          + " bytes of data, the file has " + buf.remaining());
    }
    buf.order(">".equals(descr.group(1)) ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN);
    double[] values = new double[(int) n];
    for (int i = 0; i < n; i++) {
      values[i] = width == 8 ? buf.getDouble() : buf.getFloat();
    }
    return new Array(shape, values);
  }

  /** Bytes of {@link #write} (for tests and callers that hold data in memory). */
  public static byte[] toBytes(Stats s) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    write(s, out);
    return out.toByteArray();
  }
}
