package org.genpipe.common.data;

import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.genpipe.common.records.ImageRecord;

/**
 * CAPTCHAs rendered by the pipeline from random text ({@link CaptchaRenderer}): the embedded data set
 * that needs no download. Items {@code [0, count - nTest)} form train and the rest test.
 */
public final class CaptchaRender implements RawDataset {
  private static final long serialVersionUID = 1L;
  public static final String NAME = "captcha-render";

  private final CaptchaSettings settings;
  private final long seed;

  public CaptchaRender(CaptchaSettings settings, long seed) {
    this.settings = settings;
    this.seed = seed;
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public Inventory inventory(Configuration conf, BadRecords bad) {
    int nTest = (int) Math.round(settings.count() * settings.testFraction());
    int nTrain = settings.count() - nTest;
    List<Inventory.Split> splits =
        nTest == 0
            ? List.of(new Inventory.Split("train", nTrain, List.of()))
            : List.of(new Inventory.Split("train", nTrain, List.of()), new Inventory.Split("test", nTest, List.of()));
    return new Inventory(splits, List.of(), List.of(), CaptchaFolder.shape(settings), false);
  }

  @Override
  public void read(
      Inventory inv,
      Inventory.Split split,
      int from,
      int to,
      Configuration conf,
      RecordSink out,
      BadRecords bad) {
    int offset = split.name().equals("train") ? 0 : inv.split("train").count();
    CaptchaRenderer renderer = new CaptchaRenderer(settings, seed);
    for (int i = from; i < to; i++) {
      CaptchaRenderer.Captcha c = renderer.render(offset + i);
      out.accept(i,
          CaptchaFolder.toRecord(
              split.name() + "/" + String.format("%05d", i), split.name(), c.text(), c.image(), settings));
    }
  }
}
