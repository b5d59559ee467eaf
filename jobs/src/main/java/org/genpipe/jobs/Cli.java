package org.genpipe.jobs;

import org.genpipe.common.io.BadInputException;
import org.genpipe.common.provenance.Provenance;
import org.genpipe.jobs.bench.DataBenchmarkCommand;
import org.genpipe.jobs.bench.DdpmBenchmarkCommand;
import org.genpipe.jobs.bench.FidBenchmarkCommand;
import org.genpipe.jobs.bench.GanBenchmarkCommand;
import org.genpipe.jobs.bench.ReaderBenchmarkCommand;
import org.genpipe.jobs.bench.TrainBenchmarkCommand;
import org.genpipe.jobs.evaluate.EvaluateCommand;
import org.genpipe.jobs.fetch.FetchCommand;
import org.genpipe.jobs.inspect.InspectCommand;
import org.genpipe.jobs.preprocess.PreprocessCommand;
import org.genpipe.jobs.read.ReadCommand;
import org.genpipe.jobs.registry.CompareCommand;
import org.genpipe.jobs.registry.PromoteCommand;
import org.genpipe.jobs.tracking.ReplayCommand;
import org.genpipe.jobs.train.GenerateCommand;
import org.genpipe.jobs.train.TrainCommand;
import org.genpipe.jobs.train.TrainJob;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The pipeline's one command line: {@code pipeline <command> --help}. The same main class runs under
 * {@code spark-submit --class org.genpipe.jobs.Cli genpipe-jobs.jar <command> ...}.
 */
@Command(
    name = "pipeline",
    mixinStandardHelpOptions = true,
    versionProvider = Cli.Version.class,
    description = "Distributed training pipeline for generative image models on Spark.",
    subcommands = {
      QuickstartCommand.class,
      FetchCommand.class,
      PreprocessCommand.class,
      InspectCommand.class,
      TrainCommand.class,
      GenerateCommand.class,
      ReadCommand.class,
      EvaluateCommand.class,
      DataBenchmarkCommand.class,
      TrainBenchmarkCommand.class,
      FidBenchmarkCommand.class,
      GanBenchmarkCommand.class,
      ReaderBenchmarkCommand.class,
      DdpmBenchmarkCommand.class,
      CompareCommand.class,
      PromoteCommand.class,
      ValidateCommand.class,
      ReplayCommand.class,
      CommandLine.HelpCommand.class
    })
public final class Cli implements Runnable {
  private static final int HELP_WIDTH = 120;

  @Override
  public void run() {
    new CommandLine(this).setUsageHelpWidth(HELP_WIDTH).usage(System.out);
  }

  /** Runs a command line and returns the exit code (0 ok, 2 bad input or usage, 1 failure). */
  public static int execute(String... args) {
    CommandLine cmd = commandLine();
    cmd.setExecutionExceptionHandler(
        (e, line, parsed) -> {
          // a training that stopped says why itself, whatever caused it
          for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof TrainJob.StoppedException stopped) {
              line.getErr().println("error: " + t.getMessage());
              return stopped.exitCode();
            }
            if (t instanceof TrainJob.DivergedException || t instanceof TrainJob.CheckpointFailedException) {
              line.getErr().println("error: " + t.getMessage());
              return 1;
            }
          }
          BadInputException bad = BadInputException.findIn(e);
          if (bad != null) {
            line.getErr().println("error: " + bad.getMessage());
            return 2;
          }
          throw e;
        });
    return cmd.execute(args);
  }

  /** The parser of the whole command line (every subcommand), as {@link #execute} and {@code validate} use it. */
  static CommandLine commandLine() {
    // descriptions are written as lines of up to ~110 characters: wrapping them at picocli's default
    // 80 columns breaks every line in two
    CommandLine cmd = new CommandLine(new Cli()).setCaseInsensitiveEnumValuesAllowed(true).setUsageHelpWidth(HELP_WIDTH);
    // validate takes another command's arguments as they are: its options are not validate's
    cmd.getSubcommands().get("validate").setStopAtPositional(true).setUnmatchedOptionsArePositionalParams(true);
    return cmd;
  }

  public static void main(String[] args) {
    // each line of output in one piece, even where Spark's logging shares the pipe (see Graphs.wholeLines)
    org.genpipe.models.nn.Graphs.wholeLines();
    int code = execute(args);
    System.out.flush();
    System.exit(code);
  }

  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      return new String[] {"genpipe " + Provenance.version() + " (" + Provenance.buildCommit() + ")"};
    }
  }
}
