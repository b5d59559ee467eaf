package org.genpipe.common.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.genpipe.common.config.ConfigException;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.records.ImageRecord;
import org.genpipe.common.testing.RawFixtures;
import org.genpipe.common.testing.RawFixtures.Item;
import org.genpipe.common.testing.ReadAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CaptchaTest {
  @TempDir Path dir;

  static CaptchaSettings settings(int h, int w, double testFraction, int count) {
    return new CaptchaSettings("abcdef0123", 3, 5, h, w, 1, testFraction, count, 96, 32);
  }

  @Test
  void folderFileNamesAreTheTexts() throws IOException {
    List<Item> src = RawFixtures.captchaFolder(dir, List.of("abc", "f00d", "cafe1"), 20, 10, 1);
    Map<String, List<ImageRecord>> got = ReadAll.read(new CaptchaFolder(dir.toString(), settings(10, 20, 0, 1)));
    assertThat(got.keySet()).containsExactly("train");
    assertThat(got.get("train")).extracting(ImageRecord::text).containsExactly("abc", "cafe1", "f00d");
    ImageRecord abc = got.get("train").get(0);
    assertThat(abc.image()).isEqualTo(src.get(0).hwc());
    assertThat(abc.id()).isEqualTo("train/abc.png");
  }

  @Test
  void splitByNameHashIsStableAndNearTheFraction() throws IOException {
    List<String> texts = new ArrayList<>();
    for (int i = 0; i < 200; i++) {
      String alphabet = "abcdef0123";
      texts.add("" + alphabet.charAt(i % 10) + alphabet.charAt(i / 10 % 10) + alphabet.charAt(i / 100));
    }
    RawFixtures.captchaFolder(dir, texts, 8, 8, 2);
    CaptchaFolder ds = new CaptchaFolder(dir.toString(), settings(8, 8, 0.25, 1));
    Map<String, List<ImageRecord>> a = ReadAll.read(ds);
    Map<String, List<ImageRecord>> b = ReadAll.read(ds);
    assertThat(a.get("test")).extracting(ImageRecord::text).isEqualTo(b.get("test").stream().map(ImageRecord::text).toList());
    assertThat(a.get("test").size()).isBetween(30, 70);
  }

  @Test
  void aHugeImageIsRefusedFromItsHeader() throws IOException {
    RawFixtures.captchaFolder(dir, List.of("abc", "abd"), 8, 8, 3);
    java.nio.file.Files.write(dir.resolve("abd.png"), RawFixtures.pngHeaderOnly(20000, 20000));
    assertThatThrownBy(() -> ReadAll.read(new CaptchaFolder(dir.toString(), settings(8, 8, 0, 1))))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("abd.png: unreadable image (its header says 20000x20000 pixels, over the limit of");
  }

  @Test
  void badNamesFailOrAreSkipped() throws IOException {
    RawFixtures.captchaFolder(dir, List.of("abc", "abz", "abcdef0"), 8, 8, 3);
    assertThatThrownBy(() -> ReadAll.read(new CaptchaFolder(dir.toString(), settings(8, 8, 0, 1))))
        .isInstanceOf(BadInputException.class)
        .hasMessageContaining("abcdef0.png: file name: text 'abcdef0' has 7 characters; allowed 1..5");
    BadRecords skip = new BadRecords(OnBadRecord.SKIP);
    Map<String, List<ImageRecord>> got = ReadAll.read(new CaptchaFolder(dir.toString(), settings(8, 8, 0, 1)), skip);
    assertThat(got.get("train")).extracting(ImageRecord::text).containsExactly("abc");
    assertThat(skip.skipped()).extracting(BadRecords.Skipped::reason)
        .anyMatch(r -> r.contains("character 'z' outside the alphabet"));
  }

  @Test
  void emptyFolder() {
    assertThatThrownBy(() -> ReadAll.read(new CaptchaFolder(dir.toString(), settings(8, 8, 0, 1))))
        .hasMessageContaining("holds no CAPTCHA images");
  }

  @Test
  void rendererIsReproducibleForASeedAndIndependentOfOrder() {
    CaptchaSettings s = settings(16, 48, 0, 1);
    CaptchaRenderer a = new CaptchaRenderer(s, 7);
    CaptchaRenderer b = new CaptchaRenderer(s, 7);
    CaptchaRenderer.Captcha a5 = a.render(5);
    b.render(9);
    CaptchaRenderer.Captcha b5 = b.render(5);
    assertThat(a5.text()).isEqualTo(b5.text()).hasSizeBetween(3, 5).matches("[abcdef0123]+");
    assertThat(org.genpipe.common.image.Images.toHwc(a5.image(), 3))
        .isEqualTo(org.genpipe.common.image.Images.toHwc(b5.image(), 3));
    CaptchaRenderer.Captcha other = new CaptchaRenderer(s, 8).render(5);
    assertThat(org.genpipe.common.image.Images.toHwc(other.image(), 3))
        .isNotEqualTo(org.genpipe.common.image.Images.toHwc(a5.image(), 3));
  }

  @Test
  void renderedSetHasTrainAndTestOfTheConfiguredShape() throws IOException {
    Map<String, List<ImageRecord>> got = ReadAll.read(new CaptchaRender(settings(16, 48, 0.2, 10), 1));
    assertThat(got.get("train")).hasSize(8);
    assertThat(got.get("test")).hasSize(2);
    assertThat(got.get("test").get(0).shape().toString()).isEqualTo("16x48x1");
  }

  @Test
  void settingsValidationNamesTheKey() {
    assertThatThrownBy(() -> new CaptchaSettings("aa", 3, 5, 8, 8, 1, 0, 1, 96, 32))
        .isInstanceOf(ConfigException.class).hasMessageContaining("alphabet: 'aa' repeats a character");
    assertThatThrownBy(() -> new CaptchaSettings("ab", 3, 5, 8, 8, 2, 0, 1, 96, 32))
        .hasMessageContaining("channels: must be 1 (grey) or 3 (RGB), got 2");
  }
}
