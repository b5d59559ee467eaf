package org.genpipe.jobs.fetch;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.genpipe.common.io.BadInputException;

/**
 * Official download locations and published checksums of the data sets that have them. The CAPTCHA
 * sets have no single official home: render them ({@code captcha-render}) or point {@code captcha}
 * at a folder you have.
 */
public final class DatasetSources {
  private static final String FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";

  /** Each data set's files, and the folder under the destination that preprocess reads. */
  public record Source(String dataset, List<RemoteFile> files, String inputFolder) {}

  static final Map<String, Source> SOURCES = new LinkedHashMap<>();

  static {
    // MD5s as published in the Fashion-MNIST and CIFAR-10 pages; the pix2pix sets publish none
    add(new Source("fashion-mnist", List.of(
        new RemoteFile("train-images-idx3-ubyte.gz", FASHION + "train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", false),
        new RemoteFile("train-labels-idx1-ubyte.gz", FASHION + "train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", false),
        new RemoteFile("t10k-images-idx3-ubyte.gz", FASHION + "t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", false),
        new RemoteFile("t10k-labels-idx1-ubyte.gz", FASHION + "t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", false)),
        "."));
    add(new Source("cifar10", List.of(
        new RemoteFile("cifar-10-binary.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530", true)),
        "cifar-10-batches-bin"));
    add(new Source("cityscapes", List.of(
        new RemoteFile("cityscapes.tar.gz", "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/cityscapes.tar.gz", null, true)),
        "cityscapes"));
  }

  private static void add(Source s) {
    SOURCES.put(s.dataset(), s);
  }

  private DatasetSources() {}

  public static Source forName(String dataset) {
    Source s = SOURCES.get(dataset);
    if (s == null) {
      throw new BadInputException(
          "no download source for data set '" + dataset + "'; fetch knows: " + String.join(", ", SOURCES.keySet())
              + " (CAPTCHAs: use the captcha-render data set or your own folder)");
    }
    return s;
  }

  /** The file's URL under a mirror base, or the official URL when no mirror is given. */
  public static String url(RemoteFile f, String mirror) {
    if (mirror == null || mirror.isBlank()) {
      return f.url();
    }
    return mirror.endsWith("/") ? mirror + f.name() : mirror + "/" + f.name();
  }
}
