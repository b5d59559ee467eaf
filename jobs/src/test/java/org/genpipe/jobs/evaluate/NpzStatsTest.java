package org.genpipe.jobs.evaluate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.genpipe.common.io.BadInputException;
import org.junit.jupiter.api.Test;

/** pytorch-fid's .npz statistics: written here, and read back also from files written as NumPy does. */
class NpzStatsTest {
  private static final NpzStats.Stats STATS =
      new NpzStats.Stats(new double[] {0.5, -1.25}, new double[][] {{2, 0.1}, {0.1, 3}});

  @Test
  void roundTripKeepsEveryValueAndHeadersAreAligned() throws Exception {
    byte[] bytes = NpzStats.toBytes(STATS);
    NpzStats.Stats back = NpzStats.read(new ByteArrayInputStream(bytes), "s.npz");
    assertThat(back.mu()).containsExactly(0.5, -1.25);
    assertThat(back.sigma()[0]).containsExactly(2, 0.1);
    assertThat(back.sigma()[1]).containsExactly(0.1, 3);
  }

  /** A big-endian float32 file with NumPy's header layout (version 1.0, 64-byte aligned). */
  @Test
  void readsFloat32BigEndianArrays() throws Exception {
    byte[] npz = zip(npy("'>f4'", "(2,)", ByteOrder.BIG_ENDIAN, 0.5f, 2f),
        npy("'>f4'", "(2, 2)", ByteOrder.BIG_ENDIAN, 1f, 0f, 0f, 1f));
    NpzStats.Stats s = NpzStats.read(new ByteArrayInputStream(npz), "be.npz");
    assertThat(s.mu()).containsExactly(0.5, 2.0);
    assertThat(s.sigma()[1]).containsExactly(0.0, 1.0);
  }

  @Test
  void badFilesAreRejectedNamingFileAndKey() throws Exception {
    byte[] onlyMu = zip(npy("'<f8'", "(2,)", ByteOrder.LITTLE_ENDIAN, 1f, 2f), null);
    assertThatThrownBy(() -> NpzStats.read(new ByteArrayInputStream(onlyMu), "stats.npz"))
        .isInstanceOf(BadInputException.class).hasMessageContaining("stats.npz").hasMessageContaining("'sigma'");
    byte[] wrongDim = zip(npy("'<f8'", "(2,)", ByteOrder.LITTLE_ENDIAN, 1f, 2f),
        npy("'<f8'", "(1, 1)", ByteOrder.LITTLE_ENDIAN, 1f));
    assertThatThrownBy(() -> NpzStats.read(new ByteArrayInputStream(wrongDim), "stats.npz"))
        .hasMessageContaining("'sigma' must be [2, 2]");
    byte[] ints = zip(npy("'<i8'", "(2,)", ByteOrder.LITTLE_ENDIAN, 1f, 2f), npy("'<f8'", "(2, 2)", ByteOrder.LITTLE_ENDIAN, 1f, 0f, 0f, 1f));
    assertThatThrownBy(() -> NpzStats.read(new ByteArrayInputStream(ints), "stats.npz"))
        .hasMessageContaining("stats.npz:mu.npy: dtype i8, expected float32 or float64");
  }

  /** An .npy with {@code descr}; values as f4 or f8 by the descr's width. */
  private static byte[] npy(String descr, String shape, ByteOrder order, float... values) {
    String dict = "{'descr': " + descr + ", 'fortran_order': False, 'shape': " + shape + ", }";
    int pad = (64 - (10 + dict.length() + 1) % 64) % 64;
    String header = dict + " ".repeat(pad) + "\n";
    int width = descr.contains("8") ? 8 : 4;
    ByteBuffer b = ByteBuffer.allocate(10 + header.length() + width * values.length).order(ByteOrder.LITTLE_ENDIAN);
    b.put(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0}).putShort((short) header.length());
    b.put(header.getBytes(StandardCharsets.US_ASCII));
    b.order(order);
    for (float v : values) {
      if (width == 8) {
        b.putDouble(v);
      } else {
        b.putFloat(v);
      }
    }
    return b.array();
  }

  private static byte[] zip(byte[] mu, byte[] sigma) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (ZipOutputStream z = new ZipOutputStream(out)) {
      z.putNextEntry(new ZipEntry("mu.npy"));
      z.write(mu);
      z.closeEntry();
      if (sigma != null) {
        z.putNextEntry(new ZipEntry("sigma.npy"));
        z.write(sigma);
        z.closeEntry();
      }
    }
    return out.toByteArray();
  }
}
