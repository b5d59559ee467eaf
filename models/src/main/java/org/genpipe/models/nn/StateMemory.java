package org.genpipe.models.nn;

import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;

/** A part of a model whose state lives in memory it can hand out ({@link org.genpipe.models.TrainableModel#stateMemory}). */
public interface StateMemory {
  /** Appends this part's memory, in the order its state is exported. */
  void stateMemory(List<FloatBuffer> out);

  /** The memory of {@code parts}, in order. */
  static List<FloatBuffer> of(StateMemory... parts) {
    List<FloatBuffer> out = new ArrayList<>();
    for (StateMemory p : parts) {
      p.stateMemory(out);
    }
    return out;
  }
}
