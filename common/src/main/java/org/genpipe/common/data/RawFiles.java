package org.genpipe.common.data;

import java.io.BufferedInputStream;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.zip.GZIPInputStream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.genpipe.common.io.BadInputException;
import org.genpipe.common.io.Storage;

/** Reading raw input files on any Hadoop file system, with errors that name the file. */
final class RawFiles {
  private RawFiles() {}

  /** The input folder, which must exist and be a folder. */
  static Path requireDir(String location, Configuration conf) {
    if (location == null || location.isBlank()) {
      throw new BadInputException("preprocess.input: no input folder given");
    }
    Path dir = Storage.path(location);
    FileStatus st;
    try {
      st = Storage.fs(dir, conf).getFileStatus(dir);
    } catch (FileNotFoundException e) {
      throw new BadInputException("input path " + dir + " does not exist", e);
    } catch (IOException e) {
      throw Storage.unreachable(dir, e);
    }
    if (!st.isDirectory()) {
      throw new BadInputException("input path " + dir + " is a file; expected a folder");
    }
    return dir;
  }

  static boolean isFile(Path p, Configuration conf) throws IOException {
    FileSystem fs = Storage.fs(p, conf);
    return fs.exists(p) && fs.getFileStatus(p).isFile();
  }

  static boolean isDir(Path p, Configuration conf) throws IOException {
    FileSystem fs = Storage.fs(p, conf);
    return fs.exists(p) && fs.getFileStatus(p).isDirectory();
  }

  static long length(Path p, Configuration conf) throws IOException {
    return Storage.fs(p, conf).getFileStatus(p).getLen();
  }

  /** Opens a file, transparently gunzipping it when it starts with the gzip magic bytes. */
  static InputStream open(Path p, Configuration conf) throws IOException {
    InputStream raw = new BufferedInputStream(Storage.fs(p, conf).open(p), 1 << 16);
    raw.mark(2);
    int b0 = raw.read();
    int b1 = raw.read();
    raw.reset();
    if (b0 == 0x1f && b1 == 0x8b) {
      return new BufferedInputStream(new GZIPInputStream(raw, 1 << 16), 1 << 16);
    }
    return raw;
  }

  /** Files in a folder whose names end with one of the extensions, in natural order. */
  static List<Path> list(Path dir, Configuration conf, String... extensions) throws IOException {
    List<Path> files = new ArrayList<>();
    for (FileStatus st : Storage.fs(dir, conf).listStatus(dir)) {
      String name = st.getPath().getName().toLowerCase(Locale.ROOT);
      if (st.isFile()
          && !name.startsWith(".")
          && Arrays.stream(extensions).anyMatch(name::endsWith)) {
        files.add(st.getPath());
      }
    }
    files.sort(Comparator.comparing(Path::getName, RawFiles::naturalCompare));
    return files;
  }

  /** Compares names so that "2.jpg" comes before "10.jpg". */
  static int naturalCompare(String a, String b) {
    int i = 0;
    int j = 0;
    while (i < a.length() && j < b.length()) {
      char ca = a.charAt(i);
      char cb = b.charAt(j);
      if (Character.isDigit(ca) && Character.isDigit(cb)) {
        int si = i;
        int sj = j;
        while (i < a.length() && Character.isDigit(a.charAt(i))) {
          i++;
        }
        while (j < b.length() && Character.isDigit(b.charAt(j))) {
          j++;
        }
        String na = a.substring(si, i).replaceFirst("^0+(?=.)", "");
        String nb = b.substring(sj, j).replaceFirst("^0+(?=.)", "");
        int c = na.length() != nb.length() ? Integer.compare(na.length(), nb.length()) : na.compareTo(nb);
        if (c != 0) {
          return c;
        }
      } else {
        if (ca != cb) {
          return Character.compare(ca, cb);
        }
        i++;
        j++;
      }
    }
    int c = Integer.compare(a.length() - i, b.length() - j);
    return c != 0 ? c : a.compareTo(b);
  }

  /** The name without its extension. */
  static String stem(Path p) {
    String n = p.getName();
    int dot = n.lastIndexOf('.');
    return dot > 0 ? n.substring(0, dot) : n;
  }

  static byte[] readAll(Path p, Configuration conf) throws IOException {
    try (InputStream in = Storage.fs(p, conf).open(p)) {
      return in.readAllBytes();
    }
  }

  /** An I/O error while decoding a (possibly gzipped) file, as a user-facing error. */
  static BadInputException corrupt(Path p, String what, IOException e) {
    return new BadInputException(
        p + ": " + what + " (" + e.getClass().getSimpleName() + ": " + e.getMessage() + ")", e);
  }
}
