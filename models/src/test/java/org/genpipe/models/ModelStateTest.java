package org.genpipe.models;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class ModelStateTest {
  private static ModelState sample() {
    return new ModelState().put("G/params", new float[] {1.5f, -2f, Float.MIN_VALUE}).put("G/empty", new float[0])
        .put("D/updater", new float[] {3.25f});
  }

  /** The GPMS layout written field by field, as checkpoints have always been written. */
  @Test
  void bytesFollowTheDocumentedLayout() throws Exception {
    ByteArrayOutputStream expected = new ByteArrayOutputStream();
    DataOutputStream out = new DataOutputStream(expected);
    out.writeInt(0x47504d53);
    out.writeInt(1);
    out.writeInt(3);
    for (var e : sample().arrays().entrySet()) {
      out.writeUTF(e.getKey());
      out.writeInt(e.getValue().length);
      for (float v : e.getValue()) {
        out.writeFloat(v);
      }
    }
    assertThat(sample().toBytes()).isEqualTo(expected.toByteArray());
    assertThat(ModelState.fromBytes(expected.toByteArray(), "x").maxAbsDiff(sample())).isZero();
  }

  /**
   * Written as a stream (chunk by chunk: an array longer than a chunk, a chunk boundary inside it) and
   * with names whose modified UTF-8 is 1, 2 and 3 bytes a character (and NUL, 2): the same bytes as
   * the layout written field by field, of the length byteSize says.
   */
  @Test
  void streamedBytesOfALargeStateFollowTheLayoutToo() throws Exception {
    float[] big = new float[3 * 8192 + 17];
    for (int i = 0; i < big.length; i++) {
      big[i] = (float) Math.sin(i) * i;
    }
    ModelState s = new ModelState().put("net/params", big).put("caf\u00e9 \u20ac\u0000", new float[] {-0f, Float.NaN});
    ByteArrayOutputStream expected = new ByteArrayOutputStream();
    DataOutputStream out = new DataOutputStream(expected);
    out.writeInt(0x47504d53);
    out.writeInt(1);
    out.writeInt(2);
    for (var e : s.arrays().entrySet()) {
      out.writeUTF(e.getKey());
      out.writeInt(e.getValue().length);
      for (float v : e.getValue()) {
        out.writeFloat(v);
      }
    }
    ByteArrayOutputStream streamed = new ByteArrayOutputStream();
    s.writeTo(streamed);
    assertThat(streamed.toByteArray()).isEqualTo(expected.toByteArray());
    assertThat(s.toBytes()).isEqualTo(expected.toByteArray());
    assertThat(s.byteSize()).isEqualTo(expected.size());
  }

  @Test
  void javaSerialisationKeepsNamesOrderAndValues() throws Exception {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
      out.writeObject(sample());
    }
    ModelState back;
    try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
      back = (ModelState) in.readObject();
    }
    assertThat(back.arrays().keySet()).containsExactly("G/params", "G/empty", "D/updater");
    assertThat(back.get("G/params")).containsExactly(1.5f, -2f, Float.MIN_VALUE);
  }

  @Test
  void truncatedBytesAreRejectedNamingTheSource() {
    byte[] b = sample().toBytes();
    assertThatThrownBy(() -> ModelState.fromBytes(Arrays.copyOf(b, b.length - 3), "state.bin"))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("state.bin is truncated or corrupt");
    assertThatThrownBy(() -> ModelState.fromBytes(new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, "state.bin"))
        .hasMessageContaining("not a model state file");
  }
}
