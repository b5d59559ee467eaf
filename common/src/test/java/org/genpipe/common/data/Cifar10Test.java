package org.genpipe.common.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.records.ImageRecord;
import org.genpipe.common.testing.RawFixtures;
import org.genpipe.common.testing.RawFixtures.Item;
import org.genpipe.common.testing.ReadAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class Cifar10Test {
  @TempDir Path dir;

  @Test
  void readsBatchesAcrossFilesAsHwcWithClassNames() throws IOException {
    Path bin = dir.resolve("cifar-10-batches-bin");
    List<List<Item>> src = RawFixtures.cifar10(bin, 3, 4, 1);
    Cifar10 ds = new Cifar10(dir.toString()); // the folder holding cifar-10-batches-bin
    Map<String, List<ImageRecord>> got = ReadAll.read(ds);
    assertThat(got.get("train")).hasSize(15);
    assertThat(got.get("test")).hasSize(4);
    for (int i = 0; i < 15; i++) {
      assertThat(got.get("train").get(i).image()).isEqualTo(src.get(0).get(i).hwc());
      assertThat(got.get("train").get(i).label()).isEqualTo(src.get(0).get(i).label());
    }
    assertThat(ds.inventory(new org.apache.hadoop.conf.Configuration(), new BadRecords(OnBadRecord.FAIL)).classes())
        .isEqualTo(RawFixtures.CIFAR_CLASSES);
  }

  @Test
  void lengthNotAMultipleOf3073() throws IOException {
    RawFixtures.cifar10(dir, 2, 2, 2);
    Path f = dir.resolve("data_batch_3.bin");
    byte[] b = Files.readAllBytes(f);
    Files.write(f, java.util.Arrays.copyOf(b, b.length - 1));
    assertThatThrownBy(() -> ReadAll.read(new Cifar10(dir.toString())))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("data_batch_3.bin is 6145 bytes, not a positive multiple of 3073");
  }

  @Test
  void labelOutOfRangeFailsOrIsSkipped() throws IOException {
    RawFixtures.cifar10(dir, 2, 2, 3);
    Path f = dir.resolve("test_batch.bin");
    byte[] b = Files.readAllBytes(f);
    b[3073] = 42; // second record's label
    Files.write(f, b);
    assertThatThrownBy(() -> ReadAll.read(new Cifar10(dir.toString())))
        .hasMessageContaining("test_batch.bin record 1: label 42 is outside 0..9");
    BadRecords skip = new BadRecords(OnBadRecord.SKIP);
    Map<String, List<ImageRecord>> got = ReadAll.read(new Cifar10(dir.toString()), skip);
    assertThat(got.get("test")).hasSize(1);
    assertThat(skip.skipped()).hasSize(1);
  }

  @Test
  void missingMetaOrBatch() throws IOException {
    RawFixtures.cifar10(dir, 1, 1, 4);
    Files.delete(dir.resolve("data_batch_5.bin"));
    assertThatThrownBy(() -> ReadAll.read(new Cifar10(dir.toString())))
        .hasMessageContaining("data_batch_5.bin not found in");
    Files.delete(dir.resolve("batches.meta.txt"));
    assertThatThrownBy(() -> ReadAll.read(new Cifar10(dir.toString())))
        .hasMessageContaining("batches.meta.txt not found in");
  }
}
