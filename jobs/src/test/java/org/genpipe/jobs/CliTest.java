package org.genpipe.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

public class CliTest {
  @TempDir Path dir;

  public static String run(int[] code, String... args) {
    PrintStream out = System.out;
    PrintStream err = System.err;
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    PrintStream capture = new PrintStream(buf, true);
    System.setOut(capture);
    System.setErr(capture);
    try {
      code[0] = Cli.execute(args);
    } finally {
      System.setOut(out);
      System.setErr(err);
    }
    return buf.toString();
  }

  @Test
  void quickstartWithoutItsConfigSaysWhichToGive() {
    int[] code = new int[1];
    String text = run(code, "quickstart");
    assertThat(code[0]).isEqualTo(2);
    assertThat(text).contains("--config conf/quickstart.yaml");
  }

  @ParameterizedTest
  @ValueSource(strings = {"quickstart", "fetch", "preprocess", "inspect", "train", "generate", "read", "evaluate",
      "bench-data", "bench-train", "bench-fid", "bench-gan", "bench-reader", "bench-ddpm", "compare", "promote",
      "validate"})
  void everyCommandHasHelp(String command) {
    int[] code = new int[1];
    String text = run(code, command, "--help");
    assertThat(code[0]).isZero();
    assertThat(text).contains("Usage: pipeline " + command);
  }

  @Test
  void unknownConfigKeyExitsWith2AndNamesTheKey() throws Exception {
    Path conf = dir.resolve("c.yaml");
    Files.writeString(conf, "preprocess:\n  shardsize: 3\n");
    int[] code = new int[1];
    String text = run(code, "preprocess", "--config", conf.toString());
    assertThat(code[0]).isEqualTo(2);
    assertThat(text).contains("error: ").contains("unknown key 'preprocess.shardsize'").contains("shardSize");
  }

  @Test
  void unknownDatasetListsTheValidNames() {
    int[] code = new int[1];
    String text = run(code, "preprocess", "--set", "preprocess.dataset=mnist");
    assertThat(code[0]).isEqualTo(2);
    assertThat(text).contains("'mnist' is not a known data set; valid: fashion-mnist, cifar10, cityscapes, captcha, captcha-render");
  }

  @Test
  void validateChecksACommandLineWithoutRunningIt() {
    int[] code = new int[1];
    String text = run(code, "validate", "train", "--config", "../conf/quickstart.yaml", "--set", "train.steps=7",
        "--set", "train.output=" + dir.resolve("never"));
    assertThat(code[0]).as(text).isZero();
    assertThat(text).contains("valid: train --config ../conf/quickstart.yaml", "train beta-vae on data/records/quickstart-digits",
        "2 workers x batch 64, averaged every 10 steps, 7 steps, seed 42");
    assertThat(dir.resolve("never")).doesNotExist();

    text = run(code, "validate", "train", "--config", "../conf/quickstart.yaml", "--set", "train.workers=0");
    assertThat(code[0]).isEqualTo(2);
    assertThat(text).contains("train.workers: must be >= 1, got 0");
    text = run(code, "validate", "evaluate", "--config", "../conf/quickstart.yaml");
    assertThat(code[0]).isEqualTo(2);
    assertThat(text).contains("evaluate.checkpoint: missing");
    text = run(code, "validate", "train", "--bogus");
    assertThat(code[0]).isEqualTo(2);
    assertThat(text).contains("train: Unknown option: '--bogus'");
    text = run(code, "validate", "trian");
    assertThat(code[0]).isEqualTo(2);
    assertThat(text).contains("validate: no command 'trian'; commands: quickstart, fetch, preprocess");
    text = run(code, "validate", "inspect", "data/records/x");
    assertThat(code[0]).isZero();
    assertThat(text).contains("the arguments parse (inspect has no config to check)");
  }
}
