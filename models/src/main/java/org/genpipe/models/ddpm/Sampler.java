package org.genpipe.models.ddpm;

import java.util.List;
import org.genpipe.models.nn.Noise;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * The reverse process: from x_T ~ N(0, I) to an image, asking a {@link NoisePredictor} at each step.
 *
 * <ul>
 *   <li>{@code ddpm}: ancestral sampling over all T steps, x_{t-1} drawn from the posterior
 *       q(x_{t-1} | x_t, x0_hat) with its variance (Ho et al. 2020, Algorithm 2 with sigma^2 = beta-tilde);
 *   <li>{@code ddim}: {@code steps} evenly spaced steps of the non-Markovian process (Song et al.
 *       2021, eq. 12); eta 0 is deterministic, eta 1 has the ancestral sampler's variance.
 * </ul>
 *
 * Every draw comes from {@code seed}: the same seed, predictor and settings give the same images.
 *
 * @param name ddpm or ddim
 * @param steps DDIM's number of steps (ignored by ddpm, which takes all T)
 * @param eta DDIM's noise scale
 * @param clip whether x0_hat is clipped to [-1, 1] at each step (the data range; off for data that is not images)
 */
public record Sampler(String name, int steps, double eta, boolean clip) {
  public static final String DDPM = "ddpm";
  public static final String DDIM = "ddim";
  public static final List<String> NAMES = List.of(DDPM, DDIM);

  public Sampler {
    if (!NAMES.contains(name)) {
      throw new IllegalArgumentException("'" + name + "' is not a sampler; allowed: ddpm, ddim");
    }
  }

  /** The steps this sampler visits for {@code schedule}, from the noisiest. */
  public int[] timesteps(NoiseSchedule schedule) {
    int T = schedule.steps();
    int n = DDPM.equals(name) ? T : Math.max(1, Math.min(steps, T));
    int[] out = new int[n];
    for (int i = 0; i < n; i++) {
      // evenly spaced over [0, T), the last one T - 1 - (T / n - 1) rounded like the DDIM paper's "linear" choice
      out[n - 1 - i] = (int) Math.round((double) i * (T - 1) / Math.max(1, n - 1));
    }
    if (n == 1) {
      out[0] = T - 1;
    }
    return out;
  }

  /** Images [N, C, H, W] drawn by the reverse process, each from noise of {@code seed}. */
  public INDArray sample(NoisePredictor model, NoiseSchedule schedule, long[] shape, long seed) {
    INDArray x = Noise.gaussian(Noise.mix(seed, 0x5a, -1), shape);
    int[] ts = timesteps(schedule);
    for (int i = 0; i < ts.length; i++) {
      int t = ts[i];
      int prev = i + 1 < ts.length ? ts[i + 1] : -1;
      INDArray eps = model.predict(x, t);
      double ab = schedule.alphaBar(t);
      // x0_hat = (x_t - sqrt(1 - ab) eps) / sqrt(ab)
      INDArray x0 = x.sub(eps.mul(Math.sqrt(1 - ab))).divi(Math.sqrt(ab));
      if (clip) {
        // in place (dup false)
        Transforms.max(x0, -1.0, false);
        Transforms.min(x0, 1.0, false);
      }
      long noiseSeed = Noise.mix(seed, 0x5b, t);
      INDArray next;
      if (DDPM.equals(name)) {
        // prev is t - 1 here: the posterior of one step
        INDArray fromX = x.mul(schedule.posteriorMeanXt(t));
        next = x0.mul(schedule.posteriorMeanX0(t)).addi(fromX);
        double var = schedule.posteriorVariance(t);
        if (t > 0 && var > 0) {
          INDArray z = Noise.gaussian(noiseSeed, shape);
          next.addi(z.muli(Math.sqrt(var)));
          release(z);
        }
        release(fromX);
      } else {
        double abPrev = schedule.alphaBar(prev);
        double sigma = eta * Math.sqrt((1 - abPrev) / (1 - ab)) * Math.sqrt(1 - ab / abPrev);
        // the eps that x0_hat implies (equal to eps unless clipped)
        INDArray epsUsed = clip ? x.sub(x0.mul(Math.sqrt(ab))).divi(Math.sqrt(1 - ab)) : eps;
        next = x0.mul(Math.sqrt(abPrev)).addi(epsUsed.mul(Math.sqrt(Math.max(0, 1 - abPrev - sigma * sigma))));
        if (sigma > 0 && prev >= 0) {
          INDArray z = Noise.gaussian(noiseSeed, shape);
          next.addi(z.muli(sigma));
          release(z);
        }
        if (epsUsed != eps) {
          release(epsUsed);
        }
      }
      release(x, eps, x0);
      x = next;
    }
    return x;
  }

  /**
   * Frees arrays now instead of when the garbage collector finds them: a sampler makes several
   * image-sized temporaries per step, whose native memory otherwise piles up between collections.
   */
  static void release(INDArray... arrays) {
    for (INDArray a : arrays) {
      if (a != null && a.closeable()) {
        a.close();
      }
    }
  }

}
