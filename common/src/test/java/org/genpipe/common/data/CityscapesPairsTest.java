package org.genpipe.common.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.records.ImageRecord;
import org.genpipe.common.testing.RawFixtures;
import org.genpipe.common.testing.RawFixtures.Item;
import org.genpipe.common.testing.ReadAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CityscapesPairsTest {
  @TempDir Path dir;

  @Test
  void splitsPairIntoPhotoAndLabelMapExactly() throws IOException {
    List<Item> train = RawFixtures.pairs(dir, "train", 3, 16, "png", 1);
    List<Item> val = RawFixtures.pairs(dir, "val", 2, 16, "png", 2);
    Map<String, List<ImageRecord>> got = ReadAll.read(new CityscapesPairs(dir.toString(), 16, 16));
    assertThat(got.keySet()).containsExactly("train", "val");
    for (int i = 0; i < 3; i++) {
      ImageRecord r = got.get("train").get(i);
      assertThat(r.id()).isEqualTo("train/" + (i + 1));
      assertThat(r.image()).isEqualTo(train.get(i).hwc());
      assertThat(r.labelMap()).isEqualTo(train.get(i).labelMapHwc());
    }
    assertThat(got.get("val").get(1).image()).isEqualTo(val.get(1).hwc());
  }

  @Test
  void jpegPairsAreResizedToTheConfiguredSize() throws IOException {
    RawFixtures.pairs(dir, "train", 2, 32, "jpg", 3);
    Map<String, List<ImageRecord>> got = ReadAll.read(new CityscapesPairs(dir.toString(), 8, 8));
    assertThat(got.get("train")).hasSize(2);
    assertThat(got.get("train").get(0).shape().toString()).isEqualTo("8x8x3");
    assertThat(got.get("train").get(0).labelMap()).hasSize(8 * 8 * 3);
  }

  @Test
  void wrongSizeAndUnreadableJpegFailOrAreSkipped() throws IOException {
    RawFixtures.pairs(dir, "train", 3, 16, "jpg", 4);
    ImageIO.write(new BufferedImage(30, 20, BufferedImage.TYPE_INT_RGB), "jpg", dir.resolve("train/2.jpg").toFile());
    assertThatThrownBy(() -> ReadAll.read(new CityscapesPairs(dir.toString(), 16, 16)))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("train/2.jpg: image is 30x20; expected a side-by-side pair");
    Files.write(dir.resolve("train/3.jpg"), "not a jpeg".getBytes());
    BadRecords skip = new BadRecords(OnBadRecord.SKIP);
    Map<String, List<ImageRecord>> got = ReadAll.read(new CityscapesPairs(dir.toString(), 16, 16), skip);
    assertThat(got.get("train")).extracting(ImageRecord::id).containsExactly("train/1");
    assertThat(skip.skipped()).extracting(BadRecords.Skipped::reason)
        .anyMatch(r -> r.contains("30x20"))
        .anyMatch(r -> r.contains("unreadable image"));
  }

  /** A huge image is refused from its header: its size is read, its pixels never decoded. */
  @Test
  void hugeImagesAreRefusedFromTheirHeaderWithoutDecoding() throws IOException {
    RawFixtures.pairs(dir, "train", 3, 16, "png", 4);
    Files.write(dir.resolve("train/1.png"), RawFixtures.pngHeaderOnly(20000, 20000));
    Files.write(dir.resolve("train/2.png"), RawFixtures.pngHeaderOnly(40000, 20000));
    assertThat(org.genpipe.common.image.Images.size(RawFixtures.pngHeaderOnly(40000, 20000)))
        .containsExactly(40000, 20000);
    BadRecords skip = new BadRecords(OnBadRecord.SKIP);
    Map<String, List<ImageRecord>> got = ReadAll.read(new CityscapesPairs(dir.toString(), 16, 16), skip);
    assertThat(got.get("train")).extracting(ImageRecord::id).containsExactly("train/3");
    assertThat(skip.skipped()).extracting(BadRecords.Skipped::reason).containsExactlyInAnyOrder(
        "image is 20000x20000; expected a side-by-side pair twice as wide as high (512x256)",
        "unreadable image (its header says 40000x20000 pixels, over the limit of 67108864 (not decoded))");
  }

  @Test
  void emptyOrMissingFolders() throws IOException {
    Files.createDirectories(dir.resolve("train"));
    assertThatThrownBy(() -> ReadAll.read(new CityscapesPairs(dir.toString(), 16, 16)))
        .hasMessageContaining("train holds no pair images");
    Path other = Files.createDirectories(dir.resolve("other"));
    assertThatThrownBy(() -> ReadAll.read(new CityscapesPairs(other.toString(), 16, 16)))
        .hasMessageContaining("has neither train/ nor val/");
  }
}
