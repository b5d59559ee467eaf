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
  @ValueSource(strings = {"quickstart", "fetch", "preprocess", "inspect", "train", "generate", "evaluate", "bench-data",
      "bench-train", "bench-fid", "bench-gan"})
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
}
