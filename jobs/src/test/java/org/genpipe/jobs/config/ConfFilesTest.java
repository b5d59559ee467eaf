package org.genpipe.jobs.config;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.genpipe.common.records.ImageShape;
import org.genpipe.models.TrainableModel;
import org.junit.jupiter.api.Test;

/** Every file in conf/ loads, and the GAN configs build their model on CIFAR-10-shaped records. */
class ConfFilesTest {
  static final Path CONF = Path.of("..", "conf");

  @Test
  void everyConfigLoadsAndItsModelBuilds() throws IOException {
    List<Path> files;
    try (Stream<Path> s = Files.list(CONF)) {
      files = s.filter(p -> p.toString().endsWith(".yaml")).sorted().toList();
    }
    assertThat(files).extracting(p -> p.getFileName().toString())
        .contains("dcgan-cifar10.yaml", "cgan-cifar10.yaml", "acgan-cifar10.yaml", "quickstart.yaml",
            "pix2pix-cityscapes.yaml", "pix2pix-cityscapes-cpu.yaml", "ddpm-digits.yaml", "ddpm-captcha.yaml",
            "ddpm-captcha-uncond.yaml");
    for (Path f : files) {
      PipelineConfig c = PipelineConfig.load(f, List.of());
      String name = f.getFileName().toString();
      if (name.contains("gan-cifar10")) {
        try (TrainableModel m = c.requireModel().factory(new ImageShape(32, 32, 3), 10, c.seed(), name).create()) {
          assertThat(m.name()).isEqualTo(name.replace("-cifar10.yaml", ""));
          assertThat(((org.genpipe.models.GenerativeModel) m).classCount()).isEqualTo(name.startsWith("dcgan") ? 0 : 10);
        }
        assertThat(c.requireEvaluate().checkpoint()).isEqualTo(c.requireTrain().output());
      }
      if (name.startsWith("ddpm")) {
        // the model builds for the records its own preprocess section makes, and draws their texts
        var cap = c.requirePreprocess().captcha();
        try (TrainableModel m = c.requireModel().factory(new ImageShape(cap.height(), cap.width(), cap.channels()), 0,
            c.seed(), name).create()) {
          var g = (org.genpipe.models.GenerativeModel) m;
          assertThat(g.textAlphabet()).isEqualTo(name.contains("uncond") ? null : cap.alphabet());
          assertThat(g.maxTextLength()).isEqualTo(name.contains("uncond") ? 0 : cap.maxLength());
        }
        assertThat(c.requireEvaluate().checkpoint()).isEqualTo(c.requireTrain().output());
        assertThat(c.requireTrain().records()).isEqualTo(c.requirePreprocess().output());
      }
      if (name.startsWith("pix2pix")) {
        int size = c.requireModel().pix2pix().size();
        // the factory checks the records' shape and D's fit; the 64x64 model is also built
        var factory = c.requireModel().factory(new ImageShape(size, size, 3), 0, c.seed(), name);
        if (size == 64) {
          try (TrainableModel m = factory.create()) {
            assertThat(m.name()).isEqualTo("pix2pix");
          }
          assertThat(c.preprocess().cityscapes().height()).isEqualTo(64);
        }
        assertThat(c.requireEvaluate().checkpoint()).isEqualTo(c.requireTrain().output());
        assertThat(c.requireTrain().evalSplit()).isEqualTo("val");
        // the segmenter's smaller batch merges into the default domain section
        assertThat(c.requireEvaluate().domain().batchSize()).isEqualTo(size == 64 ? 16 : 4);
        assertThat(c.requireEvaluate().domain().steps()).isEqualTo(1000);
      }
    }
  }
}
