package org.genpipe.models.testing;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.FloatBuffer;
import java.util.List;
import org.genpipe.models.ModelState;
import org.genpipe.models.TrainableModel;

/** Checks a model's {@link TrainableModel#stateMemory}: its values are the state's, in order, and writing them changes the model. */
public final class StateMemoryCheck {
  private StateMemoryCheck() {}

  public static void check(TrainableModel model) {
    ModelState before = model.state();
    float[] expected = flat(before);
    List<FloatBuffer> memory = model.stateMemory();
    assertThat(memory).as("state memory").isNotNull();
    float[] seen = new float[expected.length];
    int at = 0;
    for (FloatBuffer b : memory) {
      assertThat(at + b.capacity()).as("memory longer than the state").isLessThanOrEqualTo(seen.length);
      b.get(0, seen, at, b.capacity());
      at += b.capacity();
    }
    assertThat(at).as("memory as long as the state").isEqualTo(expected.length);
    assertThat(seen).isEqualTo(expected);

    // a new value everywhere, written into the memory, is what the model's state then holds
    int i = 0;
    for (FloatBuffer b : memory) {
      for (int k = 0; k < b.capacity(); k++, i++) {
        b.put(k, expected[i] * 0.5f + i % 7);
      }
    }
    float[] after = flat(model.state());
    for (int k = 0; k < after.length; k++) {
      assertThat(after[k]).as("value %d", k).isEqualTo(expected[k] * 0.5f + k % 7);
    }
    model.loadState(before);
    assertThat(flat(model.state())).isEqualTo(expected);
  }

  private static float[] flat(ModelState s) {
    int n = s.arrays().values().stream().mapToInt(a -> a.length).sum();
    float[] out = new float[n];
    int at = 0;
    for (float[] a : s.arrays().values()) {
      System.arraycopy(a, 0, out, at, a.length);
      at += a.length;
    }
    return out;
  }
}
