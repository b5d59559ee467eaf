package org.genpipe.jobs;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.genpipe.common.io.BadInputException;
import org.genpipe.jobs.cli.ConfigOptions;
import org.genpipe.jobs.cli.Validated;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/**
 * {@code pipeline validate <command> [its arguments]}: parses the command line of another command and
 * checks its config without running it (no Spark session, no data read, no tracking call).
 */
@Command(
    name = "validate",
    mixinStandardHelpOptions = true,
    description = {
      "Check a command line without running it: the arguments parse, and for the config-driven commands",
      "(preprocess, train, evaluate, promote, compare) the config binds and validates with the overrides and the",
      "sections the command needs are there. Touches no data, Spark or tracking server. Exit 0 and a summary of",
      "what the command would do, or exit 2 with the key or value that is wrong.",
      "Example: pipeline validate train --config conf/quickstart.yaml --set train.steps=100",
      "Under spark-submit: spark-submit --class org.genpipe.jobs.Cli JAR validate train --config ..."
    })
public final class ValidateCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "COMMAND", description = "The command to check, e.g. train.")
  String command;

  @Parameters(index = "1..*", paramLabel = "ARGS", description = "Its arguments, as they would be given to it.")
  List<String> args = new ArrayList<>();

  @Override
  public Integer call() {
    CommandLine root = Cli.commandLine();
    CommandLine sub = root.getSubcommands().get(command);
    if (sub == null || "validate".equals(command) || "help".equals(command)) {
      throw new BadInputException("validate: no command '" + command + "'; commands: "
          + String.join(", ", root.getSubcommands().keySet().stream().filter(c -> !c.equals("validate")
              && !c.equals("help")).toList()));
    }
    List<String> line = new ArrayList<>();
    line.add(command);
    line.addAll(args);
    try {
      // parsed from the root, as the real run would be (a subcommand cannot be parsed on its own)
      root.parseArgs(line.toArray(String[]::new));
    } catch (CommandLine.ParameterException e) {
      throw new BadInputException(command + ": " + e.getMessage(), e);
    }
    if (sub.isUsageHelpRequested() || sub.isVersionHelpRequested()) {
      throw new BadInputException(command + ": --help and --version are not checked; give the command's arguments");
    }
    Object target = sub.getCommand();
    List<String> lines = target instanceof Validated v ? v.validate()
        : List.of("the arguments parse (" + command + " has no config to check)");
    System.out.println("valid: " + command + " " + String.join(" ", args));
    for (String l : lines) {
      System.out.println("  " + l);
    }
    return 0;
  }
}
