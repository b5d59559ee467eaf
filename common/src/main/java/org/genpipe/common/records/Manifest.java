package org.genpipe.common.records;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.io.Storage;
import org.genpipe.common.provenance.Provenance;

/**
 * {@code manifest.json} beside the shards: what the records are, how many of each, which files hold
 * them (with checksums), what they were made from, and how.
 *
 * @param schemaVersion {@link RecordSchema#VERSION} of the rows
 * @param dataset registry name of the raw data set
 * @param imageShape shape of every image (and label map)
 * @param pairs whether rows carry a label map
 * @param classes class names by label index (empty when the data set has no classes)
 * @param counts records per split
 * @param classCounts per split, records per class name
 * @param shards the shard files, relative to the records folder
 * @param sources the raw input files with their checksums
 * @param skipped items skipped under --on-bad-record=skip, with the reason
 * @param provenance versions, seed, config and time that made the records
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Manifest(
    int schemaVersion,
    String dataset,
    ImageShape imageShape,
    boolean pairs,
    List<String> classes,
    Map<String, Long> counts,
    Map<String, Map<String, Long>> classCounts,
    List<Shard> shards,
    List<SourceFile> sources,
    List<Skip> skipped,
    Provenance provenance) {

  /**
   * One shard file: path relative to the records folder, split, row count, size, the file's SHA-256 and
   * the digest of its records' content (null in manifests written before it was recorded).
   */
  public record Shard(String file, String split, long rows, long bytes, String sha256, String contentSha256)
      implements java.io.Serializable {}

  /** One raw input file: its location, size and SHA-256. */
  public record SourceFile(String path, long bytes, String sha256) implements java.io.Serializable {}

  /** One skipped item and why. */
  public record Skip(String item, String reason) implements java.io.Serializable {}

  static final ObjectMapper JSON =
      new ObjectMapper()
          .enable(SerializationFeature.INDENT_OUTPUT)
          .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

  public long total() {
    return counts.values().stream().mapToLong(Long::longValue).sum();
  }

  /** Shard files of one split (or all splits when {@code split} is null), as absolute paths. */
  public List<Path> shardPaths(Path recordsDir, String split) {
    return shards.stream()
        .filter(s -> split == null || s.split().equals(split))
        .map(s -> new Path(recordsDir, s.file()))
        .toList();
  }

  public String toJson() {
    try {
      return JSON.writeValueAsString(this);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * A records folder's manifest with the SHA-256 of its file and the records' digest ({@link
   * #dataDigest}: what runs record as data provenance and what caches are keyed by).
   */
  public record Checked(Manifest manifest, String sha256) {
    /**
     * The digest of the records' content: SHA-256 over every shard's name, split, row count and
     * content digest, in order. The same records give the same digest however often they are
     * preprocessed (the manifest file itself carries a creation time, the Parquet files' bytes vary
     * between JVMs). For manifests written before shards had content digests: the manifest file's SHA-256.
     */
    public String dataDigest() {
      if (manifest.shards().isEmpty() || manifest.shards().stream().anyMatch(s -> s.contentSha256() == null)) {
        return sha256;
      }
      java.security.MessageDigest md = Storage.sha256();
      for (Shard s : manifest.shards()) {
        md.update((s.file() + "\n" + s.split() + "\n" + s.rows() + "\n" + s.contentSha256() + "\n")
            .getBytes(java.nio.charset.StandardCharsets.UTF_8));
      }
      return java.util.HexFormat.of().formatHex(md.digest());
    }
  }

  /**
   * Reads {@code <recordsDir>/manifest.json} and its checksum; an unreachable folder is a
   * {@link BadInputException} naming it.
   */
  public static Checked readChecked(Path recordsDir, Configuration conf) {
    try {
      return new Checked(read(recordsDir, conf), Storage.sha256(new Path(recordsDir, RecordSchema.MANIFEST), conf));
    } catch (IOException e) {
      throw Storage.unreachable(recordsDir, e);
    }
  }

  /** Reads {@code <recordsDir>/manifest.json}. */
  public static Manifest read(Path recordsDir, Configuration conf) throws IOException {
    Path file = new Path(recordsDir, RecordSchema.MANIFEST);
    if (!Storage.exists(file, conf)) {
      throw new BadInputException(
          file + " does not exist: " + recordsDir + " is not a records folder written by preprocess");
    }
    Manifest m;
    try {
      m = JSON.readValue(Storage.readString(file, conf), Manifest.class);
    } catch (IOException e) {
      throw new BadInputException(file + " is not a valid manifest: " + e.getMessage(), e);
    }
    if (m.schemaVersion() != RecordSchema.VERSION) {
      throw new BadInputException(
          file + " has record schema version " + m.schemaVersion() + "; this pipeline reads version "
              + RecordSchema.VERSION + ": run preprocess again");
    }
    return m;
  }
}
