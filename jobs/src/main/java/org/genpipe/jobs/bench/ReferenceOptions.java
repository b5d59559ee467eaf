package org.genpipe.jobs.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.genpipe.common.records.Minibatch;
import org.genpipe.models.nn.Noise;
import picocli.CommandLine.Option;

/**
 * The options of a benchmark that times a network here and in PyTorch in alternating blocks
 * (a picocli mixin), and the CAPTCHA-shaped inputs the reader's and the DDPM's benchmarks share.
 */
final class ReferenceOptions {
  /** conf/captcha-reader.yaml's and conf/ddpm-captcha.yaml's alphabet. */
  static final String CAPTCHA_ALPHABET = "2345678bcdefgmnpwxy";

  @Option(names = "--repeats", defaultValue = "3", description = "Timed blocks per side (default ${DEFAULT-VALUE}).")
  int repeats;

  @Option(names = "--torch-threads", defaultValue = "2", description = "PyTorch threads (default ${DEFAULT-VALUE}).")
  int torchThreads;

  @Option(names = "--python", defaultValue = PythonReference.DEFAULT_PYTHON,
      description = "Python with torch (default ${DEFAULT-VALUE}, made by scripts/reference-env).")
  String python;

  /**
   * {@code n} random grey images [n, 1, h, w] (standard normals, or squashed into [0, 1] by a sigmoid
   * when {@code unit}) with random texts of {@code length} characters over {@link #CAPTCHA_ALPHABET}.
   */
  static Minibatch captchas(int n, int h, int w, int length, boolean unit) {
    SplittableRandom r = new SplittableRandom(2);
    List<String> texts = new ArrayList<>();
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      StringBuilder t = new StringBuilder();
      for (int j = 0; j < length; j++) {
        t.append(CAPTCHA_ALPHABET.charAt(r.nextInt(CAPTCHA_ALPHABET.length())));
      }
      texts.add(t.toString());
      ids.add("b" + i);
    }
    var images = Noise.gaussian(1, n, 1, h, w);
    return new Minibatch(unit ? org.nd4j.linalg.ops.transforms.Transforms.sigmoid(images, false) : images, null, null,
        texts, ids);
  }
}
