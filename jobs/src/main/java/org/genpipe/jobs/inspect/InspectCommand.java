package org.genpipe.jobs.inspect;

import java.util.concurrent.Callable;
import org.apache.hadoop.conf.Configuration;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "inspect",
    mixinStandardHelpOptions = true,
    description = "Print a records folder's manifest summary and draw a PNG grid of random records with their labels or texts.")
public final class InspectCommand implements Callable<Integer> {
  @Parameters(paramLabel = "RECORDS", description = "Records folder written by preprocess (local, hdfs:// or s3a://).")
  String records;

  @Option(names = "--split", description = "Split to sample (default: the first, usually train).")
  String split;

  @Option(names = "--count", defaultValue = "36", description = "Records in the grid (default: ${DEFAULT-VALUE}).")
  int count;

  @Option(names = "--seed", defaultValue = "0", description = "Seed of the sample (default: ${DEFAULT-VALUE}).")
  long seed;

  @Option(names = "--grid", paramLabel = "PNG", description = "Where to write the grid (default: <records>-grid.png beside the records folder).")
  String grid;

  @Override
  public Integer call() throws Exception {
    String out = grid != null ? grid : records.replaceAll("/+$", "") + "-grid.png";
    InspectJob.Result r = InspectJob.run(records, split, count, seed, out, new Configuration());
    System.out.print(r.summary());
    if (r.grid() != null) {
      System.out.println("grid of " + r.sample().size() + " records: " + r.grid());
    }
    return 0;
  }
}
