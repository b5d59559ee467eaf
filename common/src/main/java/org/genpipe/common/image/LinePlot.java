package org.genpipe.common.image;

import java.awt.Color;
import java.awt.image.BufferedImage;
import java.util.List;
import java.util.Map;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

/** Curves over steps, e.g. the losses of a training run. */
public final class LinePlot {
  private LinePlot() {}

  /** @param series name -> (steps, values), plotted as lines in insertion order */
  public static BufferedImage render(String title, String xLabel, Map<String, List<double[]>> series) {
    XYChart chart = new XYChartBuilder().width(900).height(500).title(title).xAxisTitle(xLabel).yAxisTitle("value").build();
    chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
    chart.getStyler().setChartBackgroundColor(Color.WHITE);
    chart.getStyler().setXAxisTickMarkSpacingHint(120);
    chart.getStyler().setXAxisDecimalPattern("#,###");
    double[] anchor = null;
    for (Map.Entry<String, List<double[]>> e : series.entrySet()) {
      if (e.getValue().isEmpty()) {
        continue;
      }
      double[] x = e.getValue().stream().mapToDouble(p -> p[0]).toArray();
      double[] y = e.getValue().stream().mapToDouble(p -> p[1]).toArray();
      chart.addSeries(e.getKey(), x, y).setMarker(SeriesMarkers.NONE);
      if (anchor == null && x.length > 1) {
        anchor = new double[] {(x[0] + x[1]) / 2, y[0]};
      }
    }
    if (anchor != null) {
      // xchart 3.8 labels equally spaced x values (a loss at every step) at every k-th point, k the
      // smallest at which the labels just touch ("192216240264..."), ignoring the spacing hint; one
      // point off the grid, drawn as nothing and not in the legend, gives it round ticks instead
      XYSeries offGrid = chart.addSeries(" ", new double[] {anchor[0]}, new double[] {anchor[1]});
      offGrid.setMarker(SeriesMarkers.NONE);
      offGrid.setShowInLegend(false);
    }
    return BitmapEncoder.getBufferedImage(chart);
  }
}
