package org.genpipe.common.data;

import java.util.List;
import org.genpipe.common.config.ConfigException;

/** The registry of raw data sets by name: the one place that maps a name to its reader. */
public final class Datasets {
  public static final List<String> NAMES =
      List.of(FashionMnist.NAME, Cifar10.NAME, CityscapesPairs.NAME, CaptchaFolder.NAME, CaptchaRender.NAME);

  private Datasets() {}

  public static boolean needsInput(String name) {
    return !CaptchaRender.NAME.equals(name);
  }

  /** The reader for {@code s.dataset()}, configured from the settings and the run's seed. */
  public static RawDataset create(PreprocessSettings s, long seed) {
    return switch (s.dataset()) {
      case FashionMnist.NAME -> new FashionMnist(s.input());
      case Cifar10.NAME -> new Cifar10(s.input());
      case CityscapesPairs.NAME ->
          new CityscapesPairs(s.input(), s.cityscapes().height(), s.cityscapes().width());
      case CaptchaFolder.NAME -> new CaptchaFolder(s.input(), s.captcha());
      case CaptchaRender.NAME -> new CaptchaRender(s.captcha(), seed);
      default ->
          throw new ConfigException(
              "preprocess.dataset: unknown data set '" + s.dataset() + "'; valid: " + String.join(", ", NAMES));
    };
  }
}
