package org.genpipe.jobs.train;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.apache.hadoop.conf.Configuration;
import org.genpipe.common.image.ImageGrid;
import org.genpipe.common.image.Images;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.io.Storage;
import org.genpipe.jobs.config.PipelineConfig;
import org.genpipe.models.Condition;
import org.genpipe.models.GenerativeModel;
import org.nd4j.linalg.api.ndarray.INDArray;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
    name = "generate",
    mixinStandardHelpOptions = true,
    description = {
      "Sample images from a checkpoint (a checkpoints/step-N folder, or a run folder: its latest checkpoint)",
      "into a grid PNG (--grid) and/or a folder of PNGs (--folder). The same --seed gives the same images."
    })
public final class GenerateCommand implements Callable<Integer> {
  @Option(names = "--checkpoint", required = true, paramLabel = "DIR", description = "Checkpoint or run folder.")
  String checkpoint;

  @Option(names = {"-n", "--count"}, defaultValue = "64", description = "Images to generate (default ${DEFAULT-VALUE}).")
  int count;

  @Option(names = "--seed", defaultValue = "0", description = "Noise seed (default ${DEFAULT-VALUE}).")
  long seed;

  @Option(names = "--class", paramLabel = "K",
      description = "Conditional models (cgan, acgan): generate class K, an index or a class name (e.g. 3 or cat).")
  String classArg;

  @Option(names = "--grid", paramLabel = "PNG", description = "Write one grid PNG here.")
  Path grid;

  @Option(names = "--folder", paramLabel = "DIR", description = "Write one PNG per image into this folder.")
  Path folder;

  @Override
  public Integer call() throws Exception {
    if (grid == null && folder == null) {
      throw new BadInputException("give --grid FILE.png and/or --folder DIR for the generated images");
    }
    if (count < 1) {
      throw new BadInputException("--count must be >= 1, got " + count);
    }
    Configuration conf = new Configuration();
    Checkpoint.Loaded c = Checkpoint.resolve(checkpoint, conf);
    org.apache.hadoop.fs.Path dir = c.dir();
    PipelineConfig config = PipelineConfig.fromYaml(c.info().config(), dir + "/" + Checkpoint.INFO);
    try (GenerativeModel model =
        config.requireModel().factory(c.info().imageShape(), c.info().classCount(), c.info().seed(), dir.toString()).create()) {
      model.loadState(c.state());
      Condition condition = null;
      if (classArg != null) {
        int[] labels = new int[count];
        java.util.Arrays.fill(labels, classIndex(classArg, model, c.info()));
        condition = Condition.ofLabels(labels);
      }
      INDArray images = model.generate(count, seed, condition);
      if (grid != null) {
        ImageGrid g = new ImageGrid((int) Math.ceil(Math.sqrt(count)), 56);
        for (int i = 0; i < count; i++) {
          g.add(Images.fromUnitFloats(images, i), null);
        }
        Storage.writeAtomically(Storage.path(grid.toString()), Images.encodePng(g.render()), conf);
        System.out.println("grid:   " + grid);
      }
      if (folder != null) {
        for (int i = 0; i < count; i++) {
          Storage.writeAtomically(Storage.path(folder.resolve(String.format("%05d.png", i)).toString()),
              Images.encodePng(Images.fromUnitFloats(images, i)), conf);
        }
        System.out.println("folder: " + folder + " (" + count + " PNGs)");
      }
      System.out.println("from:   " + dir + " (" + c.info().model() + ", step " + c.info().step() + ")");
    }
    return 0;
  }

  /** The class index of {@code arg}: an index, or one of the checkpoint's class names. */
  static int classIndex(String arg, GenerativeModel model, Checkpoint info) {
    if (model.classCount() == 0) {
      throw new BadInputException("--class " + arg + ": model " + model.name() + " is not conditional on classes");
    }
    java.util.List<String> names = info.classes() == null ? java.util.List.of() : info.classes();
    int k = names.indexOf(arg);
    if (k < 0) {
      try {
        k = Integer.parseInt(arg);
      } catch (NumberFormatException e) {
        throw new BadInputException("--class " + arg + ": not a class index or name; classes: " + names);
      }
    }
    if (k < 0 || k >= model.classCount()) {
      throw new BadInputException("--class " + arg + ": expected 0.." + (model.classCount() - 1) + " or a name of "
          + names);
    }
    return k;
  }
}
