package org.genpipe.models.nn;

import java.util.SplittableRandom;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Noise drawn in Java from a seed, so that the same seed gives the same numbers on every backend,
 * thread count and machine (ND4J's native generators differ between CPU and CUDA).
 */
public final class Noise {
  private Noise() {}

  /** Standard normal values of the given shape. */
  public static INDArray gaussian(long seed, long... shape) {
    SplittableRandom r = new SplittableRandom(seed);
    float[] v = new float[Math.toIntExact(length(shape))];
    for (int i = 0; i < v.length; i += 2) {
      // Box-Muller: two normals per pair of uniforms
      double u1 = 1.0 - r.nextDouble();
      double u2 = r.nextDouble();
      double rad = Math.sqrt(-2.0 * Math.log(u1));
      v[i] = (float) (rad * Math.cos(2 * Math.PI * u2));
      if (i + 1 < v.length) {
        v[i + 1] = (float) (rad * Math.sin(2 * Math.PI * u2));
      }
    }
    return Nd4j.create(v, shape, 'c');
  }

  /** Uniform values in [lo, hi). */
  public static float[] uniform(SplittableRandom r, int n, double lo, double hi) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) (lo + (hi - lo) * r.nextDouble());
    }
    return v;
  }

  /** A seed for (base, a, b) that differs whenever any part differs (SplitMix64 mixing). */
  public static long mix(long base, long a, long b) {
    return splitmix(splitmix(splitmix(base) ^ a) ^ b);
  }

  private static long splitmix(long z) {
    z += 0x9e3779b97f4a7c15L;
    z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
    z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
    return z ^ (z >>> 31);
  }

  private static long length(long[] shape) {
    long n = 1;
    for (long s : shape) {
      n *= s;
    }
    return n;
  }
}
