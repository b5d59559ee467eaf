package org.genpipe.common.records;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.genpipe.common.io.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

class RecordsRoundTripTest {
  @TempDir Path dir;
  final Configuration conf = new Configuration();

  static ImageRecord rgb(int i) {
    byte[] px = new byte[2 * 3 * 3];
    for (int p = 0; p < px.length; p++) {
      px[p] = (byte) (i * 31 + p * 17);
    }
    return new ImageRecord("train/" + i, "train", i % 10, null, 2, 3, 3, px, null);
  }

  @Test
  void shardRoundTripKeepsEveryFieldAndChecksumIsTheFiles() throws Exception {
    org.apache.hadoop.fs.Path file = new org.apache.hadoop.fs.Path(dir.resolve("a.parquet").toUri());
    ShardWriter.Written w;
    try (ShardWriter sw = new ShardWriter(file, conf)) {
      for (int i = 0; i < 5; i++) {
        sw.write(rgb(i));
      }
      sw.write(new ImageRecord("x", "train", null, "ab1", 1, 2, 1, new byte[] {1, (byte) 255}, new byte[] {3, 4}));
      w = sw.finish();
    }
    byte[] bytes = Files.readAllBytes(dir.resolve("a.parquet"));
    assertThat(w.rows()).isEqualTo(6);
    assertThat(w.bytes()).isEqualTo(bytes.length);
    assertThat(w.sha256()).isEqualTo(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes)));
    List<ImageRecord> back = new ArrayList<>();
    ShardReader.read(List.of(file), conf).forEachRemaining(back::add);
    assertThat(back).hasSize(6);
    assertThat(back.get(2).image()).isEqualTo(rgb(2).image());
    assertThat(back.get(2).label()).isEqualTo(2);
    assertThat(back.get(2).text()).isNull();
    assertThat(back.get(5).label()).isNull();
    assertThat(back.get(5).text()).isEqualTo("ab1");
    assertThat(back.get(5).labelMap()).containsExactly(3, 4);
  }

  @Test
  void minibatchesAreNchwInTheRequestedRange() {
    List<ImageRecord> records = List.of(rgb(0), rgb(1), rgb(2));
    MinibatchIterator it = new MinibatchIterator(records.iterator(), 2, PixelRange.MINUS_ONE_ONE);
    Minibatch a = it.next();
    Minibatch b = it.next();
    assertThat(it.hasNext()).isFalse();
    assertThat(a.images().shape()).containsExactly(2, 3, 2, 3);
    assertThat(b.size()).isEqualTo(1);
    assertThat(a.labels().dataType()).isEqualTo(DataType.INT32);
    assertThat(a.labels().toIntVector()).containsExactly(0, 1);
    byte[] px = rgb(1).image();
    for (int y = 0; y < 2; y++) {
      for (int x = 0; x < 3; x++) {
        for (int c = 0; c < 3; c++) {
          float expected = (px[(y * 3 + x) * 3 + c] & 0xFF) * 2f / 255f - 1f;
          assertThat(a.images().getFloat(1, c, y, x)).isCloseTo(expected, org.assertj.core.data.Offset.offset(1e-6f));
        }
      }
    }
    Minibatch unit = new MinibatchIterator(records.iterator(), 3, PixelRange.ZERO_ONE).next();
    assertThat(unit.images().getFloat(0, 2, 1, 2)).isCloseTo((px(rgb(0), 1, 2, 2) & 0xFF) / 255f, org.assertj.core.data.Offset.offset(1e-6f));
    assertThat(unit.images().minNumber().doubleValue()).isGreaterThanOrEqualTo(0);
  }

  private static int px(ImageRecord r, int y, int x, int c) {
    return r.image()[(y * r.width() + x) * r.channels() + c];
  }

  @Test
  void shuffleBufferIsSeededAndKeepsEveryRecord() {
    List<ImageRecord> records = new ArrayList<>();
    for (int i = 0; i < 50; i++) {
      records.add(rgb(i));
    }
    List<String> a = ids(new MinibatchIterator(records.iterator(), 8, PixelRange.ZERO_ONE, false, 16, 3));
    List<String> b = ids(new MinibatchIterator(records.iterator(), 8, PixelRange.ZERO_ONE, false, 16, 3));
    assertThat(a).isEqualTo(b).hasSize(50).doesNotHaveDuplicates().isNotEqualTo(records.stream().map(ImageRecord::id).toList());
    List<String> dropped = ids(new MinibatchIterator(records.iterator(), 8, PixelRange.ZERO_ONE, true, 0, 0));
    assertThat(dropped).hasSize(48);
  }

  private static List<String> ids(MinibatchIterator it) {
    List<String> out = new ArrayList<>();
    it.forEachRemaining(m -> out.addAll(m.ids()));
    return out;
  }

  @Test
  void notAShardIsAClearError() throws IOException {
    Path bogus = dir.resolve("bogus.parquet");
    Files.writeString(bogus, "hello");
    assertThatThrownBy(() -> ShardReader.read(List.of(new org.apache.hadoop.fs.Path(bogus.toUri())), conf).hasNext())
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("bogus.parquet");
  }
}
