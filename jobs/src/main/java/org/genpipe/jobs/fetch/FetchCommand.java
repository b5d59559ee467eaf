package org.genpipe.jobs.fetch;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "fetch",
    mixinStandardHelpOptions = true,
    description = {
      "Download a data set from its official URLs (or a mirror), verify the published checksums, unpack.",
      "Resumable: an interrupted download continues where it stopped. Data sets: fashion-mnist, cifar10, cityscapes."
    })
public final class FetchCommand implements Callable<Integer> {
  @Parameters(paramLabel = "DATASET", description = "fashion-mnist, cifar10 or cityscapes")
  String dataset;

  @Option(names = "--dest", defaultValue = "data/raw", description = "Folder for the downloads (default: ${DEFAULT-VALUE}/<dataset>).")
  Path dest;

  @Option(names = "--mirror", paramLabel = "URL", description = "Base URL that serves the same file names, used instead of the official URLs.")
  String mirror;

  @Option(names = "--attempts", defaultValue = "5", description = "Tries per file, each resuming the last (default: ${DEFAULT-VALUE}).")
  int attempts;

  @Override
  public Integer call() throws Exception {
    DatasetSources.Source source = DatasetSources.forName(dataset);
    Path dir = dest.resolve(dataset);
    Fetcher fetcher = new Fetcher(Duration.ofSeconds(30), attempts, true);
    for (RemoteFile f : source.files()) {
      Fetcher.Fetched got = fetcher.fetch(f, mirror, dir);
      System.out.printf("%s  %s  %d bytes  md5 %s%s%n", got.downloaded() ? "downloaded" : "present   ",
          got.file(), got.bytes(), got.md5(), f.md5() == null ? " (no published checksum to verify)" : " (verified)");
      if (f.extract()) {
        Fetcher.untar(got.file(), dir);
      }
    }
    System.out.println("preprocess input: --set preprocess.input=" + dir.resolve(source.inputFolder()).normalize());
    return 0;
  }
}
