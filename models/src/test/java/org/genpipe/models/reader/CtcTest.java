package org.genpipe.models.reader;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class CtcTest {
  private static float[] log(double... p) {
    float[] out = new float[p.length];
    for (int i = 0; i < p.length; i++) {
      out[i] = (float) Math.log(p[i]);
    }
    return out;
  }

  @Test
  void twoFramesOneCharacterByHand() {
    // classes (blank, a); frames y0 = (0.4, 0.6), y1 = (0.7, 0.3); label "a":
    // paths (a, a), (a, -), (-, a): p = .6 * .3 + .6 * .7 + .4 * .3 = .72
    float[] lp = log(0.4, 0.6, 0.7, 0.3);
    Ctc.Result r = Ctc.lossAndGradient(lp, 1, 2, 2, new int[][] {{1}});
    assertThat(r.losses()[0]).isCloseTo(-Math.log(0.72), within(1e-6));
    // d(-ln p) / d ln y_t(k) = -(probability of the paths through k at t) / p
    float[] expected = {(float) (-0.12 / 0.72), (float) (-0.60 / 0.72), (float) (-0.42 / 0.72),
        (float) (-0.30 / 0.72)};
    for (int i = 0; i < 4; i++) {
      assertThat(r.gradient()[i]).as("entry %d", i).isCloseTo(expected[i], within(1e-6f));
    }
  }

  @Test
  void gradientMatchesFiniteDifferencesWithRepeatsAndTwoExamples() {
    int n = 2;
    int t = 6;
    int k = 4;
    SplittableRandom rnd = new SplittableRandom(3);
    float[] lp = new float[n * t * k];
    for (int f = 0; f < n * t; f++) {
      double[] z = new double[k];
      double sum = 0;
      for (int c = 0; c < k; c++) {
        z[c] = Math.exp(rnd.nextGaussian());
        sum += z[c];
      }
      for (int c = 0; c < k; c++) {
        lp[f * k + c] = (float) Math.log(z[c] / sum);
      }
    }
    int[][] labels = {{1, 1, 2}, {3}};
    Ctc.Result r = Ctc.lossAndGradient(lp, n, t, k, labels);
    float h = 1e-3f;
    for (int i = 0; i < lp.length; i++) {
      float[] up = lp.clone();
      float[] down = lp.clone();
      up[i] += h;
      down[i] -= h;
      double numeric = (Ctc.lossAndGradient(up, n, t, k, labels).mean() - Ctc.lossAndGradient(down, n, t, k, labels)
          .mean()) / ((double) up[i] - down[i]);
      assertThat((double) r.gradient()[i]).as("entry %d", i).isCloseTo(numeric, within(2e-4));
    }
  }

  @Test
  void aLabelTooLongForTheFramesOrOutsideTheClassesIsRefused() {
    assertThat(Ctc.framesNeeded(new int[] {1, 1, 2})).isEqualTo(4);
    assertThatThrownBy(() -> Ctc.lossAndGradient(new float[4], 1, 2, 2, new int[][] {{1, 1}}))
        .hasMessageContaining("needs 3 frames, the model gives 2");
    assertThatThrownBy(() -> Ctc.lossAndGradient(new float[6], 1, 3, 2, new int[][] {{2}}))
        .hasMessageContaining("outside 1..1");
  }

  @Test
  void beamSearchSumsAlignmentsWhereBestPathDoesNot() {
    // two frames of (blank 0.6, a 0.4): the best path is (-, -) = "" with p .36, but "a" has
    // .4 * .4 + .4 * .6 + .6 * .4 = .64 over its three alignments
    float[] lp = log(0.6, 0.4, 0.6, 0.4);
    assertThat(Ctc.greedy(lp, 0, 2, 2)).isEmpty();
    assertThat(Ctc.beam(lp, 0, 2, 2, 4)).containsExactly(1);
    // repeats merge unless a blank separates them: frames a, a, -, a, b -> "aab"
    float[] path = log(0.1, 0.8, 0.1, 0.1, 0.8, 0.1, 0.8, 0.1, 0.1, 0.1, 0.8, 0.1, 0.1, 0.1, 0.8);
    assertThat(Ctc.greedy(path, 0, 5, 3)).containsExactly(1, 1, 2);
    assertThat(Ctc.beam(path, 0, 5, 3, 8)).containsExactly(1, 1, 2);
  }
}
