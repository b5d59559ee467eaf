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
