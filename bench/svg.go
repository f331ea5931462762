package bench

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Series is one named line of a plot.
type Series struct {
	Name string
	X, Y []float64
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

// LinePlot renders series as an SVG line chart with axes and a legend.
func LinePlot(title, xlabel, ylabel string, series []Series) []byte {
	const w, h, left, right, top, bottom = 720.0, 360.0, 70.0, 160.0, 40.0, 50.0
	minX, maxX, minY, maxY := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for i := range s.X {
			minX, maxX = math.Min(minX, s.X[i]), math.Max(maxX, s.X[i])
			minY, maxY = math.Min(minY, s.Y[i]), math.Max(maxY, s.Y[i])
		}
	}
	if math.IsInf(minX, 1) {
		minX, maxX, minY, maxY = 0, 1, 0, 1
	}
	if maxX == minX {
		maxX = minX + 1
	}
	if maxY == minY {
		maxY = minY + 1
	}
	px := func(x float64) float64 { return left + (x-minX)/(maxX-minX)*(w-left-right) }
	py := func(y float64) float64 { return h - bottom - (y-minY)/(maxY-minY)*(h-top-bottom) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%.0f" y="22" font-size="15">%s</text>`+"\n", left, esc(title))
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`, left, h-bottom, w-right, h-bottom)
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", left, top, left, h-bottom)
	for i := 0; i <= 4; i++ {
		x := minX + float64(i)/4*(maxX-minX)
		y := minY + float64(i)/4*(maxY-minY)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, px(x), h-bottom+16, num(x))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, left-6, py(y)+4, num(y))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, py(y), w-right, py(y))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, (left+w-right)/2, h-10, esc(xlabel))
	fmt.Fprintf(&b, `<text x="14" y="%.1f" transform="rotate(-90 14 %.1f)" text-anchor="middle">%s</text>`+"\n", (top+h-bottom)/2, (top+h-bottom)/2, esc(ylabel))
	for i, s := range series {
		c := palette[i%len(palette)]
		var pts []string
		for j := range s.X {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.X[j]), py(s.Y[j])))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"/>`+"\n", c, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`+"\n",
			w-right+12, top+float64(i)*18, c, w-right+30, top+float64(i)*18+10, esc(s.Name))
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

func num(v float64) string {
	switch {
	case v != 0 && (math.Abs(v) >= 1e5 || math.Abs(v) < 1e-2):
		return fmt.Sprintf("%.1e", v)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// CDFSeries is the empirical distribution of durations as a line: x in
// milliseconds, y the fraction of values at or below it (at most about 500
// points, the extremes always kept).
func CDFSeries(name string, d []time.Duration) Series {
	v := slices.Clone(d)
	slices.Sort(v)
	s := Series{Name: fmt.Sprintf("%s (%d)", name, len(v))}
	step := max(1, len(v)/500)
	for i := 0; i < len(v); i += step {
		s.X = append(s.X, float64(v[i])/1e6)
		s.Y = append(s.Y, float64(i+1)/float64(len(v)))
	}
	if n := len(v); n > 0 && (n-1)%step != 0 {
		s.X, s.Y = append(s.X, float64(v[n-1])/1e6), append(s.Y, 1)
	}
	return s
}

// CDFPlot plots distributions of durations.
func CDFPlot(title string, series ...Series) []byte {
	return LinePlot(title, "milliseconds", "fraction at or below", series)
}
