package org.genpipe.jobs.bench;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.BufferedOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.zip.GZIPOutputStream;
import javax.imageio.ImageIO;
import org.genpipe.common.data.CaptchaRenderer;
import org.genpipe.common.data.CaptchaSettings;

/**
 * Realistic-size inputs in the official formats for the data benchmark: smooth shapes plus noise, so
 * that gzip and JPEG see data that compresses roughly like the real sets (random bytes would not).
 */
final class BenchInputs {
  private BenchInputs() {}

  /** An image of a few rectangles and ellipses on a gradient, plus noise, as HWC bytes. */
  /** Config overrides that render {@code count} single-digit 28x28 CAPTCHAs into {@code records}. */
  static java.util.List<String> digitRecords(Path records, int count) {
    return java.util.List.of("preprocess.dataset=captcha-render", "preprocess.output=" + records,
        "preprocess.shardSize=1024", "preprocess.captcha.alphabet=0123456789", "preprocess.captcha.minLength=1",
        "preprocess.captcha.maxLength=1", "preprocess.captcha.height=28", "preprocess.captcha.width=28",
        "preprocess.captcha.count=" + count, "preprocess.captcha.renderWidth=48",
        "preprocess.captcha.renderHeight=48");
  }

  static byte[] picture(Random rnd, int h, int w, int c) {
    return org.genpipe.common.image.Images.toHwc(pictureImage(rnd, h, w), c);
  }

  static BufferedImage pictureImage(Random rnd, int h, int w) {
    BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = img.createGraphics();
    g.setPaint(new java.awt.GradientPaint(0, 0, new Color(rnd.nextInt()), w, h, new Color(rnd.nextInt())));
    g.fillRect(0, 0, w, h);
    for (int k = 0; k < 3; k++) {
      g.setColor(new Color(rnd.nextInt()));
      int x = rnd.nextInt(w);
      int y = rnd.nextInt(h);
      if (rnd.nextBoolean()) {
        g.fillOval(x - w / 4, y - h / 4, w / 2, h / 2);
      } else {
        g.fillRect(x - w / 6, y - h / 6, w / 3, h / 3);
      }
    }
    g.dispose();
    int[] argb = img.getRGB(0, 0, w, h, null, 0, w);
    for (int p = 0; p < argb.length; p++) {
      int noise = rnd.nextInt(9) - 4;
      int rgb = 0;
      for (int shift = 16; shift >= 0; shift -= 8) {
        int v = Math.max(0, Math.min(255, ((argb[p] >> shift) & 0xFF) + noise));
        rgb |= v << shift;
      }
      argb[p] = rgb;
    }
    img.setRGB(0, 0, w, h, argb, 0, w);
    return img;
  }

  static void fashionMnist(Path dir, int nTrain, int nTest, Random rnd) throws IOException {
    Files.createDirectories(dir);
    idx(dir, "train", nTrain, rnd);
    idx(dir, "t10k", nTest, rnd);
  }

  private static void idx(Path dir, String prefix, int n, Random rnd) throws IOException {
    try (DataOutputStream im = gz(dir.resolve(prefix + "-images-idx3-ubyte.gz"));
        DataOutputStream lb = gz(dir.resolve(prefix + "-labels-idx1-ubyte.gz"))) {
      im.writeInt(0x00000803);
      im.writeInt(n);
      im.writeInt(28);
      im.writeInt(28);
      lb.writeInt(0x00000801);
      lb.writeInt(n);
      for (int i = 0; i < n; i++) {
        im.write(picture(rnd, 28, 28, 1));
        lb.write(rnd.nextInt(10));
      }
    }
  }

  private static DataOutputStream gz(Path p) throws IOException {
    return new DataOutputStream(new BufferedOutputStream(new GZIPOutputStream(Files.newOutputStream(p), 1 << 16)));
  }

  static void cifar10(Path dir, int perBatch, int nTest, Random rnd) throws IOException {
    Files.createDirectories(dir);
    for (int b = 1; b <= 6; b++) {
      Path f = dir.resolve(b <= 5 ? "data_batch_" + b + ".bin" : "test_batch.bin");
      int n = b <= 5 ? perBatch : nTest;
      try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(f), 1 << 20)) {
        for (int i = 0; i < n; i++) {
          byte[] hwc = picture(rnd, 32, 32, 3);
          out.write(rnd.nextInt(10));
          for (int c = 0; c < 3; c++) {
            for (int p = 0; p < 1024; p++) {
              out.write(hwc[p * 3 + c]);
            }
          }
        }
      }
    }
    Files.writeString(dir.resolve("batches.meta.txt"),
        "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n");
  }

  static void pairs(Path dir, int nTrain, int nVal, Random rnd) throws IOException {
    for (String split : new String[] {"train", "val"}) {
      Path sub = Files.createDirectories(dir.resolve(split));
      int n = split.equals("train") ? nTrain : nVal;
      for (int i = 1; i <= n; i++) {
        BufferedImage img = new BufferedImage(512, 256, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.drawImage(pictureImage(rnd, 256, 256), 0, 0, null);
        g.drawImage(pictureImage(rnd, 256, 256), 256, 0, null);
        g.dispose();
        ImageIO.write(img, "jpg", sub.resolve(i + ".jpg").toFile());
      }
    }
  }

  static void captchas(Path dir, int n, CaptchaSettings s, long seed) throws IOException {
    Files.createDirectories(dir);
    CaptchaRenderer r = new CaptchaRenderer(s, seed);
    for (int i = 0; i < n; i++) {
      CaptchaRenderer.Captcha c = r.render(i);
      Path f = dir.resolve(c.text() + ".png");
      if (!Files.exists(f)) {
        ImageIO.write(c.image(), "png", f.toFile());
      }
    }
  }
}
