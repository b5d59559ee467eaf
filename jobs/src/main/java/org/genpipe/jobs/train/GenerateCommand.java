package org.genpipe.jobs.train;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.apache.hadoop.conf.Configuration;
import org.genpipe.common.image.ImageGrid;
import org.genpipe.common.image.Images;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.io.Storage;
import org.genpipe.common.records.ImageRecord;
import org.genpipe.common.records.ImageShape;
import org.genpipe.common.records.Manifest;
import org.genpipe.common.records.Minibatch;
import org.genpipe.common.records.PixelRange;
import org.genpipe.common.records.ShardReader;
import org.genpipe.jobs.checkpoint.Checkpoint;
import org.genpipe.models.Condition;
import org.genpipe.models.GenerativeModel;
import org.genpipe.models.ImageConditioned;
import org.genpipe.models.ModelSettings;
import org.genpipe.models.TrainableModel;
import org.genpipe.models.ddpm.Ddpm;
import org.genpipe.models.reader.CaptchaReader;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
    name = "generate",
    mixinStandardHelpOptions = true,
    description = {
      "Sample images from a checkpoint (a checkpoints/step-N folder, or a run folder: its latest checkpoint)",
      "into a grid PNG (--grid) and/or a folder of PNGs (--folder). The same --seed gives the same images.",
      "Image-to-image models (pix2pix) translate condition images instead: --condition-image FILE (any image",
      "of the model's size, e.g. a label map) or --condition-record ID (a record of the checkpoint's records, e.g.",
      "val/17); the grid then shows (condition | generated [| target]) rows, the folder the generated images.",
      "Text-conditioned models (ddpm) draw -n images per --text TEXT (a row each; without --text: unconditional",
      "samples); --reader RUN (a captcha-reader checkpoint) captions each with what it reads and prints how often",
      "that is the asked text. --guidance, --sampler, --steps and --eta override the checkpoint's sampling settings."
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

  @Option(names = "--condition-image", paramLabel = "FILE",
      description = "Image-to-image models: translate this image (the model's size, e.g. 256x256); repeatable.")
  List<Path> conditionImages = new ArrayList<>();

  @Option(names = "--condition-record", paramLabel = "ID",
      description = "Image-to-image models: translate the condition of this record of the checkpoint's records; repeatable.")
  List<String> conditionRecords = new ArrayList<>();

  @Option(names = "--text", paramLabel = "TEXT",
      description = "Text-conditioned models: draw this text (-n images of it); repeatable.")
  List<String> texts = new ArrayList<>();

  @Option(names = "--guidance", paramLabel = "S",
      description = "DDPM: classifier-free guidance scale (0 unconditional, 1 conditional, > 1 guided; default: the config's).")
  Double guidance;

  @Option(names = "--sampler", paramLabel = "NAME", description = "DDPM: ddim or ddpm (ancestral, all T steps; default: the config's).")
  String sampler;

  @Option(names = "--steps", paramLabel = "N", description = "DDPM: DDIM steps (default: the config's samplerSteps).")
  Integer steps;

  @Option(names = "--eta", paramLabel = "E", description = "DDPM: DDIM noise scale, 0 deterministic .. 1 (default: the config's).")
  Double eta;

  @Option(names = "--reader", paramLabel = "DIR",
      description = "A captcha-reader checkpoint or run: captions each generated text with what it reads.")
  String readerCheckpoint;

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
    ModelSettings settings = c.config().requireModel();
    if (guidance != null || sampler != null || steps != null || eta != null) {
      if (settings.ddpm() == null || !Ddpm.NAME.equals(settings.name())) {
        throw new BadInputException("--guidance/--sampler/--steps/--eta: " + dir + " is a checkpoint of "
            + settings.name() + ", which has no diffusion sampler (they apply to ddpm)");
      }
      settings = settings.withDdpm(settings.ddpm().withSampling(sampler, steps, eta, guidance));
    }
    try (TrainableModel trained = c.model(settings)) {
      if (!(trained instanceof GenerativeModel model)) {
        throw new BadInputException(dir + " is a checkpoint of " + trained.name() + ", which reads images and does"
            + " not generate them");
      }
      if (!texts.isEmpty() || readerCheckpoint != null) {
        drawTexts(model, c, conf);
        return 0;
      }
      if (!conditionImages.isEmpty() || !conditionRecords.isEmpty()) {
        translate(model, c, conf);
        return 0;
      }
      if (model instanceof ImageConditioned ic) {
        throw new BadInputException(model.name() + " translates a " + ic.conditionName() + " into an image: give"
            + " --condition-image FILE or --condition-record ID");
      }
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

  /** Text-conditioned: -n images per text, a row each, captioned with what the reader (if any) reads. */
  private void drawTexts(GenerativeModel model, Checkpoint.Loaded c, Configuration conf) throws IOException {
    if (texts.isEmpty()) {
      throw new BadInputException("--reader: give the texts to draw with --text TEXT");
    }
    for (String t : texts) {
      model.checkText(t, "--text");
    }
    CaptchaReader reader = null;
    if (readerCheckpoint != null) {
      reader = Checkpoint.resolve(readerCheckpoint, conf).captchaReader("--reader");
      if (!reader.imageShape().equals(model.imageShape())) {
        reader.close();
        throw new BadInputException("--reader " + readerCheckpoint + " reads " + reader.imageShape() + " images; "
            + model.name() + " draws " + model.imageShape());
      }
    }
    try {
      List<String> asked = new ArrayList<>();
      texts.forEach(t -> asked.addAll(java.util.Collections.nCopies(count, t)));
      INDArray images = model.generate(asked.size(), seed, new Condition(null, asked, null));
      List<String> read = reader == null ? null : reader.read(images);
      if (grid != null) {
        ImageGrid g = new ImageGrid(Math.min(count, 8), 56);
        for (int i = 0; i < asked.size(); i++) {
          String caption = read != null ? read.get(i) + (read.get(i).equals(asked.get(i)) ? "" : " (" + asked.get(i) + ")")
              : i % count == 0 ? asked.get(i) : null;
          g.add(Images.fromUnitFloats(images, i), caption);
        }
        Storage.writeAtomically(Storage.path(grid.toString()), Images.encodePng(g.render()), conf);
        System.out.println("grid:   " + grid);
      }
      if (folder != null) {
        for (int i = 0; i < asked.size(); i++) {
          Storage.writeAtomically(Storage.path(folder.resolve(String.format("%s-%03d.png", asked.get(i), i % count))
              .toString()), Images.encodePng(Images.fromUnitFloats(images, i)), conf);
        }
        System.out.println("folder: " + folder + " (" + asked.size() + " PNGs, named TEXT-NNN.png)");
      }
      if (read != null) {
        System.out.printf("reader: reads the asked text in %d of %d images (sequence accuracy %.4f, character error"
                + " rate %.4f)%n", Math.round(CaptchaReader.sequenceAccuracy(read, asked) * asked.size()), asked.size(),
            CaptchaReader.sequenceAccuracy(read, asked), CaptchaReader.characterErrorRate(read, asked));
      }
      System.out.println("from:   " + c.dir() + " (" + c.info().model() + ", step " + c.info().step() + ")");
    } finally {
      if (reader != null) {
        reader.close();
      }
    }
  }

  /** Image-to-image: one generated image per condition image or record; grid rows (condition | generated [| target]). */
  private void translate(GenerativeModel model, Checkpoint.Loaded c, Configuration conf) throws IOException {
    if (!(model instanceof ImageConditioned ic)) {
      throw new BadInputException("--condition-image/--condition-record: model " + model.name()
          + " is not conditioned on images");
    }
    ImageShape shape = model.imageShape();
    List<ImageRecord> inputs = new ArrayList<>();
    for (Path file : conditionImages) {
      inputs.add(conditionRecord(file, shape));
    }
    Minibatch pairs = null;
    if (!conditionRecords.isEmpty()) {
      pairs = Minibatch.of(findRecords(c, conditionRecords, conf), model.pixelRange());
    }
    List<INDArray> conds = new ArrayList<>();
    if (!inputs.isEmpty()) {
      conds.add(Minibatch.of(inputs, model.pixelRange()).images());
    }
    if (pairs != null) {
      conds.add(ic.conditions(pairs));
    }
    INDArray cond = conds.size() == 1 ? conds.get(0) : Nd4j.concat(0, conds.toArray(new INDArray[0]));
    int n = (int) cond.size(0);
    INDArray images = model.generate(n, seed, Condition.ofImages(cond));
    if (grid != null) {
      BufferedImage picture;
      if (pairs != null && inputs.isEmpty()) {
        picture = ImageConditioned.triplets(cond, images, ic.targets(pairs), model.pixelRange(), ic.conditionName());
      } else {
        ImageGrid g = new ImageGrid(2, 96);
        INDArray shown = model.pixelRange() == PixelRange.MINUS_ONE_ONE ? cond.add(1.0).muli(0.5) : cond;
        for (int i = 0; i < n; i++) {
          g.add(Images.fromUnitFloats(shown, i), i == 0 ? ic.conditionName() : null);
          g.add(Images.fromUnitFloats(images, i), i == 0 ? "generated" : null);
        }
        picture = g.render();
      }
      Storage.writeAtomically(Storage.path(grid.toString()), Images.encodePng(picture), conf);
      System.out.println("grid:   " + grid);
    }
    if (folder != null) {
      List<String> names = new ArrayList<>();
      conditionImages.forEach(f -> names.add(f.getFileName().toString().replaceFirst("\\.[^.]*$", "")));
      conditionRecords.forEach(id -> names.add(id.replace('/', '-')));
      for (int i = 0; i < n; i++) {
        Storage.writeAtomically(Storage.path(folder.resolve(names.get(i) + ".png").toString()),
            Images.encodePng(Images.fromUnitFloats(images, i)), conf);
      }
      System.out.println("folder: " + folder + " (" + n + " PNGs)");
    }
    System.out.println("from:   " + c.dir() + " (" + c.info().model() + ", step " + c.info().step() + ")");
  }

  /** A condition image file as a record of the model's shape; a clear error for anything else. */
  static ImageRecord conditionRecord(Path file, ImageShape shape) throws IOException {
    if (!Files.isRegularFile(file)) {
      throw new BadInputException("--condition-image " + file + ": no such file");
    }
    BufferedImage img = Images.decode(Files.readAllBytes(file));
    if (img == null) {
      throw new BadInputException("--condition-image " + file + ": not an image ImageIO can read (PNG, JPEG, BMP, GIF)");
    }
    if (img.getHeight() != shape.height() || img.getWidth() != shape.width()) {
      throw new BadInputException("--condition-image " + file + " is " + img.getWidth() + "x" + img.getHeight()
          + "; the model reads " + shape.width() + "x" + shape.height() + " images (a pix2pix pair's half, resized"
          + " as preprocess does)");
    }
    byte[] hwc = Images.toHwc(img, shape.channels());
    return new ImageRecord(file.toString(), "input", null, null, shape.height(), shape.width(), shape.channels(), hwc,
        null);
  }

  /** The records of the given ids from the checkpoint's records (any split), in the order asked. */
  private static List<ImageRecord> findRecords(Checkpoint.Loaded c, List<String> ids, Configuration conf) {
    org.apache.hadoop.fs.Path recordsDir = Storage.path(c.info().records());
    Manifest manifest = Manifest.readChecked(recordsDir, conf).manifest();
    java.util.Map<String, ImageRecord> found = new java.util.HashMap<>();
    for (String split : manifest.counts().keySet()) {
      var it = ShardReader.read(manifest.shardPaths(recordsDir, split), conf);
      while (it.hasNext() && found.size() < ids.size()) {
        ImageRecord r = it.next();
        if (ids.contains(r.id())) {
          found.put(r.id(), r);
        }
      }
    }
    List<ImageRecord> out = new ArrayList<>();
    for (String id : ids) {
      ImageRecord r = found.get(id);
      if (r == null) {
        throw new BadInputException("--condition-record " + id + ": no record with that id in " + recordsDir
            + " (ids look like " + firstId(manifest, recordsDir, conf) + ")");
      }
      out.add(r);
    }
    return out;
  }

  private static String firstId(Manifest manifest, org.apache.hadoop.fs.Path recordsDir, Configuration conf) {
    for (String split : manifest.counts().keySet()) {
      var it = ShardReader.read(manifest.shardPaths(recordsDir, split), conf);
      if (it.hasNext()) {
        return it.next().id();
      }
    }
    return "(the records are empty)";
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
