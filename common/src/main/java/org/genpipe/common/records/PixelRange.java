package org.genpipe.common.records;

/** How uint8 pixels become floats for a model: [0, 1] (sigmoid / Bernoulli outputs) or [-1, 1] (tanh). */
public enum PixelRange {
  ZERO_ONE(1f / 255f, 0f),
  MINUS_ONE_ONE(2f / 255f, -1f);

  private final float scale;
  private final float offset;

  PixelRange(float scale, float offset) {
    this.scale = scale;
    this.offset = offset;
  }

  public float toFloat(int unsignedByte) {
    return unsignedByte * scale + offset;
  }

  /** The inverse, rounded and clamped to [0, 255]. */
  public int toByte(float value) {
    int v = Math.round((value - offset) / scale);
    return Math.max(0, Math.min(255, v));
  }
}
