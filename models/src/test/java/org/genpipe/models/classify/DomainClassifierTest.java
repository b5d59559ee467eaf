package org.genpipe.models.classify;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.records.ImageShape;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.testing.Scenes;
import org.genpipe.models.ModelState;
import org.genpipe.models.nn.CheckedPlans;
import org.genpipe.models.nn.OptimizerSettings;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

class DomainClassifierTest {
  private static final ImageShape SHAPE = new ImageShape(12, 12, 1);
  private static final DomainClassifierSettings SETTINGS =
      new DomainClassifierSettings(1, 32, 16, OptimizerSettings.adam(3e-3, 0.9, 0.999));

  /** Class c lights up row band c (of 3) on noise: easy to learn, impossible without looking. */
  private static Minibatch bands(int n, long seed, boolean asText) {
    SplittableRandom r = new SplittableRandom(seed);
    float[] px = new float[n * 144];
    int[] labels = new int[n];
    List<String> texts = new ArrayList<>();
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int c = r.nextInt(3);
      labels[i] = c;
      texts.add(c == 2 ? "" + "ab".charAt(r.nextInt(2)) : c == 1 ? "ba" : "a");
      ids.add("r" + i);
      for (int y = 0; y < 12; y++) {
        for (int x = 0; x < 12; x++) {
          px[i * 144 + y * 12 + x] = (float) (0.3 * r.nextDouble() + (y / 4 == c ? 0.6 : 0));
        }
      }
    }
    INDArray images = Nd4j.create(px, new long[] {n, 1, 12, 12}, 'c');
    return new Minibatch(images, null, asText ? null : Nd4j.createFromArray(labels), asText ? texts : null, ids);
  }

  @Test
  void learnsClassesAndGivesFeaturesOfTheConfiguredWidth() {
    DomainClassifier c = new DomainClassifier(SHAPE, Targets.ofClasses(3), SETTINGS, 7);
    Minibatch test = bands(200, 99, false);
    double before = c.accuracy(test);
    for (int step = 0; step < 150; step++) {
      c.trainStep(bands(32, step, false), step);
    }
    assertThat(c.accuracy(test)).isGreaterThan(0.95).isGreaterThan(before);
    assertThat(c.features(test.images()).shape()).containsExactly(200, 16);
    assertThat(c.predict(test.images())[0]).hasSize(1);
  }

  @Test
  void compiledStepsAreBitIdenticalToSameDiffsExecutor() {
    CheckedPlans.run(() -> {
      DomainClassifier c = new DomainClassifier(SHAPE, Targets.ofClasses(3), SETTINGS, 5);
      for (int step = 0; step < 3; step++) {
        c.trainStep(bands(16, step, false), step);
      }
    });
  }

  @Test
  void sameSeedSameTrainingAndStateRestoresExactly() {
    DomainClassifier a = new DomainClassifier(SHAPE, Targets.ofClasses(3), SETTINGS, 3);
    DomainClassifier b = new DomainClassifier(SHAPE, Targets.ofClasses(3), SETTINGS, 3);
    for (int step = 0; step < 5; step++) {
      a.trainStep(bands(16, step, false), step);
      b.trainStep(bands(16, step, false), step);
    }
    assertThat(a.state().maxAbsDiff(b.state())).isZero();
    DomainClassifier restored = new DomainClassifier(SHAPE, Targets.ofClasses(3), SETTINGS, 11);
    restored.loadState(ModelState.fromBytes(a.state().toBytes(), "test"));
    INDArray x = bands(8, 5, false).images();
    assertThat(restored.features(x)).isEqualTo(a.features(x));
  }

  @Test
  void textsAreClassifiedPerCharacterPosition() {
    Minibatch train = bands(64, 1, true);
    Targets t = Targets.ofTexts(train.texts());
    assertThat(t.alphabet()).isEqualTo("ab");
    assertThat(t.positions()).isEqualTo(2);
    assertThat(t.indices(train)[0]).hasSize(2);
    DomainClassifier c = new DomainClassifier(SHAPE, t, SETTINGS, 5);
    for (int step = 0; step < 150; step++) {
      c.trainStep(bands(32, step, true), step);
    }
    // band 0 -> "a" + none, band 1 -> "ba"; band 2 is a coin flip of one character: ~5/6 learnable
    assertThat(c.accuracy(bands(300, 98, true))).isGreaterThan(0.75);
  }

  /** Synthetic street scenes: photos [0, 1] as images, colour label maps as label maps. */
  private static Minibatch scenes(int n, int side, long seed) {
    List<Scenes.Pair> pairs = Scenes.pairs(n, side, seed);
    int plane = side * side;
    float[] photos = new float[n * 3 * plane];
    float[] maps = new float[n * 3 * plane];
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      for (int p = 0; p < plane; p++) {
        for (int c = 0; c < 3; c++) {
          photos[(i * 3 + c) * plane + p] = (pairs.get(i).photo()[p * 3 + c] & 0xFF) / 255f;
          maps[(i * 3 + c) * plane + p] = (pairs.get(i).labelMap()[p * 3 + c] & 0xFF) / 255f;
        }
      }
      ids.add("s" + i);
    }
    long[] shape = {n, 3, side, side};
    return new Minibatch(Nd4j.create(photos, shape, 'c'), Nd4j.create(maps, shape, 'c'), null, null, ids);
  }

  @Test
  void labelMapsAreSegmentedIntoPaletteClassesPerPixel() {
    ImageShape shape = new ImageShape(32, 32, 3);
    Targets t = Targets.ofLabelMaps(32, 32);
    Minibatch test = scenes(24, 32, 99);
    int[][] truth = t.indices(test);
    // the scenes draw sky, building, vegetation, road and cars: train ids 10, 2, 8, 0, 13
    assertThat(java.util.Arrays.stream(truth).flatMapToInt(java.util.Arrays::stream).distinct().sorted().toArray())
        .containsExactly(0, 2, 8, 10, 13);
    DomainClassifier c = new DomainClassifier(shape, t, SETTINGS, 7);
    double before = c.accuracy(test);
    for (int step = 0; step < 120; step++) {
      c.trainStep(scenes(16, 32, step), step);
    }
    assertThat(c.accuracy(test)).isGreaterThan(0.9).isGreaterThan(before);
    assertThat(c.predict(test.images())[0]).hasSize(32 * 32);
    assertThat(c.features(test.images()).shape()).containsExactly(24, 16);
    CheckedPlans.run(() -> {
      DomainClassifier d = new DomainClassifier(shape, t, SETTINGS, 5);
      for (int step = 0; step < 2; step++) {
        d.trainStep(scenes(4, 32, step), step);
      }
    });
    assertThatThrownBy(() -> new DomainClassifier(new ImageShape(30, 30, 3), Targets.ofLabelMaps(30, 30), SETTINGS, 1))
        .hasMessageContaining("divisible by 8");
    assertThatThrownBy(() -> t.indices(bands(2, 1, false))).isInstanceOf(BadInputException.class)
        .hasMessageContaining("record r0 has no label map");
  }

  @Test
  void recordsWithoutTheTargetsAreNamed() {
    DomainClassifier c = new DomainClassifier(SHAPE, Targets.ofClasses(3), SETTINGS, 3);
    assertThatThrownBy(() -> c.trainStep(bands(4, 1, true), 0))
        .isInstanceOf(BadInputException.class).hasMessageContaining("record r0 has no class label");
  }
}
