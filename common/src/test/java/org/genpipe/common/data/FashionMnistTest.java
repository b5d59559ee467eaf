package org.genpipe.common.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.records.ImageRecord;
import org.genpipe.common.testing.RawFixtures;
import org.genpipe.common.testing.RawFixtures.Item;
import org.genpipe.common.testing.ReadAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

class FashionMnistTest {
  @TempDir Path dir;

  @ParameterizedTest
  @ValueSource(booleans = {true, false})
  void readsIdxGzippedOrNotExactly(boolean gzip) throws IOException {
    List<List<Item>> src = RawFixtures.fashionMnist(dir, 7, 3, gzip, 1);
    Map<String, List<ImageRecord>> got = ReadAll.read(new FashionMnist(dir.toString()));
    assertThat(got.keySet()).containsExactly("train", "test");
    assertSame(src.get(0), got.get("train"));
    assertSame(src.get(1), got.get("test"));
    assertThat(got.get("train").get(3).id()).isEqualTo("train/00003");
  }

  @Test
  void anIdxHeaderOfAnotherImageSizeIsRefusedNamingTheFileAndBothSizes() throws IOException {
    List<List<Item>> src = RawFixtures.fashionMnist(dir, 4, 2, true, 1);
    RawFixtures.writeIdx(dir, "train", src.get(0), 29, 28, true);
    assertThatThrownBy(() -> new FashionMnist(dir.toString()).inventory(new Configuration(), null))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("train-images-idx3-ubyte.gz: its IDX header says 29x28 images; Fashion-MNIST's are 28x28");
  }

  @Test
  void readsAnyRangeOfAShard() throws IOException {
    List<List<Item>> src = RawFixtures.fashionMnist(dir, 10, 2, true, 2);
    FashionMnist ds = new FashionMnist(dir.toString());
    Configuration conf = new Configuration();
    Inventory inv = ds.inventory(conf, new BadRecords(OnBadRecord.FAIL));
    List<ImageRecord> part = new java.util.ArrayList<>();
    ds.read(inv, inv.split("train"), 4, 7, conf, (i, r) -> part.add(r), new BadRecords(OnBadRecord.FAIL));
    assertSame(src.get(0).subList(4, 7), part);
  }

  @Test
  void wrongMagicNumberNamesFileAndExpectedMagic() throws IOException {
    RawFixtures.fashionMnist(dir, 3, 2, false, 3);
    Path labels = dir.resolve("train-labels-idx1-ubyte");
    byte[] b = Files.readAllBytes(labels);
    ByteBuffer.wrap(b).putInt(0, 0x00000803);
    Files.write(labels, b);
    assertThatThrownBy(() -> ReadAll.read(new FashionMnist(dir.toString())))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("train-labels-idx1-ubyte")
        .hasMessageContaining("wrong IDX magic number 0x00000803; expected 0x00000801");
  }

  @Test
  void imageLabelCountMismatch() throws IOException {
    List<List<Item>> src = RawFixtures.fashionMnist(dir, 5, 2, true, 4);
    // labels for only 4 of the 5 images
    Files.createDirectories(dir.resolve("tmp"));
    RawFixtures.writeIdx(dir.resolve("tmp"), "x", src.get(0).subList(0, 4), 28, 28, true);
    Files.move(dir.resolve("tmp/x-labels-idx1-ubyte.gz"), dir.resolve("train-labels-idx1-ubyte.gz"),
        java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    assertThatThrownBy(() -> ReadAll.read(new FashionMnist(dir.toString())))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("holds 5 images but")
        .hasMessageContaining("holds 4 labels");
  }

  @Test
  void truncatedGzipNamesFile() throws IOException {
    RawFixtures.fashionMnist(dir, 20, 2, true, 5);
    Path images = dir.resolve("train-images-idx3-ubyte.gz");
    byte[] b = Files.readAllBytes(images);
    Files.write(images, Arrays.copyOf(b, b.length / 2));
    assertThatThrownBy(() -> ReadAll.read(new FashionMnist(dir.toString())))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("train-images-idx3-ubyte.gz")
        .hasMessageMatching("(?s).*(truncated|corrupt).*");
  }

  @Test
  void corruptGzipTrailerIsCaughtAtTheEnd() throws IOException {
    RawFixtures.fashionMnist(dir, 4, 2, true, 6);
    Path images = dir.resolve("t10k-images-idx3-ubyte.gz");
    byte[] b = Files.readAllBytes(images);
    b[b.length - 6] ^= 0x5A; // inside the CRC32 of the gzip trailer
    Files.write(images, b);
    assertThatThrownBy(() -> ReadAll.read(new FashionMnist(dir.toString())))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("t10k-images-idx3-ubyte.gz")
        .hasMessageContaining("corrupt gzip");
  }

  @Test
  void truncatedRawFileIsCaughtByItsLength() throws IOException {
    RawFixtures.fashionMnist(dir, 4, 2, false, 7);
    Path images = dir.resolve("train-images-idx3-ubyte");
    byte[] b = Files.readAllBytes(images);
    Files.write(images, Arrays.copyOf(b, b.length - 100));
    assertThatThrownBy(() -> ReadAll.read(new FashionMnist(dir.toString())))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("train-images-idx3-ubyte is " + (b.length - 100) + " bytes but its IDX header declares " + b.length)
        .hasMessageContaining("truncated");
  }

  @Test
  void missingFileAndMissingFolder() throws IOException {
    RawFixtures.fashionMnist(dir, 2, 2, true, 8);
    Files.delete(dir.resolve("t10k-labels-idx1-ubyte.gz"));
    assertThatThrownBy(() -> ReadAll.read(new FashionMnist(dir.toString())))
        .hasMessageContaining("t10k-labels-idx1-ubyte.gz (or t10k-labels-idx1-ubyte) not found in");
    assertThatThrownBy(() -> ReadAll.read(new FashionMnist(dir.resolve("nope").toString())))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("nope does not exist");
  }

  static void assertSame(List<Item> expected, List<ImageRecord> actual) {
    assertThat(actual).hasSize(expected.size());
    for (int i = 0; i < expected.size(); i++) {
      assertThat(actual.get(i).label()).isEqualTo(expected.get(i).label());
      assertThat(actual.get(i).image()).isEqualTo(expected.get(i).hwc());
      assertThat(actual.get(i).shape().toString()).isEqualTo("28x28x1");
    }
  }
}
